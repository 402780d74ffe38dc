"""Count every request the embedded server answers, by API *and* by the queue or bucket it
touches, so one server can host several scenarios and charge each only its own requests.

The embedded stack's own counter (``LocalStack.request_counts()``) sees every client: workers in
other processes over HTTP, and the embedded event source mapping, the completion handler and
moto's Step Functions interpreter, which the stack answers in process. It counts by API only,
and skips S3 (REST protocol: no action name). The ledger is one of that counter's observers: it
sees the same requests, as WSGI environs, and adds the resource and S3's operations.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from typing import Any
from urllib.parse import urlparse

from bridge.local_stack.requests import RequestCounter, request_body

Key = tuple[str, str]  # (api, resource): ("sqs:ReceiveMessage", "bench-naive-jobs")

_S3_METHODS = {"PUT": "PutObject", "HEAD": "HeadObject", "GET": "GetObject", "DELETE": "Delete"}


def _queue_name(body: bytes) -> str:
    try:
        url = json.loads(body or b"{}").get("QueueUrl", "")
    except (ValueError, AttributeError):
        return ""
    return str(url).rstrip("/").rsplit("/", 1)[-1]


def _batch_entries(environ: dict[str, Any]) -> int:
    """Entries of an SQS batch request (its body, already read and put back by ``key``)."""
    stream = environ.get("wsgi.input")
    body = stream.getvalue() if isinstance(stream, io.BytesIO) else b""
    try:
        return len(json.loads(body or b"{}").get("Entries") or [])
    except (ValueError, AttributeError, TypeError):
        return 0


def _s3_key(environ: dict[str, Any]) -> Key | None:
    """S3 speaks REST: the service is in the signature's credential scope."""
    if "/s3/aws4_request" not in environ.get("HTTP_AUTHORIZATION", ""):
        return None
    parts = [p for p in environ.get("PATH_INFO", "").split("/") if p]
    host = environ.get("HTTP_HOST", "").split(":")[0]
    if host.count(".") and not host.replace(".", "").isdigit() and not host.startswith("localhost"):
        bucket, has_key = host.split(".", 1)[0], bool(parts)  # virtual-hosted style
    else:
        bucket, has_key = (parts[0] if parts else ""), len(parts) > 1
    method = environ.get("REQUEST_METHOD", "GET")
    if not has_key:
        return (f"s3:{'ListObjects' if method == 'GET' else method + 'Bucket'}", bucket)
    return (f"s3:{_S3_METHODS.get(method, method)}", bucket)


class RequestLedger:
    """``(api, resource)`` counts; resource is a queue name, a bucket, or ''."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[Key] = Counter()
        #: Entries of SQS batch calls (a visibility extension is one entry, not one call).
        self._entries: Counter[Key] = Counter()

    def observe(self, environ: dict[str, Any]) -> None:
        """Count one request (a :class:`RequestCounter` observer)."""
        key = self.key(environ)
        if key is None:
            return
        entries = (
            _batch_entries(environ) if key[0].startswith("sqs:") and key[0].endswith("Batch") else 0
        )
        with self._lock:
            self._counts[key] += 1
            self._entries[key] += entries

    @staticmethod
    def key(environ: dict[str, Any]) -> Key | None:
        s3 = _s3_key(environ)
        if s3 is not None:
            return s3
        api = RequestCounter.api_name(environ)
        if api is None:
            return None
        if api.startswith("sqs:"):
            return (api, _queue_name(request_body(environ)))
        return (api, "")

    def snapshot(self) -> Counter[Key]:
        with self._lock:
            return Counter(self._counts)

    def entries(self) -> Counter[Key]:
        """Entries of SQS batch calls so far, by (api, resource)."""
        with self._lock:
            return Counter(self._entries)

    def count(self, api: str, resource: str) -> int:
        with self._lock:
            return self._counts[(api, resource)]

    def wait_for(self, api: str, resource: str, at_least: int, timeout_s: float) -> bool:
        """Wait until ``api`` on ``resource`` was called ``at_least`` times (consumers are
        up once each has long-polled its queue)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.count(api, resource) >= at_least:
                return True
            time.sleep(0.05)
        return False

    @classmethod
    def install(cls, stack: Any) -> RequestLedger:
        """A ledger observing ``stack``'s request counter (a started ``LocalStack``)."""
        counter = stack.server.counter
        assert counter is not None, "the stack is not started"
        ledger = cls()
        counter.observers.append(ledger.observe)
        return ledger


def queue_name(url: str) -> str:
    return urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]


def window(before: Counter[Key], after: Counter[Key], resources: set[str]) -> dict[str, int]:
    """Requests by API between two snapshots: on ``resources`` (queues, buckets), plus every
    request that names none (Step Functions)."""
    out: Counter[str] = Counter()
    for (api, resource), n in (after - before).items():
        if resource in resources or (resource == "" and not api.startswith(("sqs:", "s3:"))):
            out[api] += n
    return dict(out)
