"""A loopback instance metadata service (IMDSv2) for the embedded stack's one EC2 instance.

A worker on a laptop gets ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` pointing here (``local env``) and
then reads its instance id, its Auto Scaling target lifecycle state and spot interruption notices
exactly as it would on EC2, so the scale-in and drain code runs unchanged. Served like an instance
launched with ``HttpTokens: required`` (the launch template in ``infra/modules/consumers``):

* ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds`` (1 to 21600) returns a
  token; a missing or out-of-range TTL is 400; a request carrying ``X-Forwarded-For`` is 403
  (IMDS refuses proxied token requests);
* ``GET /latest/meta-data/...`` needs ``X-aws-ec2-metadata-token``: none, unknown or expired is
  401. Paths: ``instance-id``, ``autoscaling/target-lifecycle-state``, ``spot/instance-action``
  (404 until a notice, then ``{"action": "terminate", "time": "...Z"}``),
  ``placement/availability-zone``, ``placement/region``; anything else is 404.

Control endpoints, for a local user or a test (never on EC2), without a token:

* ``POST /bridge-control/terminate``: the group starts terminating the instance (the embedded
  moto then holds it in ``Terminating:Wait`` behind the termination hook, compat patch
  ``autoscaling-termination-hooks``), so ``target-lifecycle-state`` becomes ``Terminated``;
* ``POST /bridge-control/spot?seconds=120``: a spot interruption notice for ``seconds`` from now.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

HOST = "127.0.0.1"
MAX_TOKEN_TTL_S = 21600
SPOT_NOTICE_S = 120  # "a two-minute warning"
SHUTDOWN_POLL_S = 0.1  # how soon stop() returns (the stdlib default, 0.5 s, slows every test)
TOKEN_PATH = "/latest/api/token"
META = "/latest/meta-data/"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"

log = logging.getLogger(__name__)


class Instance(Protocol):
    """What the server needs to know about the instance it describes."""

    instance_id: str
    availability_zone: str

    def target_lifecycle_state(self) -> str | None: ...

    def terminate(self) -> None: ...


def target_state(lifecycle_state: str | None) -> str:
    """The IMDS ``target-lifecycle-state`` for an Auto Scaling ``LifecycleState`` (``None``:
    the instance is no longer in the group)."""
    if lifecycle_state is None or lifecycle_state.startswith("Terminat"):
        return "Terminated"
    if lifecycle_state in ("Standby", "EnteringStandby"):
        return "Standby"
    if lifecycle_state.startswith("Detach"):
        return "Detached"
    return "InService"  # InService, Pending, Pending:Wait, Pending:Proceed


class EmbeddedInstance:
    """The embedded Auto Scaling group's instance. Its state is read from moto in this process
    (a worker polling every few seconds adds no request to the stack's counts); termination goes
    through the Auto Scaling API, like a scale-in of the group by one."""

    def __init__(self, autoscaling: Any, group_name: str, instance_id: str, region: str) -> None:
        self.autoscaling, self.group_name = autoscaling, group_name
        self.instance_id, self.region = instance_id, region
        self.availability_zone = f"{region}a"

    def lifecycle_state(self) -> str | None:
        from moto.autoscaling.models import autoscaling_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        group = autoscaling_backends[DEFAULT_ACCOUNT_ID][self.region].autoscaling_groups.get(
            self.group_name
        )
        for state in group.instance_states if group else []:
            if state.instance.id == self.instance_id:
                self.availability_zone = str(state.availability_zone)
                return str(state.lifecycle_state)
        return None

    def target_lifecycle_state(self) -> str | None:
        return target_state(self.lifecycle_state())

    def terminate(self) -> None:
        if self.lifecycle_state() is None:
            return  # already gone: nothing left to terminate
        self.autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=self.instance_id, ShouldDecrementDesiredCapacity=True
        )


class StaticInstance:
    """An instance with no Auto Scaling behind it: InService until told to terminate."""

    def __init__(self, instance_id: str, availability_zone: str = "us-east-1a") -> None:
        self.instance_id, self.availability_zone = instance_id, availability_zone
        self.terminated = False

    def target_lifecycle_state(self) -> str | None:
        return "Terminated" if self.terminated else "InService"

    def terminate(self) -> None:
        self.terminated = True


class InstanceMetadataServer:
    """Start with :meth:`start`, stop with :meth:`stop`; ``endpoint`` is the base URL."""

    def __init__(
        self, instance: Instance, port: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        self.instance = instance
        self.clock = clock
        self._requested_port = port
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self._terminating = False
        self.spot_notice: dict[str, str] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "IMDS not started"
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> InstanceMetadataServer:
        server = ThreadingHTTPServer((HOST, self._requested_port), _handler_class(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(SHUTDOWN_POLL_S,), name="imds", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> InstanceMetadataServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the handler calls ---------------------------------------------------------

    def issue_token(self, ttl_s: int) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + ttl_s
        return token

    def token_valid(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and self._tokens.get(token, 0) > time.monotonic()

    def metadata(self, path: str) -> str | None:
        """The value served at ``/latest/meta-data/<path>``, ``None`` for 404."""
        if path == "instance-id":
            return self.instance.instance_id
        if path == "autoscaling/target-lifecycle-state":
            return "Terminated" if self._terminating else self.instance.target_lifecycle_state()
        if path == "spot/instance-action":
            return json.dumps(self.spot_notice) if self.spot_notice else None
        if path == "placement/availability-zone":
            return self.instance.availability_zone
        if path == "placement/region":
            return self.instance.availability_zone[:-1]
        return None

    def announce_termination(self) -> dict[str, str]:
        self.instance.terminate()
        self._terminating = True
        log.info("IMDS: instance %s is terminating", self.instance.instance_id)
        return {"instance_id": self.instance.instance_id, "target_lifecycle_state": "Terminated"}

    def announce_spot_interruption(self, seconds: float = SPOT_NOTICE_S) -> dict[str, str]:
        when = datetime.fromtimestamp(self.clock(), UTC) + timedelta(seconds=seconds)
        self.spot_notice = {"action": "terminate", "time": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
        log.info("IMDS: spot interruption notice for %s", self.spot_notice["time"])
        return dict(self.spot_notice)


def _handler_class(imds: InstanceMetadataServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "EC2ws"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("IMDS %s", format % args)

        def send(self, status: int, body: str = "", content_type: str = "text/plain") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            self._drain_body()
            if urlparse(self.path).path != TOKEN_PATH:
                return self.send(404, "Not Found")
            if self.headers.get("X-Forwarded-For"):
                return self.send(403, "Forbidden")
            try:
                ttl = int(self.headers.get(TTL_HEADER, ""))
            except ValueError:
                ttl = 0
            if not 1 <= ttl <= MAX_TOKEN_TTL_S:
                return self.send(400, "Bad Request")
            token = imds.issue_token(ttl)
            self.send_response(200)
            self.send_header(TTL_HEADER, str(ttl))
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(token)))
            self.end_headers()
            self.wfile.write(token.encode())

        def do_GET(self) -> None:
            path = urlparse(self.path).path
            if not path.startswith(META):
                return self.send(404, "Not Found")
            if not imds.token_valid(self.headers.get(TOKEN_HEADER)):
                return self.send(401, "Unauthorized")
            value = imds.metadata(path[len(META) :].strip("/"))
            if value is None:
                return self.send(404, "Not Found")
            return self.send(200, value)

        def do_POST(self) -> None:
            self._drain_body()
            url = urlparse(self.path)
            try:
                if url.path == "/bridge-control/terminate":
                    answer = imds.announce_termination()
                elif url.path == "/bridge-control/spot":
                    value = parse_qs(url.query).get("seconds", [str(SPOT_NOTICE_S)])[0]
                    try:
                        seconds = float(value)
                    except ValueError:
                        raise ValueError(f"seconds must be a number, not {value!r}") from None
                    if not 0 <= seconds <= 3600:
                        raise ValueError(f"seconds must be between 0 and 3600, not {seconds:g}")
                    answer = imds.announce_spot_interruption(seconds)
                else:
                    return self.send(404, "Not Found")
            except ValueError as exc:
                return self.send(400, json.dumps({"error": str(exc)}), "application/json")
            except Exception as exc:  # the stack's answer, not a dead connection
                log.warning("IMDS control %s failed: %s", url.path, exc)
                return self.send(500, json.dumps({"error": str(exc)}), "application/json")
            return self.send(200, json.dumps(answer), "application/json")

        def _drain_body(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)

    return Handler


class AnnounceError(RuntimeError):
    """The stack's IMDS did not take the announcement (the message says why)."""


def announce(endpoint: str, event: str, seconds: float = SPOT_NOTICE_S) -> dict[str, str]:
    """Ask a running stack's IMDS to announce ``event`` (``terminate`` or ``spot``)."""
    import urllib.error
    import urllib.request

    if event not in ("terminate", "spot"):
        raise AnnounceError(f"unknown event {event!r}: use terminate or spot")
    query = f"?seconds={seconds:g}" if event == "spot" else ""
    url = f"{endpoint.rstrip('/')}/bridge-control/{event}{query}"
    request = urllib.request.Request(url, data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            detail = exc.reason
        raise AnnounceError(f"{endpoint} refused the announcement: {detail}") from None
    except OSError as exc:
        raise AnnounceError(f"no instance metadata service answers at {endpoint}: {exc}") from None
