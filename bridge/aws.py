"""The one place that builds boto3 clients: endpoint, credentials, retry mode and timeouts.

Everything else receives clients as arguments, so tests and the embedded stack can point the
same code at any endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from bridge.config import BridgeConfig

#: Step Functions answers meaning "this task is over" (timed out, stopped, already completed):
#: retrying a callback or heartbeat with that token can never succeed.
TASK_CLOSED_ERRORS = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})

#: Long polls wait up to 20 s; the read timeout must outlast them.
READ_TIMEOUT_S = 35
CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Clients:
    """The AWS clients the bridge calls."""

    sqs: Any
    sfn: Any


def client_config(pool_size: int = 10, max_attempts: int = 6) -> Config:
    """botocore's ``standard`` retry mode: backoff with jitter on throttling and 5xx."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        max_pool_connections=pool_size,
    )


def build_clients(config: BridgeConfig, pool_size: int = 10) -> Clients:
    """Clients for ``config``'s region and endpoint (``None`` endpoint = real AWS)."""
    session = boto3.session.Session(
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        region_name=config.region,
    )
    kwargs: dict[str, Any] = {"config": client_config(pool_size)}
    if config.endpoint_url:
        kwargs["endpoint_url"] = config.endpoint_url
    return Clients(
        sqs=session.client("sqs", **kwargs), sfn=session.client("stepfunctions", **kwargs)
    )
