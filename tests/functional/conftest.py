"""In-process moto (``mock_aws``) with state machine execution on, and the bridge's resources
created exactly as the embedded stack creates them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bridge.aws import Clients
from bridge.local_stack import compat
from bridge.local_stack.demo import queue_depth
from bridge.local_stack.resources import StackSettings, create_resources
from tests.polling import wait_for_execution


@contextmanager
def embedded_moto() -> Iterator[None]:
    """In-process moto as the embedded stack runs it: state machine execution on and the
    compatibility patches applied (the template relies on some, e.g. an integer
    ``ToleratedFailurePercentage``). A test module that applies its own selection first keeps
    it (and must include what the template needs)."""
    ours = not compat.applied()
    if ours:
        compat.apply()
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
            yield
    finally:
        if ours:
            compat.revert()


@pytest.fixture
def aws() -> Iterator[Clients]:
    with embedded_moto():
        yield Clients(sqs=boto3.client("sqs"), sfn=boto3.client("stepfunctions"))


@pytest.fixture
def stack(aws: Clients) -> dict[str, str]:
    return create_resources(
        aws,
        StackSettings(
            # A stop can race a receive that is already under way (the worker then gives the
            # message straight back): that costs one receive, so leave room for it.
            jobs_max_receive_count=4,
            results_max_receive_count=2,
            results_visibility_timeout_s=1,
        ),
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


depth = queue_depth  # messages visible or in flight

__all__ = ["depth", "receive_all", "start", "wait_for_execution"]


def start(sfn: Any, state_machine_arn: str, jobs: list[Any], name: str = "run-1") -> str:
    return str(
        sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps({"jobs": jobs})
        )["executionArn"]
    )
