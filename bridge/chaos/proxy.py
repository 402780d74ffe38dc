"""A fault-injecting HTTP proxy on 127.0.0.1 in front of the embedded server.

The bridge's own callers (worker processes, the completion handler, the dead-letter handler) are
pointed at this proxy instead of the server, so faults reach exactly the code under test and
never moto's own Step Functions interpreter or the local event source (AWS's side of the wire).
Every SQS and Step Functions call (JSON protocol: ``X-Amz-Target``) may be answered, as AWS
would, with:

* ``throttle``: HTTP 400 ``ThrottlingException`` before the call reaches the server;
* ``error5xx``: HTTP 500 ``InternalFailure`` / 503 ``ServiceUnavailable`` before it;
* ``lost_response``: the call *is* served, then its answer is replaced by a 500, so the caller
  cannot tell that its SendMessageBatch, DeleteMessage or SendTaskSuccess took effect (the
  fault that makes duplicates);
* ``outage_refused``: while an outage window for ``sfn`` or ``results`` (calls naming the results
  queue) is open, every matching call is refused (503 for Step Functions, a dropped connection
  for SQS);
* ``queue_missing``: while the results queue is "missing", every call naming it is sent on
  with the name of a queue that does not exist, so the caller gets the server's own
  ``QueueDoesNotExist`` (a permanent error: a deleted queue, a wrong URL), not a transient one.

Whether a call is faulted is drawn from a seeded RNG. The proxy also remembers, per task token
(hashed, never stored), how many ``SendTaskSuccess`` calls Step Functions accepted: more than
one for a token is a duplicate success. Other traffic (Auto Scaling's query protocol) passes.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from bridge.local_stack.requests import target_api

HOST = "127.0.0.1"
FAULT_KINDS = ("throttle", "error5xx", "lost_response", "outage_refused", "queue_missing")
#: Appended to the results queue's name while it is "missing".
MISSING_SUFFIX = "-missing-chaos"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


@dataclass(frozen=True)
class FaultRates:
    """Fraction of SQS / Step Functions calls given each fault (0 turns one off)."""

    throttle: float = 0.03
    error5xx: float = 0.02
    lost_response: float = 0.01

    def __post_init__(self) -> None:
        total = self.throttle + self.error5xx + self.lost_response
        if min(self.throttle, self.error5xx, self.lost_response) < 0 or total > 0.5:
            raise ValueError(f"fault rates must be >= 0 and sum to at most 0.5, got {self}")


def api_of(headers: Any) -> str | None:
    """``sqs:SendMessage`` / ``states:SendTaskSuccess`` from ``X-Amz-Target``, else None."""
    api = target_api(headers.get("X-Amz-Target"))
    return api if api and api.startswith(("sqs:", "states:")) else None


def token_key(token: str) -> str:
    """What the proxy keeps of a token: a hash (a token is a credential)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class _QuietServer(ThreadingHTTPServer):
    """A client that drops its connection (a SIGKILLed consumer) is normal here, not an error
    worth a traceback on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


class FaultProxy:
    """Start with :meth:`start`; ``endpoint_url`` is what the bridge's clients use."""

    def __init__(
        self,
        upstream_url: str,
        rng: random.Random,
        rates: FaultRates | None = None,
        results_queue_name: str = "",
    ) -> None:
        parsed = urlparse(upstream_url)
        self.upstream = (parsed.hostname or HOST, parsed.port or 80)
        self.rng = rng
        self.rates = rates or FaultRates()
        self.results_queue_name = results_queue_name
        self._lock = threading.Lock()
        #: (fault kind, api) -> count
        self.faults: Counter[tuple[str, str]] = Counter()
        self.calls: Counter[str] = Counter()
        #: token hash -> SendTaskSuccess calls Step Functions answered 200
        self.successes: Counter[str] = Counter()
        self._outages: dict[str, float] = {}  # target -> monotonic end
        self._missing_until = 0.0
        self.enabled = True
        self._local = threading.local()
        self._server = _QuietServer((HOST, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.address[1]}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever, which must be running
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    # -- the plan's controls --------------------------------------------------------------
    def outage(self, target: str, seconds: float) -> None:
        """Refuse every ``target`` call (``sfn`` or ``results``) for ``seconds``."""
        with self._lock:
            self._outages[target] = time.monotonic() + seconds

    def missing(self, seconds: float) -> None:
        """Answer every call naming the results queue "does not exist" for ``seconds``."""
        with self._lock:
            self._missing_until = time.monotonic() + seconds

    def missing_body(self, body: bytes) -> bytes:
        """``body`` with the results queue's URL pointing at a queue that does not exist."""
        name = self.results_queue_name
        return body.replace(f'/{name}"'.encode(), f'/{name}{MISSING_SUFFIX}"'.encode())

    def fault_counts(self) -> dict[str, int]:
        with self._lock:
            out: Counter[str] = Counter()
            for (kind, _api), n in self.faults.items():
                out[kind] += n
            return dict(out)

    def duplicate_successes(self) -> int:
        """Tokens for which Step Functions accepted SendTaskSuccess more than once."""
        with self._lock:
            return sum(1 for n in self.successes.values() if n > 1)

    # -- decisions ------------------------------------------------------------------------
    def _target(self, api: str, body: bytes) -> str | None:
        if api.startswith("states:"):
            return "sfn"
        if self.results_queue_name and api.startswith("sqs:"):
            try:
                url = json.loads(body or b"{}").get("QueueUrl", "")
            except (ValueError, AttributeError):
                return None
            if str(url).rstrip("/").endswith("/" + self.results_queue_name):
                return "results"
        return None

    def decide(self, api: str | None, body: bytes) -> str | None:
        """The fault for this call, or None to pass it through (and count it)."""
        if api is None:
            return None
        with self._lock:
            self.calls[api] += 1
            if not self.enabled:
                return None
            target = self._target(api, body)
            if target and self._outages.get(target, 0) > time.monotonic():
                kind: str | None = "outage_refused"
            elif target == "results" and self._missing_until > time.monotonic():
                kind = "queue_missing"
            else:
                draw = self.rng.random()
                rates = self.rates
                if draw < rates.throttle:
                    kind = "throttle"
                elif draw < rates.throttle + rates.error5xx:
                    kind = "error5xx"
                elif draw < rates.throttle + rates.error5xx + rates.lost_response:
                    kind = "lost_response"
                else:
                    kind = None
            if kind:
                self.faults[(kind, api)] += 1
            return kind

    def record(self, api: str | None, body: bytes, status: int) -> None:
        if api != "states:SendTaskSuccess" or status != 200:
            return
        try:
            token = json.loads(body).get("taskToken", "")
        except (ValueError, AttributeError):
            return
        with self._lock:
            self.successes[token_key(str(token))] += 1

    # -- forwarding -----------------------------------------------------------------------
    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request upstream on this thread's keep-alive connection."""
        for attempt in (1, 2):
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = http.client.HTTPConnection(*self.upstream, timeout=60)
                self._local.connection = connection
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                return response.status, response.getheaders(), data
            except (OSError, http.client.HTTPException):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return  # no access log: request lines carry nothing, keep it quiet

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                api = api_of(self.headers)
                fault = proxy.decide(api, body)
                if fault == "outage_refused" and api and api.startswith("sqs:"):
                    self.close_connection = True  # refused: the connection just drops
                    # shutdown, not only close: rfile/wfile hold the socket open until the
                    # handler finishes, and the client would wait for an answer meanwhile.
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    self.connection.close()
                    return
                if fault in ("throttle", "error5xx", "outage_refused"):
                    self._error(fault)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if fault == "queue_missing":
                    body = proxy.missing_body(body)
                    headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
                    headers["Content-Length"] = str(len(body))
                try:
                    status, answer_headers, data = proxy.forward(
                        self.command, self.path, headers, body
                    )
                except (OSError, http.client.HTTPException):
                    self._error("error5xx")
                    return
                proxy.record(api, body, status)
                if fault == "lost_response":
                    self._error("error5xx")
                    return
                self.send_response(status)
                for name, value in answer_headers:
                    if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, fault: str) -> None:
                if fault == "throttle":
                    status, code = 400, "ThrottlingException"
                elif fault == "outage_refused":
                    status, code = 503, "ServiceUnavailable"
                else:
                    status, code = proxy.rng.choice(
                        [(500, "InternalFailure"), (503, "ServiceUnavailable")]
                    )
                data = json.dumps({"__type": code, "message": f"chaos: injected {fault}"})
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data.encode())

            do_POST = do_GET = do_PUT = do_DELETE = do_HEAD = _any

        return Handler
