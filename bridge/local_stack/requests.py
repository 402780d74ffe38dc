"""Every request the embedded stack serves, counted by API and shown to observers.

One module below both ways a request arrives: over HTTP (the server wraps moto's WSGI
application in :class:`RequestCounter`) and in process (:mod:`bridge.local_stack.in_process`
shows each request to the same counter), so the demo's and the benchmarks' counts see both.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

FORM = "application/x-www-form-urlencoded"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def target_api(target: str | None) -> str | None:
    """``sqs:SendMessage`` / ``states:SendTaskSuccess`` from a JSON-protocol request's
    ``X-Amz-Target`` ("AmazonSQS.SendMessage"); another service keeps its prefix; None
    without a target."""
    if not target or "." not in target:
        return None
    prefix, operation = target.split(".", 1)
    service = "sqs" if prefix == "AmazonSQS" else "states" if "StepFunctions" in prefix else prefix
    return f"{service}:{operation}"


def request_body(environ: dict[str, Any]) -> bytes:
    """A request's body, put back for moto and the other observers (the WSGI input is a
    stream that reads once)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


class RequestCounter:
    """WSGI middleware counting requests by API (``sqs:SendMessageBatch``, ...).

    Requests the stack answers in process (bridge.local_stack.in_process) never reach the WSGI
    application; they are shown to :meth:`observe` as an environ of their own, so the counts and
    every ``observers`` callable (the benchmarks' per-queue ledger) see all requests alike."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        #: Called with each request's environ before it is answered.
        self.observers: list[Callable[[dict[str, Any]], None]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.observe(environ)
        return self.app(environ, start_response)

    def observe(self, environ: dict[str, Any]) -> None:
        """Count one request, over HTTP or in process, and show it to the observers."""
        name = self.api_name(environ)
        if name:
            with self._lock:
                self._counts[name] += 1
        for observer in self.observers:
            observer(environ)

    @staticmethod
    def api_name(environ: dict[str, Any]) -> str | None:
        api = target_api(environ.get("HTTP_X_AMZ_TARGET"))
        if api:
            return api
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")  # query protocol
        if not action and environ.get("CONTENT_TYPE", "").startswith(FORM):
            # Query protocol over POST (Auto Scaling): the action is in the form body.
            action = parse_qs(request_body(environ).decode("utf-8", "replace")).get("Action")
        return f"query:{action[0]}" if action else None

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
