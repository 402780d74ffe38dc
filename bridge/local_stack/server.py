"""moto's server, in this process, on loopback, with state machine execution turned on.

In-process (not a subprocess) so the embedded stack can count every request it serves, patch
moto before it serves, and answer its own callers without HTTP (:meth:`EmbeddedServer.in_process`).
moto's Step Functions interpreter addresses its own SQS calls to ``http://localhost:$MOTO_PORT``,
so ``MOTO_PORT`` is set to this server's port (and those calls are answered in process).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer

from bridge.local_stack.compat.stepfunctions import serve_in_process
from bridge.local_stack.requests import RequestCounter, WSGIApp

HOST = "127.0.0.1"
#: Pending connections the kernel queues while every server thread is busy (werkzeug: 128). A
#: large fan-out's first seconds open hundreds of connections at once (workers, the local event
#: source, the interpreter's tasks); past the backlog the kernel drops them and clients see
#: connect timeouts. Linux caps it at net.core.somaxconn (4096 by default).
LISTEN_BACKLOG = 4096
#: The size werkzeug's post-response drain reads with (werkzeug/serving.py, run_wsgi).
_WERKZEUG_DRAIN_READ = 10_000_000


class _LoopbackServer(ThreadedWSGIServer):
    """werkzeug's threaded server with a listen backlog sized for a fan-out's bursts, that
    knows its open connections so that stopping it also ends the kept-alive ones."""

    request_queue_size = LISTEN_BACKLOG

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """End every open connection: a stopped server answers no one, kept alive or not."""
        with self._connections_lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)


def _keep_alive_handler() -> type[Any]:
    """moto's request handler, keeping HTTP/1.1 connections open between requests.

    werkzeug answers every request with ``Connection: close`` because ``http.server`` cannot
    skip a request body the application left unread before parsing the next request, so every
    call of every client would pay a TCP handshake, a new server thread and a teardown. This
    handler reads each request's body in full before the application runs (the application
    then reads it from memory), so the stream is always at the next request, and drops the
    ``close`` only for such requests; a chunked body, or one shorter than its
    ``Content-Length``, still closes the connection.
    After each response werkzeug also reads "whatever is left" on the socket (10 MB at a time,
    blocking), which on a kept-alive connection would be the client's next request: for a
    drained request that read finds nothing.
    """
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class DrainedReader:
        """The connection's reader, as werkzeug's post-response drain sees it."""

        def __init__(self, handler: KeepAliveHandler, raw: Any) -> None:
            self._handler = handler
            self._raw = raw

        def read(self, size: int = -1) -> bytes:
            if self._handler._drained and size == _WERKZEUG_DRAIN_READ:
                return b""
            data: bytes = self._raw.read(size)
            return data

        def __getattr__(self, name: str) -> Any:
            return getattr(self._raw, name)

    class KeepAliveHandler(MotoRequestHandler):
        _drained = False

        def setup(self) -> None:
            super().setup()
            # werkzeug writes a response's headers and body separately: on a kept-alive
            # connection Nagle's algorithm would hold the body for the client's delayed ACK
            # (~40 ms a request).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.rfile = DrainedReader(self, self.rfile)  # type: ignore[assignment]
            self.server.opened(self.connection)  # type: ignore[attr-defined]

        def finish(self) -> None:
            self.server.closed(self.connection)  # type: ignore[attr-defined]
            super().finish()

        def make_environ(self) -> dict[str, Any]:
            environ: dict[str, Any] = super().make_environ()
            self._drained = False
            if environ.get("wsgi.input_terminated"):  # chunked: werkzeug dechunks it
                return environ
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return environ
            body = environ["wsgi.input"].read(length) if length > 0 else b""
            environ["wsgi.input"] = io.BytesIO(body)
            self._drained = len(body) == max(length, 0)
            return environ

        def send_header(self, keyword: str, value: str) -> None:
            if self._drained and keyword.lower() == "connection" and value.lower() == "close":
                return
            super().send_header(keyword, value)

    return KeepAliveHandler


def _dispatcher(create_app: Callable[..., Any]) -> WSGIApp:
    """moto's request dispatcher, with its host-to-backend lookup memoised.

    moto resolves every request's backend under one global lock, listing moto's package
    directory (``os.listdir`` plus ~250 ``isdir`` calls) and matching ~1,000 URL patterns each
    time, which serialises every request behind that lock. The answer depends only on the host
    string, so it is cached.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    class Dispatcher(DomainDispatcherApplication):
        def __init__(self, create: Callable[..., Any]) -> None:
            super().__init__(create)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            try:
                return self._backends[host]
            except KeyError:
                backend = super().get_backend_for_host(host)
                self._backends[host] = backend
                return backend

    return Dispatcher(create_app)


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
        self._transport: Any = None

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def in_process(self, client: Any) -> Any:
        """``client`` (pointed at this server) answered in this process, without HTTP: for the
        stack's own callers (bridge.local_stack.in_process). Returns the client."""
        from bridge.local_stack.in_process import InProcessTransport

        if self._transport is None:
            self._transport = InProcessTransport(
                (self.endpoint_url, f"http://localhost:{self.port}"), self.counter
            )
        return self._transport.attach(client)

    def start(self) -> EmbeddedServer:
        if EmbeddedServer._running is not None:
            raise RuntimeError(
                "an embedded server already runs in this process "
                f"({EmbeddedServer._running.endpoint_url})"
            )
        from moto.moto_server.werkzeug_app import create_backend_app

        from bridge.local_stack.direct_dispatch import DirectDispatch

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.counter = RequestCounter(DirectDispatch(_dispatcher(create_backend_app)))
        self._server = _LoopbackServer(
            HOST, self._requested_port, self.counter, handler=_keep_alive_handler()
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
        serve_in_process(self.port, self.in_process)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if isinstance(self._server, _LoopbackServer):
                self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = self._transport = None
        if EmbeddedServer._running is self:
            EmbeddedServer._running = None
            serve_in_process()

    def _post(self, path: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.endpoint_url + path,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
