"""Run the SQS event source mappings someone else created on the embedded stack (``terraform
apply`` of ``infra/examples/complete``: ``callback-bridge local deploy``), as Lambda would.

moto keeps such a mapping and its function but cannot run Python functions without Docker (and
the ``lambda-sqs-mappings-polled`` compat patch stops it from trying). An :class:`Adopter`
looks at moto's Lambda backend every ``interval_s``; for each enabled mapping on an SQS queue
whose function's handler is one of the bridge's two Lambdas it starts a
:class:`~bridge.local_stack.event_source.LocalEventSourceMapping` with the mapping's batch size,
batching window and maximum concurrency and the function's timeout, calling the handler in
this process, configured from the function's own environment variables (as the Lambda runtime
would). A mapping that is deleted or disabled is stopped; one whose settings change is
restarted with the new ones.

A function whose handler is not the bridge's is left alone, with one warning: its code is in
a zip this process does not run.

With ``follow_group``, each pass also names an Auto Scaling group someone else created (the
first by name, with an instance) and its instance and termination hook, or ``None`` once there
is none: the stack points its instance metadata at that instance, so a worker started from
Terraform's outputs sees the Terraform-made group's lifecycle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.config import BridgeConfig, load_config
from bridge.local_stack.event_source import EventSourceSettings, LocalEventSourceMapping

log = logging.getLogger(__name__)

COMPLETION = "bridge.completion.handler"
DEAD_LETTER = "bridge.dead_letter.handler"


@dataclass(frozen=True)
class MappingSpec:
    """What one mapping, and its function, ask for."""

    uuid: str
    queue_arn: str
    function_name: str
    handler: str
    environment: tuple[tuple[str, str], ...]
    settings: EventSourceSettings


def _settings(mapping: Any, function: Any) -> EventSourceSettings:
    concurrency = (mapping.scaling_config or {}).get("MaximumConcurrency") or 1000
    return EventSourceSettings(
        batch_size=int(mapping.batch_size or 10),
        maximum_batching_window_s=float(mapping.max_batch_window or 0),
        function_timeout_s=float(function.timeout or 3),
        maximum_concurrency=int(concurrency),
    )


@dataclass(frozen=True)
class GroupInstance:
    """An instance of a group someone else created, and the group's termination hook."""

    group: str
    instance_id: str
    lifecycle_hook: str | None


def foreign_group(account_id: str, region: str, own: str | None) -> GroupInstance | None:
    """The first group by name, other than ``own``, with an instance not yet terminating."""
    from moto.autoscaling.models import autoscaling_backends

    backend = autoscaling_backends[account_id][region]
    for name in sorted(backend.autoscaling_groups):
        if name == own:
            continue
        group = backend.autoscaling_groups[name]
        live = [
            state.instance.id
            for state in group.instance_states
            if str(state.lifecycle_state) in ("InService", "Pending")
        ]
        if not live:
            continue
        hooks = [
            hook.name
            for hook in list(backend.lifecycle_hooks.values())
            if hook.auto_scaling_group_name == name
            and hook.lifecycle_transition == "autoscaling:EC2_INSTANCE_TERMINATING"
        ]
        return GroupInstance(name, sorted(live)[0], hooks[0] if hooks else None)
    return None


def mappings_in(account_id: str, region: str) -> list[MappingSpec]:
    """The enabled SQS event source mappings of moto's Lambda backend, with their functions."""
    from moto.awslambda.models import lambda_backends

    backend = lambda_backends[account_id][region]
    specs = []
    for mapping in list(backend._event_source_mappings.values()):
        if not mapping.enabled or ":sqs:" not in mapping.event_source_arn:
            continue
        try:
            function = backend.get_function(mapping.function_arn)
        except Exception:  # deleted under the mapping: nothing to run
            continue
        specs.append(
            MappingSpec(
                uuid=mapping.uuid,
                queue_arn=mapping.event_source_arn,
                function_name=function.function_name,
                handler=function.handler or "",
                environment=tuple(sorted((function.environment_vars or {}).items())),
                settings=_settings(mapping, function),
            )
        )
    return specs


