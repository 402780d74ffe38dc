"""Contract messages with sensible defaults for tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bridge.contract import Job, Result, Timing, Worker, encode
from bridge.local_stack.event_source import to_event_record

#: The embedded stack's results queue, as an event source mapping names it.
RESULTS_ARN = "arn:aws:sqs:us-east-1:123456789012:callback-bridge-results"


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


def sqs_event(bodies: list[str], queue_arn: str = RESULTS_ARN) -> dict[str, Any]:
    """The SQS event a Lambda gets for ``bodies`` (message ids ``m-0``, ``m-1``, ...)."""
    return {
        "Records": [
            to_event_record(
                {"MessageId": f"m-{i}", "ReceiptHandle": f"r-{i}", "Body": b},
                queue_arn,
                "us-east-1",
            )
            for i, b in enumerate(bodies)
        ]
    }
