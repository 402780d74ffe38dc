"""The conformance suite's targets and helpers (see tests/conformance/conftest.py).

A :class:`Target` is one place the behaviours are checked: the embedded stack's server with the
compatibility patches, the same server with moto as shipped, or (opt-in) real AWS.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from bridge.aws import client_config
from tests.support.polling import eventually, wait_for_execution

#: Captured when the conftest imports this module, before any fixture replaces the environment
#: with dummy credentials.
_REAL_ENVIRONMENT = dict(os.environ)
AWS_OPT_IN = _REAL_ENVIRONMENT.get("BRIDGE_CONFORMANCE_AWS") == "1"
LOCAL_ROLE_ARN = "arn:aws:iam::123456789012:role/cbconf"

TARGETS = ["embedded", "moto", *(["aws"] if AWS_OPT_IN else [])]


@dataclass
class Target:
    """Clients and resource helpers for one place the behaviours are checked."""

    name: str
    sqs: Any
    sfn: Any
    role_arn: str
    prefix: str = field(default_factory=lambda: f"cbconf-{uuid.uuid4().hex[:8]}-")
    _queues: list[str] = field(default_factory=list)
    _state_machines: list[str] = field(default_factory=list)

    @property
    def is_aws(self) -> bool:
        return self.name == "aws"

    def queue(self, suffix: str, **attributes: str) -> str:
        url: str = self.sqs.create_queue(QueueName=self.prefix + suffix, Attributes=attributes)[
            "QueueUrl"
        ]
        self._queues.append(url)
        return url

    def queue_arn(self, url: str) -> str:
        return str(
            self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
        )

    def queue_with_dlq(
        self, suffix: str, max_receive_count: int = 2, visibility_timeout_s: int = 1
    ) -> tuple[str, str]:
        dlq = self.queue(f"{suffix}-dlq")
        source = self.queue(
            suffix,
            VisibilityTimeout=str(visibility_timeout_s),
            RedrivePolicy=json.dumps(
                {"deadLetterTargetArn": self.queue_arn(dlq), "maxReceiveCount": max_receive_count}
            ),
        )
        return source, dlq

    def state_machine(self, suffix: str, definition: dict[str, Any]) -> str:
        arn: str = self.sfn.create_state_machine(
            name=self.prefix + suffix,
            definition=json.dumps(definition),
            roleArn=self.role_arn,
            type="STANDARD",
        )["stateMachineArn"]
        self._state_machines.append(arn)
        return arn

    def callback_machine(
        self,
        suffix: str,
        queue_url: str,
        heartbeat_s: int | None = None,
        timeout_s: int = 60,
        catch: bool = False,
    ) -> str:
        """One waitForTaskToken task that sends ``{"token": ..., "input": $}`` to ``queue_url``."""
        task = callback_task(queue_url, {"input.$": "$"}, timeout_s=timeout_s, End=True)
        if heartbeat_s:
            task["HeartbeatSeconds"] = heartbeat_s
        states: dict[str, Any] = {"Wait": task}
        if catch:
            task.pop("End")
            task["Next"] = "Done"
            task["Catch"] = [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Done"}
            ]
            states["Done"] = {"Type": "Pass", "End": True}
        return self.state_machine(suffix, {"StartAt": "Wait", "States": states})

    def cleanup(self) -> None:
        for arn in self._state_machines:
            _quietly(lambda arn=arn: self.sfn.delete_state_machine(stateMachineArn=arn))
        for url in self._queues:
            _quietly(lambda url=url: self.sqs.delete_queue(QueueUrl=url))


def callback_task(
    queue_url: str, body: dict[str, Any], timeout_s: int = 60, **fields: Any
) -> dict[str, Any]:
    """A ``.waitForTaskToken`` Task state sending ``{"token": $$.Task.Token, **body}``."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue_url, "MessageBody": {"token.$": "$$.Task.Token", **body}},
        "TimeoutSeconds": timeout_s,
        **fields,
    }


def map_over_items(
    start_at: str, states: dict[str, Any], mode: str = "INLINE", **map_fields: Any
) -> dict[str, Any]:
    """A state machine that is one Map over ``$.items`` running ``states`` per item."""
    processor = {"Mode": mode, **({"ExecutionType": "STANDARD"} if mode == "DISTRIBUTED" else {})}
    return {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                **map_fields,
                "ItemProcessor": {
                    "ProcessorConfig": processor,
                    "StartAt": start_at,
                    "States": states,
                },
                "End": True,
            }
        },
    }


def _quietly(call: Callable[[], Any]) -> None:
    with contextlib.suppress(Exception):  # cleanup must not hide the test's own result
        call()


def aws_target() -> Target:
    """The opt-in AWS target: credentials from the environment pytest started with."""
    role = _REAL_ENVIRONMENT.get("BRIDGE_CONFORMANCE_ROLE_ARN")
    if not role:
        pytest.fail("BRIDGE_CONFORMANCE_AWS=1 needs BRIDGE_CONFORMANCE_ROLE_ARN")
    session = boto3.session.Session(
        aws_access_key_id=_REAL_ENVIRONMENT.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=_REAL_ENVIRONMENT.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=_REAL_ENVIRONMENT.get("AWS_SESSION_TOKEN"),
        profile_name=_REAL_ENVIRONMENT.get("AWS_PROFILE"),
        region_name=_REAL_ENVIRONMENT.get("AWS_REGION")
        or _REAL_ENVIRONMENT.get("AWS_DEFAULT_REGION"),
    )
    return Target(
        "aws",
        session.client("sqs", config=client_config()),
        session.client("stepfunctions", config=client_config()),
        role,
    )


def receive_one(
    target: Target, queue_url: str, timeout_s: float = 20, **kwargs: Any
) -> dict[str, Any]:
    """The next message on ``queue_url`` (fails the test if none arrives)."""

    def probe() -> list[dict[str, Any]]:
        return target.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1, **kwargs).get(
            "Messages", []
        )

    messages = eventually(probe, timeout_s)
    assert messages, f"no message on {queue_url} within {timeout_s} s"
    return messages[0]


def wait_status(target: Target, execution_arn: str, timeout_s: float = 30) -> dict[str, Any]:
    """describe_execution once it is no longer RUNNING (or the last answer at the timeout)."""
    return wait_for_execution(target.sfn, execution_arn, timeout_s)


# --- queue helpers of the SQS speed tests (also used by the dispatch-speed tests) ---


def local_only(target: Target) -> None:
    if target.is_aws:
        pytest.skip("reads moto's backend in this process")


def send_batch(target: Target, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])
        ]
        response = target.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert not response.get("Failed")


def receive_all(target: Target, url: str, expected: int, **kwargs: Any) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []

    def probe() -> bool:
        received.extend(
            target.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **kwargs).get(
                "Messages", []
            )
        )
        return len(received) >= expected

    eventually(probe, timeout_s=30, every_s=0)
    return received