class Adopter:
    """Adopt the mappings of ``account_id``/``region``; see the module docstring.

    ``base`` gives the endpoint, region and credentials; ``clients_for`` builds a function's
    in-process clients from its configuration (the stack answers them without HTTP); ``skip``
    names queue ARNs the stack already polls itself."""

    def __init__(
        self,
        base: BridgeConfig,
        clients_for: Callable[[BridgeConfig, int], Any],
        account_id: str,
        interval_s: float = 1.0,
        skip: Callable[[str], bool] = lambda arn: False,
        follow_group: Callable[[GroupInstance | None], None] | None = None,
        own_group: str | None = None,
    ) -> None:
        self.base = base
        self.clients_for = clients_for
        self.account_id = account_id
        self.interval_s = interval_s
        self.skip = skip
        self.follow_group = follow_group
        self.own_group = own_group
        self._followed: GroupInstance | None = None
        self.running: dict[str, tuple[MappingSpec, LocalEventSourceMapping]] = {}
        self._warned: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="esm-adopter", daemon=True)

    def start(self) -> Adopter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s + 5)
        for _, mapping in self.running.values():
            mapping.stop()
        self.running.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception:  # a bad mapping must not end adoption of the others
                log.exception("adopting event source mappings failed; retrying")
            self._stop.wait(self.interval_s)

    def sync(self) -> None:
        """Start, restart and stop local mappings to match moto's (one pass)."""
        assert self.base.region
        if self.follow_group is not None:
            found = foreign_group(self.account_id, self.base.region, self.own_group)
            if found != self._followed:
                self.follow_group(found)
                self._followed = found
        wanted = {
            spec.uuid: spec
            for spec in mappings_in(self.account_id, self.base.region)
            if not self.skip(spec.queue_arn)
        }
        for uuid in [u for u, (spec, _) in self.running.items() if wanted.get(u) != spec]:
            spec, mapping = self.running.pop(uuid)
            mapping.stop()
            log.info("stopped the local mapping of %s on %s", spec.function_name, spec.queue_arn)
        for uuid, spec in wanted.items():
            if uuid in self.running:
                continue
            handler, sqs = self._handler(spec)
            if handler is None:
                continue
            url = sqs.get_queue_url(QueueName=spec.queue_arn.rsplit(":", 1)[1])["QueueUrl"]
            mapping = LocalEventSourceMapping(
                sqs, url, handler, region=self.base.region, settings=spec.settings
            ).start()
            self.running[uuid] = (spec, mapping)
            log.info("running %s for %s locally", spec.function_name, spec.queue_arn)

    def _handler(self, spec: MappingSpec) -> tuple[Any, Any]:
        if spec.handler not in (COMPLETION, DEAD_LETTER):
            if spec.uuid not in self._warned:
                self._warned.add(spec.uuid)
                log.warning(
                    "event source mapping %s: %s runs %s, which the embedded stack cannot run",
                    spec.uuid,
                    spec.function_name,
                    spec.handler,
                )
            return None, None
        config = self.function_config(spec)
        pool = 10 * spec.settings.maximum_concurrency
        clients = self.clients_for(config, min(pool, 100))
        if spec.handler == COMPLETION:
            from bridge import completion

            handler = completion.make_handler(
                completion.Completion(clients.sfn, clients.sqs, config.results_dlq_url)
            )
            return handler, clients.sqs
        from bridge.dead_letter import DeadLetterHandler, archive_routes

        return DeadLetterHandler(clients.sfn, clients.sqs, archive_routes(config)).handle, (
            clients.sqs
        )

    def function_config(self, spec: MappingSpec) -> BridgeConfig:
        """The configuration the function's runtime would load from its environment, pointed
        at the embedded stack."""
        config = load_config(environ=dict(spec.environment))
        return config.model_copy(
            update={
                "region": self.base.region,
                "endpoint_url": self.base.endpoint_url,
                "access_key_id": self.base.access_key_id,
                "secret_access_key": self.base.secret_access_key,
            }
        )
