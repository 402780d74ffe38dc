"""AWS clients and queue/execution helpers for the embedded server and in-process moto."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bridge.local_stack import compat
from bridge.local_stack.demo import queue_depth

depth = queue_depth  # messages visible or in flight


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


@contextmanager
def embedded_moto() -> Iterator[None]:
    """In-process moto as the embedded stack runs it: state machine execution on and the
    compatibility patches applied (the template relies on some, e.g. an integer
    ``ToleratedFailurePercentage``). A test module that applies its own selection first keeps
    it (and must include what the template needs)."""
    from moto import mock_aws

    ours = not compat.applied()
    if ours:
        compat.apply()
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            yield
    finally:
        if ours:
            compat.revert()


def start(sfn: Any, state_machine_arn: str, jobs: list[Any], name: str = "run-1") -> str:
    """Start an execution of the bridge's state machine over ``jobs``; its ARN."""
    return str(
        sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps({"jobs": jobs})
        )["executionArn"]
    )


def receive_all(sqs: Any, url: str, expected: int, timeout_s: float = 10) -> list[dict[str, Any]]:
    """Receive until ``expected`` distinct messages arrived (or the timeout), with all
    attributes. Nothing is deleted, so a message whose visibility lapses is counted once."""
    messages: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(messages) < expected and time.monotonic() < deadline:
        for message in sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,  # not the queues' 20 s default: a missing message fails fast
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", []):
            messages.setdefault(message["MessageId"], message)
        if len(messages) < expected:
            time.sleep(0.05)
    return list(messages.values())
