"""Waiting for eventually-consistent outcomes (queues, executions) without fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(probe: Callable[[], Any], timeout_s: float = 20, every_s: float = 0.1) -> Any:
    """Poll ``probe`` until it returns a truthy value (returned) or the timeout (last value)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every_s)


def wait_for_execution(sfn: Any, arn: str, timeout_s: float = 30) -> dict[str, Any]:
    """describe_execution once it is no longer RUNNING (or the last answer at the timeout)."""
    last: dict[str, Any] = {}

    def finished() -> bool:
        last.update(sfn.describe_execution(executionArn=arn))
        return last["status"] != "RUNNING"

    eventually(finished, timeout_s, every_s=0.05)
    return last


def visible(sqs: Any, url: str) -> int:
    """Messages receivable now (not in flight, not delayed)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])
