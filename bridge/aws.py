"""The one place that builds boto3 clients: endpoint, credentials, retry mode and timeouts.

Everything else receives clients as arguments, so tests and the embedded stack can point the
same code at any endpoint.

The retry policy, one for the whole bridge, in botocore's ``standard`` mode everywhere
(exponential backoff with jitter on throttling, 5xx and network errors):

* **long-running processes** (the worker, the CLI): botocore retries, up to 6 retries (7
  attempts), a 35 s read timeout (long polls wait 20 s) (:func:`build_clients`);
* **the two Lambdas**, which have a deadline: botocore makes **one** attempt with a 2 s connect
  and 5 s read timeout (:func:`build_lambda_clients`), and the handlers retry the same errors
  themselves, up to 6 attempts but never past the invocation's remaining time
  (:mod:`bridge.retrying`). botocore's backoff does not know the deadline: with 6 retries and
  35 s reads one callback once took 17-35 s against a 10 s function timeout.

Which errors are retried, and which mean the task is over, is :mod:`bridge.errors`.
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
from bridge.errors import name_targets

#: Long polls wait up to 20 s; the read timeout must outlast them.
READ_TIMEOUT_S = 35
CONNECT_TIMEOUT_S = 5
#: botocore's retries for long-running processes (``max_attempts`` counts retries: 7 attempts).
PROCESS_RETRIES = 6
#: The Lambdas' clients: one attempt (their handlers retry within the deadline), short waits.
LAMBDA_RETRIES = 0
LAMBDA_CONNECT_TIMEOUT_S = 2.0
LAMBDA_READ_TIMEOUT_S = 5.0


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
    pool_size: int = 10,
    max_attempts: int = PROCESS_RETRIES,
    read_timeout_s: float = READ_TIMEOUT_S,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> Config:
    """botocore's ``standard`` retry mode: backoff with jitter on throttling and 5xx.

    ``max_attempts`` counts *retries* (botocore's meaning): 0 turns them off for callers that
    retry themselves within a deadline (the Lambdas), whose timeouts are then short as well."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=connect_timeout_s,
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
    name_targets(session)  # an error names the queue, bucket or ARN its request was about
    return session


def build_clients(
    config: BridgeConfig,
    pool_size: int = 10,
    max_attempts: int = PROCESS_RETRIES,
    read_timeout_s: float = READ_TIMEOUT_S,
    *,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
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
    kwargs: dict[str, Any] = {
        "config": client_config(pool_size, max_attempts, read_timeout_s, connect_timeout_s)
    }
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


def build_lambda_clients(config: BridgeConfig, pool_size: int = 10) -> Clients:
    """The Lambdas' SQS and Step Functions clients: one attempt, short timeouts (see the module
    docstring), a connection per record thread (more where invocations share the clients, as
    on the embedded stack). No Auto Scaling, EC2, S3 or CloudWatch client: they call none."""
    return build_clients(
        config,
        pool_size=pool_size,
        max_attempts=LAMBDA_RETRIES,
        read_timeout_s=LAMBDA_READ_TIMEOUT_S,
        connect_timeout_s=LAMBDA_CONNECT_TIMEOUT_S,
        autoscaling=False,
    )
