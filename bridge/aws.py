"""The one place that builds boto3 clients: endpoint, credentials, retry mode and timeouts.

Everything else receives clients as arguments, so tests and the embedded stack can point the
same code at any endpoint.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.loaders
import botocore.session
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
    #: Scale-in protection and lifecycle actions (consumers.instance); ``None`` if not built.
    autoscaling: Any = None
    #: Only the embedded stack needs EC2 (its launch template): built on request.
    ec2: Any = None
    #: Claim checks of outputs too large for a result message (bridge.claim_check).
    s3: Any = None
    #: Queue ages for `status` on real AWS (SQS publishes them only as metrics).
    cloudwatch: Any = None


def client_config(
    pool_size: int = 10, max_attempts: int = 6, read_timeout_s: float = READ_TIMEOUT_S
) -> Config:
    """botocore's ``standard`` retry mode: backoff with jitter on throttling and 5xx.

    ``max_attempts`` counts *retries* (botocore's meaning): 0 turns them off for callers that
    retry themselves within a deadline (the completion Lambda), whose ``read_timeout_s`` can
    then be short as well."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
        max_pool_connections=pool_size,
    )


_loader: Any = None
_loader_lock = threading.Lock()


def _botocore_session() -> Any:
    """A new botocore session sharing this process's data loader, so service models are parsed
    once per process rather than once per build_clients call (EC2's alone takes ~0.2 s; the
    embedded stack and the tests build clients many times)."""
    global _loader
    session = botocore.session.get_session()
    with _loader_lock:
        if _loader is None:
            _loader = botocore.loaders.create_loader(session.get_config_variable("data_path"))
        paths = _loader.search_paths  # boto3 appends its data path for every session
        paths[:] = list(dict.fromkeys(paths))
    session.register_component("data_loader", _loader)
    return session


def build_clients(
    config: BridgeConfig,
    pool_size: int = 10,
    max_attempts: int = 6,
    read_timeout_s: float = READ_TIMEOUT_S,
    *,
    autoscaling: bool = True,
    ec2: bool = False,
    cloudwatch: bool = False,
    s3: bool = False,
) -> Clients:
    """Clients for ``config``'s region and endpoint (``None`` endpoint = real AWS).
    ``autoscaling`` / ``ec2``: also build those clients (the EC2 model takes ~0.2 s to load)."""
    session = boto3.session.Session(
        botocore_session=_botocore_session(),
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        region_name=config.region,
    )
    kwargs: dict[str, Any] = {"config": client_config(pool_size, max_attempts, read_timeout_s)}
    if config.endpoint_url:
        kwargs["endpoint_url"] = config.endpoint_url
    return Clients(
        sqs=session.client("sqs", **kwargs),
        sfn=session.client("stepfunctions", **kwargs),
        autoscaling=session.client("autoscaling", **kwargs) if autoscaling else None,
        ec2=session.client("ec2", **kwargs) if ec2 else None,
        cloudwatch=session.client("cloudwatch", **kwargs) if cloudwatch else None,
        s3=session.client("s3", **kwargs) if s3 else None,
    )
