"""Waiting for eventually-consistent outcomes (queues, executions) without fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bridge.ops import fanout


def eventually(probe: Callable[[], Any], timeout_s: float = 20, every_s: float = 0.1) -> Any:
    """Poll ``probe`` until it returns a truthy value (returned) or the timeout (last value)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every_s)


def wait_for_execution(sfn: Any, arn: str, timeout_s: float = 30) -> dict[str, Any]:
    """The CLI's wait (describe_execution until no longer RUNNING), polling faster."""
    return fanout.wait_for_execution(sfn, arn, timeout_s, every_s=0.05)


def visible(sqs: Any, url: str) -> int:
    """Messages receivable now (not in flight, not delayed)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])
