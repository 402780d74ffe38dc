"""The EC2 instance metadata service (IMDSv2), read with the standard library.

Why not botocore's fetcher: it only exposes credentials and the region; a worker also needs the
instance id, the Auto Scaling target lifecycle state and spot interruption notices. The endpoint
comes from ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` like botocore's and the AWS SDKs' (the embedded
stack's ``local env`` points it at its loopback IMDS), else ``http://169.254.169.254``;
``AWS_EC2_METADATA_DISABLED=true`` turns it off as it does for botocore.

IMDSv2: ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds``, then GETs with
``X-aws-ec2-metadata-token``. The token is cached until shortly before its TTL ends and fetched
again after a 401 (an IMDS restart forgets tokens). Calls no AWS API and needs no IAM permission;
a worker in a container needs the launch template's ``http_put_response_hop_limit`` ≥ 2.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from bridge import strict_json

DEFAULT_ENDPOINT = "http://169.254.169.254"
ENDPOINT_ENV = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
DISABLED_ENV = "AWS_EC2_METADATA_DISABLED"
TOKEN_TTL_S = 21600
TOKEN_MARGIN_S = 60  # fetch a new token this long before the old one expires


class MetadataError(RuntimeError):
    """The metadata service did not answer, or answered something unexpected."""


class MetadataSource(Protocol):
    """What :class:`~consumers.instance.InstanceWatcher` reads (tests may pass their own)."""

    def target_lifecycle_state(self) -> str | None: ...

    def spot_action(self) -> dict[str, Any] | None: ...


class InstanceMetadata:
    """IMDSv2 client. ``timeout_s`` bounds each request, so :meth:`available` is quick off EC2."""

    def __init__(
        self,
        endpoint: str | None = None,
        timeout_s: float = 1.0,
        token_ttl_s: int = TOKEN_TTL_S,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if environ is None else environ
        self.endpoint = (endpoint or env.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")
        self.disabled = env.get(DISABLED_ENV, "").lower() == "true"
        self.timeout_s = timeout_s
        self.token_ttl_s = token_ttl_s
        self.clock = clock
        self._token: str | None = None
        self._token_expires = 0.0

    def available(self) -> bool:
        """True when a metadata service answers (a token request succeeds)."""
        try:
            self._fresh_token()
            return True
        except MetadataError:
            return False

    def instance_id(self) -> str:
        value = self.get("meta-data/instance-id")
        if not value:
            raise MetadataError(f"{self.endpoint} serves no instance-id")
        return value

    def target_lifecycle_state(self) -> str | None:
        """``InService``, ``Terminated`` (a termination lifecycle hook holds the instance), ...;
        ``None`` when the instance is not in an Auto Scaling group."""
        return self.get("meta-data/autoscaling/target-lifecycle-state")

    def spot_action(self) -> dict[str, Any] | None:
        """``{"action": "terminate"|"stop"|"hibernate", "time": "...Z"}`` once EC2 has sent a
        spot interruption notice, else ``None``. A notice that is there but unreadable (not
        JSON, no string ``time``) is still a notice: ``{"action": "unknown", "time": None,
        "unreadable": <its head>}``; the caller assumes the usual two minutes."""
        text = self.get("meta-data/spot/instance-action")
        if text is None:
            return None
        try:
            notice = strict_json.loads(text, max_depth=4)
            if not isinstance(notice, dict) or not isinstance(notice.get("time"), str):
                raise ValueError("not an object with a string time")
            seconds_until(notice["time"], 0.0)  # validates the time
        except ValueError:  # strict_json.JSONError too
            return {"action": "unknown", "time": None, "unreadable": text[:200]}
        return dict(notice)

    def get(self, path: str) -> str | None:
        """The text at ``/latest/<path>``; ``None`` for 404 (not there on this instance)."""
        for attempt in (1, 2):
            request = urllib.request.Request(
                f"{self.endpoint}/latest/{path}",
                headers={"X-aws-ec2-metadata-token": self._fresh_token()},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return str(response.read().decode())
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                if exc.code == 401 and attempt == 1:
                    self._token = None  # expired or forgotten: one fresh token, then give up
                    continue
                raise MetadataError(f"GET {path}: HTTP {exc.code} from {self.endpoint}") from None
            except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
                raise MetadataError(f"GET {path} from {self.endpoint}: {exc}") from None
        raise MetadataError(f"GET {path}: {self.endpoint} refused a fresh token")

    def _fresh_token(self) -> str:
        if self.disabled:
            raise MetadataError(f"instance metadata disabled ({DISABLED_ENV}=true)")
        if self._token and self.clock() < self._token_expires:
            return self._token
        request = urllib.request.Request(
            f"{self.endpoint}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(self.token_ttl_s)},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                token = str(response.read().decode())
        except urllib.error.HTTPError as exc:
            raise MetadataError(f"IMDSv2 token: HTTP {exc.code} from {self.endpoint}") from None
        except (OSError, ValueError) as exc:
            raise MetadataError(f"IMDSv2 token from {self.endpoint}: {exc}") from None
        self._token = token
        self._token_expires = self.clock() + max(1, self.token_ttl_s - TOKEN_MARGIN_S)
        return token


#: How long EC2 gives a spot instance after its interruption notice.
SPOT_WARNING_S = 120.0


def seconds_until(timestamp: str, now: float) -> float:
    """Seconds from ``now`` (epoch seconds) to an IMDS time such as ``2026-05-01T12:00:00Z``."""
    when = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"time without a zone: {timestamp}")
    return when.timestamp() - now
