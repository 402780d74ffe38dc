"""A tiny HTTP health endpoint for the worker: ``GET /health`` answers the worker's state.

Load balancers, systemd watchdogs and people with ``curl`` ask the same question: is this worker
taking jobs? 200 means ready; 503 means it is draining or stopping (do not send it work, do not
kill it either: it is finishing jobs), or unhealthy (an internal thread died: it is releasing
its jobs and exiting). The body is whatever ``status()`` returns
(state, running jobs, counters), as JSON. It binds loopback only unless told otherwise, because
the status names jobs and the machine.

Results the results queue refuses (``results.spooled`` > 0, with a ``degraded`` reason) still
answer 200: the worker is sound and keeps them in its spool on local disk until the queue takes
them. A 503 there would invite a health check to replace the instance, which loses the spool
(and runs those jobs again elsewhere), and would not help: every worker meets the same queue.
Alarm on the ``spooled_results`` metric or the ``degraded`` field instead.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from consumers.threads import CriticalThread, OnDeath

log = logging.getLogger(__name__)

HEALTH_PATHS = frozenset({"/", "/health"})
READY = "ready"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server_version = "callback-bridge-health"
    timeout = 5  # a client that connects and says nothing must not hold a thread for ever

    def do_GET(self) -> None:
        self._respond(with_body=True)

    def do_HEAD(self) -> None:
        self._respond(with_body=False)

    def _respond(self, with_body: bool) -> None:
        if urlsplit(self.path).path not in HEALTH_PATHS:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path!r}"}, with_body)
            return
        status_fn: Callable[[], dict[str, Any]] = self.server.status  # type: ignore[attr-defined]
        try:
            status = status_fn()
            code = HTTPStatus.OK if status.get("state") == READY else HTTPStatus.SERVICE_UNAVAILABLE
        except Exception as exc:
            log.warning("health status failed: %s", exc)
            status, code = {"state": "unknown", "error": type(exc).__name__}, HTTPStatus(500)
        self._send(code, status, with_body)

    def _send(self, code: HTTPStatus, payload: dict[str, Any], with_body: bool) -> None:
        body = json.dumps(payload, default=str, separators=(",", ":")).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes hit this every few seconds: keep them out of stderr (DEBUG only)."""
        log.debug("health %s " + format, self.address_string(), *args)


class HealthServer:
    """Serves ``status()`` on ``host:port`` from a daemon thread.

    ``state == "ready"`` answers 200, any other state (``draining``, ``stopping``, ...) 503,
    unknown paths 404. ``port=0`` picks a free port; read it from :attr:`port`. Binding happens
    in the constructor so a taken port fails at start-up, not at the first probe."""

    def __init__(
        self,
        port: int,
        status: Callable[[], dict[str, Any]],
        host: str = "127.0.0.1",
        *,
        allow_non_loopback: bool = False,
        on_death: OnDeath | None = None,
    ) -> None:
        """``on_death``: told if the serving thread dies (:mod:`consumers.threads`)."""
        if not is_loopback(host) and not allow_non_loopback:
            raise ValueError(
                f"health host {host!r} is not a loopback address; the status names jobs and "
                "this machine, so pass allow_non_loopback=True to expose it deliberately"
            )
        if not 0 <= port <= 65535:
            raise ValueError(f"health port must be 0..65535, got {port}")
        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = server_class((host, port), _Handler)
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot serve health on {host}:{port}: {exc.strerror}"
            ) from None
        self._server.status = status  # type: ignore[attr-defined]
        self.host = host
        self._on_death = on_death
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/health"

    def start(self) -> HealthServer:
        """Start answering on a daemon thread; returns ``self`` for chaining."""
        if self._thread is None:
            self._thread = CriticalThread(
                "health-server",
                self._server.serve_forever,
                self._on_death,
                kwargs={"poll_interval": 0.2},
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
