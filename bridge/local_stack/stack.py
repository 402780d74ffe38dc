"""The embedded local AWS: server + resources + completion event source, one object.

``callback-bridge local up`` and ``callback-bridge demo`` both run one of these; workers in other
processes find it through the state file it writes.
"""

from __future__ import annotations

import gc
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from bridge.aws import Clients, build_clients
from bridge.config import BridgeConfig
from bridge.local_stack import compat
from bridge.local_stack.adopt import Adopter, GroupInstance
from bridge.local_stack.compat.stepfunctions import warm_interpreter_sqs_client
from bridge.local_stack.event_source import (
    EventSourceSettings,
    LocalEventSourceMapping,
    Observer,
)
from bridge.local_stack.imds import EmbeddedInstance, InstanceMetadataServer
from bridge.local_stack.resources import StackSettings, create_instance_group, create_resources
from bridge.local_stack.server import EmbeddedServer

REGION = "us-east-1"
#: moto accepts any credentials; these make it obvious they are not real.
DUMMY_ACCESS_KEY = "testing"
DUMMY_SECRET_KEY = "testing"


class LocalStack:
    """Start with :meth:`start`, stop with :meth:`stop` (or use as a context manager)."""

    def __init__(
        self,
        settings: StackSettings | None = None,
        state_file: Path | None = None,
        port: int = 0,
        observer: Observer | None = None,
        handler_log: IO[str] | None = None,
        patched: bool = True,
        event_source_settings: EventSourceSettings | None = None,
    ) -> None:
        self.settings = settings or StackSettings()
        #: The completion mapping's batch size, window, function timeout and concurrency
        #: (defaults mirror infra/modules/completion).
        self.event_source_settings = event_source_settings or EventSourceSettings()
        self.state_file = state_file
        self.server = EmbeddedServer(port)
        self.observer = observer
        self.handler_log = handler_log
        #: (the completion logger's handler, the stream it had): restored on stop.
        self._replaced_handler_stream: tuple[Any, Any] | None = None
        #: Apply the compatibility patches (off only to look at moto as shipped).
        self.patched = patched
        self.config: BridgeConfig | None = None
        self.clients: Clients | None = None
        self._service_clients: Clients | None = None
        #: The completion handler's own clients (see ``_completion_handler``).
        self.completion_clients: Clients | None = None
        self.event_source: LocalEventSourceMapping | None = None
        #: One per DLQ when the settings turn dead-letter handling on (bridge.dead_letter).
        self.dead_letter_sources: list[LocalEventSourceMapping] = []
        #: The loopback IMDS of the consumers group's one instance (settings.instance_group).
        self.imds: InstanceMetadataServer | None = None
        #: Runs the event source mappings others create here (``local deploy``: Terraform).
        self.adopter: Adopter | None = None
        #: The stack's own instance and configuration while the IMDS follows another group.
        self._own_instance: tuple[Any, BridgeConfig] | None = None

    def start(self) -> LocalStack:
        # The completion handler's CloudWatch metrics (EMF on stdout) mean nothing locally.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        # The consumers group launches from a placeholder image: moto's catalogue of public AMIs
        # is not needed, and loading it costs ~0.3 s each time moto resets its EC2 backend.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        if self.patched:
            compat.apply()
        else:
            compat.check_moto_version()
        try:
            self._start_services()
        except BaseException:
            self.stop()  # never leave a server, a poller or patches behind
            raise
        freeze_start_up_objects()
        return self

    def _start_services(self) -> None:
        self.server.start()
        base = BridgeConfig(
            region=REGION,
            endpoint_url=self.server.endpoint_url,
            access_key_id=DUMMY_ACCESS_KEY,
            secret_access_key=DUMMY_SECRET_KEY,
            source="embedded stack",
        )
        self.clients = build_clients(base, pool_size=20, ec2=self.settings.instance_group, s3=True)
        resources = create_resources(self.clients, self.settings)
        if self.settings.instance_group:
            resources.update(self._start_instance())
        self.config = base.model_copy(update=resources)
        #: What runs inside AWS's services here (the local event source mappings, the
        #: dead-letter handler) calls moto in process (bridge.local_stack.in_process).
        self._service_clients = self._in_process(build_clients(self.config, autoscaling=False))
        self.event_source = LocalEventSourceMapping(
            self._service_clients.sqs,
            resources["results_queue_url"],
            self._completion_handler(),
            region=REGION,
            observer=self.observer,
            settings=self.event_source_settings,
        ).start()
        if self.settings.dead_letter_handling:
            self._start_dead_letter_handling()
        self.adopter = self._adopter().start()
        if self.patched:
            warm_interpreter_sqs_client(REGION)
        if self.state_file:
            self.write_state(self.state_file)

    def _start_dead_letter_handling(self) -> None:
        """What the dead-letter Lambda's two event source mappings do on AWS."""
        from bridge.dead_letter import DeadLetterHandler, archive_routes

        assert self.clients and self.config
        routes = archive_routes(self.config)
        clients = self._service_clients
        assert clients is not None
        handler = DeadLetterHandler(clients.sfn, clients.sqs, routes)
        for dlq_url in routes:
            mapping = LocalEventSourceMapping(clients.sqs, dlq_url, handler.handle, region=REGION)
            mapping.start()
            self.dead_letter_sources.append(mapping)  # only started ones: stop() joins them

    def _adopter(self) -> Adopter:
        """What runs the event source mappings Terraform creates (bridge.local_stack.adopt):
        each function's own clients, answered in process like the stack's own mappings'."""
        from moto.core import DEFAULT_ACCOUNT_ID

        from bridge import completion

        assert self.config is not None

        def clients_for(config: BridgeConfig, pool_size: int) -> Clients:
            return self._in_process(completion.build_lambda_clients(config, pool_size=pool_size))

        return Adopter(
            self.config,
            clients_for,
            DEFAULT_ACCOUNT_ID,
            follow_group=self._follow_group if self.imds else None,
            own_group=self.config.asg_name,
        )

    def _follow_group(self, found: GroupInstance | None) -> None:
        """Point the instance metadata at an instance of a group Terraform made (or back at
        the stack's own once it is gone), and say so in the configuration and state file."""
        assert self.imds and self.clients and self.config
        if self._own_instance is None:
            self._own_instance = (self.imds.instance, self.config)
        if found is None:
            self.imds.instance, self.config = self._own_instance
        else:
            self.imds.instance = EmbeddedInstance(
                self.clients.autoscaling, found.group, found.instance_id, REGION
            )
            self.config = self._own_instance[1].model_copy(
                update={
                    "asg_name": found.group,
                    "instance_id": found.instance_id,
                    "lifecycle_hook_name": found.lifecycle_hook,
                }
            )
        if self.state_file:
            self.write_state(self.state_file)

    def _in_process(self, clients: Clients) -> Clients:
        """The SQS and Step Functions clients of what runs inside AWS's services (the local
        event source mappings, the Lambdas they invoke) answered without HTTP
        (bridge.local_stack.in_process)."""
        self.server.in_process(clients.sqs)
        self.server.in_process(clients.sfn)
        return clients

    def _start_instance(self) -> dict[str, str]:
        """The consumers group and the IMDS its one instance would have on EC2."""
        assert self.clients is not None
        group = create_instance_group(self.clients, self.settings)
        instance = EmbeddedInstance(
            self.clients.autoscaling, group["asg_name"], group["instance_id"], REGION
        )
        self.imds = InstanceMetadataServer(instance).start()
        return {**group, "metadata_endpoint": self.imds.endpoint}

    def _completion_handler(self) -> Any:
        from bridge import completion

        if self.handler_log is not None:
            # setStream answers the stream it replaced: stop() puts it back, so a later stack
            # in this process does not log to this one's closed file.
            handler: Any = completion.logger.registered_handler
            self._replaced_handler_stream = (handler, handler.setStream(self.handler_log))
        assert self.clients and self.config
        # The function's own clients, as on AWS: botocore retries off, the handler's are
        # bounded by the invocation's remaining time.
        clients = self._in_process(
            completion.build_lambda_clients(
                self.config,
                pool_size=completion.DEFAULT_WORKERS
                * self.event_source_settings.maximum_concurrency,
            )
        )
        #: Tests inject faults here (botocore ``before-call`` hooks), as AWS would answer.
        self.completion_clients = clients
        return completion.make_handler(
            completion.Completion(clients.sfn, clients.sqs, self.config.results_dlq_url)
        )

    def write_state(self, path: Path) -> None:
        assert self.config is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        state = self.config.model_dump(exclude={"source"})
        path.write_text(json.dumps(state, indent=2) + "\n")

    def stop(self) -> None:
        if self.adopter:
            self.adopter.stop()
        if self.event_source:
            self.event_source.stop()
        for source in self.dead_letter_sources:
            source.stop()
        if self.imds:
            self.imds.stop()
        self.server.stop()
        if self._replaced_handler_stream is not None:
            handler, stream = self._replaced_handler_stream
            if stream is not None:  # None: it already had this stream
                handler.setStream(stream)
            self._replaced_handler_stream = None
        if self.patched:
            compat.revert()
        gc.unfreeze()
        if self.state_file and self.state_file.exists():
            self.state_file.unlink()

    def request_counts(self) -> dict[str, int]:
        return self.server.counter.snapshot() if self.server.counter else {}

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def freeze_start_up_objects() -> None:
    """Leave what start-up built (moto's and botocore's modules and service models, about 340,000
    objects) out of the cyclic garbage collector's full passes.

    They live as long as the stack, so walking them again in every full pass during a run is
    wasted work. :meth:`LocalStack.stop` unfreezes them, so a process that starts many stacks
    (the tests) still collects the old ones.
    """
    gc.collect()
    gc.freeze()


def quiet_moto_logs() -> None:
    """moto's interpreter logs each state transition at INFO; keep the terminal readable."""
    for name in ("werkzeug", "moto", "botocore.credentials"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # The interpreter dumps whole parse trees on a failed state; the execution history has it.
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
