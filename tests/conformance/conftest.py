"""The conformance suite: each AWS behaviour the bridge relies on, stated as a test.

Every test takes the ``target`` fixture and runs against:

* ``embedded``: the embedded stack's server with the compatibility patches (always);
* ``moto``: the same server with moto as shipped (always). A test marked
  ``@pytest.mark.gap("patch-name")`` is a *canary* there: it is expected to fail (strict xfail),
  and the day it passes, moto has fixed the gap and the named patch can be deleted;
* ``aws``: real AWS, only when ``BRIDGE_CONFORMANCE_AWS=1`` and ``BRIDGE_CONFORMANCE_ROLE_ARN``
  (a role Step Functions can assume, allowed ``sqs:SendMessage`` on queues named
  ``cbconf-*``) are set. Credentials then come from the standard chain as it was when pytest
  started; resources get a unique ``cbconf-<random>-`` prefix and are deleted afterwards.

Nothing else ever reaches AWS: the embedded targets use explicit loopback endpoints and dummy
credentials.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from bridge.aws import client_config
from bridge.local_stack import compat
from bridge.local_stack.server import EmbeddedServer
from tests.conftest import loopback_client
from tests.polling import eventually, wait_for_execution

pytestmark = pytest.mark.conformance

#: Captured before any fixture replaces the environment with dummy credentials.
_REAL_ENVIRONMENT = dict(os.environ)
AWS_OPT_IN = _REAL_ENVIRONMENT.get("BRIDGE_CONFORMANCE_AWS") == "1"
LOCAL_ROLE_ARN = "arn:aws:iam::123456789012:role/cbconf"

__all__ = ["Target", "callback_task", "eventually", "map_over_items", "receive_one", "wait_status"]

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


def _aws_target() -> Target:
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


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    gap = request.node.get_closest_marker("gap")
    if request.param == "moto" and gap:
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason=f"canary: moto as shipped still lacks this; when it passes, "
                f"delete compat patch '{gap.args[0]}'",
            )
        )
    if request.param == "aws":
        target = _aws_target()
        yield target
        target.cleanup()
        return
    patched = request.param == "embedded"
    if patched:
        compat.apply()
    server = EmbeddedServer().start()
    try:
        yield Target(
            request.param,
            loopback_client("sqs", server.endpoint_url, max_attempts=6),
            loopback_client("stepfunctions", server.endpoint_url, max_attempts=6),
            LOCAL_ROLE_ARN,
        )
    finally:
        server.stop()
        if patched:
            compat.revert()


@pytest.fixture
def embedded_only(target: Target) -> Target:
    """``target``, skipped against AWS: for tests that count or bound moto's own work."""
    if target.is_aws:
        pytest.skip("counts moto's own work (or bounds it): meaningless against AWS")
    return target


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
