"""moto's server, in this process, on loopback, with state machine execution turned on.

In-process (not a subprocess) so the embedded stack can count every request it serves and, later,
patch moto before it serves. moto's Step Functions interpreter makes its own SQS calls to
``http://localhost:$MOTO_PORT``, so ``MOTO_PORT`` is set to this server's port.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from werkzeug.serving import BaseWSGIServer, make_server

HOST = "127.0.0.1"
FORM = "application/x-www-form-urlencoded"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestCounter:
    """WSGI middleware counting requests by API (``sqs:SendMessageBatch``, ...)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        name = self.api_name(environ)
        if name:
            with self._lock:
                self._counts[name] += 1
        return self.app(environ, start_response)

    @staticmethod
    def api_name(environ: dict[str, Any]) -> str | None:
        target = environ.get("HTTP_X_AMZ_TARGET")  # JSON protocol: "AmazonSQS.SendMessage"
        if target and "." in target:
            prefix, operation = target.split(".", 1)
            service = (
                "sqs"
                if prefix == "AmazonSQS"
                else "states"
                if "StepFunctions" in prefix
                else prefix
            )
            return f"{service}:{operation}"
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")  # query protocol
        if not action and environ.get("CONTENT_TYPE", "").startswith(FORM):
            # Query protocol over POST (Auto Scaling): the action is in the form body. Read it
            # and put it back for moto.
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        return f"query:{action[0]}" if action else None

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class EmbeddedServer:
    """A moto server thread bound to 127.0.0.1 (port 0 picks a free port).

    moto keeps its state in process-global backends, so one process runs one embedded server
    at a time; starting a second while one runs is refused."""

    _running: EmbeddedServer | None = None

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.counter: RequestCounter | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> EmbeddedServer:
        if EmbeddedServer._running is not None:
            raise RuntimeError(
                "an embedded server already runs in this process "
                f"({EmbeddedServer._running.endpoint_url})"
            )
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.counter = RequestCounter(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            HOST,
            self._requested_port,
            self.counter,
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        os.environ["MOTO_PORT"] = str(self.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="moto-server", daemon=True
        )
        self._thread.start()
        # moto's backends are process-global: a stack started earlier in this process would
        # otherwise leave its queues and messages behind for this one.
        self._post("/moto-api/reset", {})
        self._post("/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
        EmbeddedServer._running = self
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
        if EmbeddedServer._running is self:
            EmbeddedServer._running = None

    def _post(self, path: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.endpoint_url + path,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
