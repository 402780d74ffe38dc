"""The history-event estimate in ``bridge/limits.py`` (which decides when the demo and ``run``
refuse an INLINE fan-out) must match what the template really writes: run the stack's state
machine with jobs that succeed, fail and retry, and count the events of its history."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bridge.contract import parse_job
from bridge.limits import inline_history_events
from bridge.local_stack import LocalStack
from tests.support.polling import wait_for_execution

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _answer_jobs(stack: LocalStack, outcomes: list[str], deadline_s: float = 30) -> None:
    """Act as the consumer and completion handler: answer each job message in order with the
    next outcome ("ok", "fail" or "retry")."""
    assert stack.clients and stack.config and stack.config.jobs_queue_url
    sqs, sfn = stack.clients.sqs, stack.clients.sfn
    pending = list(outcomes)
    deadline = time.monotonic() + deadline_s
    while pending and time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=stack.config.jobs_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for message in messages:
            job = parse_job(message["Body"])
            outcome = pending.pop(0)
            if outcome == "ok":
                sfn.send_task_success(taskToken=job.token, output=json.dumps({"n": 1}))
            else:
                error = "Bridge.Retryable" if outcome == "retry" else "Boom"
                sfn.send_task_failure(taskToken=job.token, error=error, cause="test")
            sqs.delete_message(
                QueueUrl=stack.config.jobs_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    assert not pending, f"{len(pending)} jobs never arrived"


@pytest.mark.parametrize(
    ("outcomes", "failed", "retries"),
    [
        (["ok"], 0, 0),
        (["ok", "ok", "ok"], 0, 0),
        (["ok", "fail"], 1, 0),
        (["retry", "ok"], 0, 1),
    ],
)
def test_inline_history_matches_the_estimate(
    stack: LocalStack, outcomes: list[str], failed: int, retries: int
) -> None:
    assert stack.clients and stack.config and stack.config.state_machine_arn
    jobs: list[dict[str, Any]] = [{"n": n} for n in range(len(outcomes) - retries)]
    arn = stack.clients.sfn.start_execution(
        stateMachineArn=stack.config.state_machine_arn, input=json.dumps({"jobs": jobs})
    )["executionArn"]
    _answer_jobs(stack, outcomes)
    described = wait_for_execution(stack.clients.sfn, arn, timeout_s=60)
    assert described["status"] == "SUCCEEDED", described
    pages = stack.clients.sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
    events = sum(len(page["events"]) for page in pages)
    assert events == inline_history_events(len(jobs), failed_jobs=failed, retries=retries)
