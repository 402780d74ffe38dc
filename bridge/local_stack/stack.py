"""The embedded local AWS: server + resources + completion event source, one object.

``callback-bridge local up`` and ``callback-bridge demo`` both run one of these; workers in other
processes find it through the state file it writes.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from bridge.aws import Clients, build_clients
from bridge.config import BridgeConfig
from bridge.local_stack import compat
from bridge.local_stack.event_source import LocalEventSourceMapping, Observer
from bridge.local_stack.resources import StackSettings, create_resources
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
    ) -> None:
        self.settings = settings or StackSettings()
        self.state_file = state_file
        self.server = EmbeddedServer(port)
        self.observer = observer
        self.handler_log = handler_log
        #: Apply the compatibility patches (off only to look at moto as shipped).
        self.patched = patched
        self.config: BridgeConfig | None = None
        self.clients: Clients | None = None
        self.event_source: LocalEventSourceMapping | None = None

    def start(self) -> LocalStack:
        # The completion handler's CloudWatch metrics (EMF on stdout) mean nothing locally.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        if self.patched:
            compat.apply()
        else:
            compat.check_moto_version()
        try:
            self._start_services()
        except BaseException:
            self.stop()  # never leave a server, a poller or patches behind
            raise
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
        self.clients = build_clients(base, pool_size=20)
        resources = create_resources(self.clients, self.settings)
        self.config = base.model_copy(update=resources)
        self.event_source = LocalEventSourceMapping(
            self.clients.sqs,
            resources["results_queue_url"],
            self._completion_handler(),
            region=REGION,
            observer=self.observer,
        ).start()
        if self.state_file:
            self.write_state(self.state_file)

    def _completion_handler(self) -> Any:
        from bridge import completion

        if self.handler_log is not None:
            completion.logger.registered_handler.setStream(self.handler_log)  # type: ignore[attr-defined]
        assert self.clients and self.config
        return completion.make_handler(
            completion.Completion(self.clients.sfn, self.clients.sqs, self.config.results_dlq_url)
        )

    def write_state(self, path: Path) -> None:
        assert self.config is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        state = self.config.model_dump(exclude={"source"})
        path.write_text(json.dumps(state, indent=2) + "\n")

    def stop(self) -> None:
        if self.event_source:
            self.event_source.stop()
        self.server.stop()
        if self.patched:
            compat.revert()
        if self.state_file and self.state_file.exists():
            self.state_file.unlink()

    def request_counts(self) -> dict[str, int]:
        return self.server.counter.snapshot() if self.server.counter else {}

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def quiet_moto_logs() -> None:
    """moto's interpreter logs each state transition at INFO; keep the terminal readable."""
    for name in ("werkzeug", "moto", "botocore.credentials"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # The interpreter dumps whole parse trees on a failed state; the execution history has it.
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
