"""The completion mapping's batching: the embedded mapping's defaults are Terraform's, and its
batching window is honoured as AWS's pollers do (long polls, not a receive every few ms)."""

from __future__ import annotations

import threading
import time
from dataclasses import fields
from typing import Any

import pytest

from bridge.local_stack.event_source import EventSourceSettings, LocalEventSourceMapping
from tests.support.terraform import MODULES_DIR, module_variables, variable_default

COMPLETION = MODULES_DIR / "completion"


def test_the_embedded_mapping_defaults_are_the_terraform_modules() -> None:
    variables = module_variables(COMPLETION)
    defaults = {f.name: f.default for f in fields(EventSourceSettings)}
    assert defaults["batch_size"] == variable_default(variables, "batch_size")
    assert defaults["maximum_batching_window_s"] == variable_default(
        variables, "maximum_batching_window_in_seconds"
    )
    assert defaults["maximum_concurrency"] == variable_default(variables, "maximum_concurrency")
    assert defaults["function_timeout_s"] == variable_default(variables, "timeout")


class SlowQueue:
    """An SQS stand-in: one record at first, then empty long polls that last their wait."""

    def __init__(self) -> None:
        self.receives: list[tuple[float, int]] = []
        self.deleted: list[str] = []
        self._first = True
        self._lock = threading.Lock()

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        return {"Attributes": {"QueueArn": "arn:aws:sqs:us-east-1:1:q", "VisibilityTimeout": "60"}}

    def receive_message(self, WaitTimeSeconds: int, **_: Any) -> dict[str, Any]:
        with self._lock:
            self.receives.append((time.monotonic(), WaitTimeSeconds))
            first, self._first = self._first, False
        if first:
            message = {"MessageId": "m-1", "ReceiptHandle": "h-1", "Body": "{}"}
            return {"Messages": [message]}
        time.sleep(WaitTimeSeconds)
        return {}


@pytest.mark.parametrize("window_s", [0.0, 1.4])
def test_a_batching_window_costs_about_one_receive_per_second_of_window(window_s: float) -> None:
    queue = SlowQueue()
    settings = EventSourceSettings(maximum_batching_window_s=window_s, batch_size=10)
    mapping = LocalEventSourceMapping(queue, "q", lambda e, c: {}, "us-east-1", settings=settings)
    started = time.monotonic()
    records = mapping.gather()
    took = time.monotonic() - started
    assert [r["messageId"] for r in records] == ["m-1"]
    assert took >= window_s  # the window is honoured: the batch waited for more records
    assert took < window_s + 0.5  # and not much longer
    # The first receive, then one long poll per whole second left and one look at the end.
    assert len(queue.receives) == (1 if window_s == 0 else 1 + int(window_s) + 1)
