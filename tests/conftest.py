"""Shared fixtures. Every test runs with dummy credentials and no endpoint from the developer's
shell, so nothing here can reach a real AWS account by accident."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from bridge.config import ENVIRONMENT
from bridge.contract import Job, Result, Timing, Worker, encode

SAFE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_DISABLED": "true",
    # moto's EC2 would otherwise load its public image catalogue at every reset.
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SAFE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    # Whatever 'eval "$(callback-bridge local env)"' or worker.env may have set in this shell.
    for name in {"AWS_PROFILE", "BRIDGE_STATE_FILE", "BRIDGE_TF_OUTPUTS", *ENVIRONMENT.values()}:
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("BRIDGE_")]:
        monkeypatch.delenv(name, raising=False)


def make_job(**overrides: Any) -> Job:
    fields: dict[str, Any] = {
        "version": 1,
        "token": "tok-" + "x" * 40,
        "job_id": "exec-1/RunJob/0/0",
        "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:sm:exec-1",
        "map_index": 0,
        "attempt": 0,
        "type": "default",
        "input": {"n": 1},
    }
    fields.update(overrides)
    return Job(**fields)


def make_result(**overrides: Any) -> Result:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "version": 1,
        "token": "tok-" + "x" * 40,
        "job_id": "exec-1/RunJob/0/0",
        "outcome": "succeeded",
        "output": {"ok": True},
        "worker": Worker(id="host:1"),
        "timing": Timing(enqueued_at=now, started_at=now, finished_at=now),
    }
    fields.update(overrides)
    return Result(**fields)


def body(message: Job | Result | dict[str, Any]) -> str:
    return json.dumps(message) if isinstance(message, dict) else encode(message)


def loopback_client(service: str, endpoint_url: str, max_attempts: int = 1) -> Any:
    """A boto3 client for an embedded server: its endpoint, dummy credentials, few retries."""
    import boto3

    from bridge.aws import client_config

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=client_config(max_attempts=max_attempts),
    )
