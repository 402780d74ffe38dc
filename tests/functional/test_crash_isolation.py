"""A job whose process crashes costs only itself: a delivery that may follow a crash runs in a
process of its own, and a job that crashes on ``crash_limit`` deliveries fails its task with
``Bridge.HandlerCrashed`` and the signal, before the queue's redrive can dead-letter it.

The crash that took a whole worker down is played by receiving the message once by hand (the
delivery that never ended); the isolated runs after it are real processes killed by SIGKILL.
"""

from __future__ import annotations

import json
import os
from typing import Any

from bridge.aws import Clients
from bridge.contract import ERROR_HANDLER_CRASHED
from consumers.isolated import IsolatedPythonRunner
from consumers.runner import PythonRunner
from consumers.worker import Worker
from tests.e2e.handlers import crash_if_asked
from tests.support.aws import depth, receive_all, start
from tests.support.completion import complete
from tests.support.polling import eventually, wait_for_execution
from tests.support.worker import running, settings

HANDLER = "tests.e2e.handlers:crash_if_asked"


def start_and_lose_first_delivery(aws: Clients, stack: dict[str, str], jobs: list[Any]) -> str:
    """Start an execution of ``jobs`` and receive its job messages once without answering, as
    a worker that crashed did; returns the execution's ARN."""
    arn = start(aws.sfn, stack["state_machine_arn"], jobs)
    url = stack["jobs_queue_url"]
    for message in receive_all(aws.sqs, url, len(jobs)):
        aws.sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    return arn


def entries(aws: Clients, arn: str) -> list[dict[str, Any]]:
    described = wait_for_execution(aws.sfn, arn, timeout_s=30)
    assert described["status"] == "SUCCEEDED", described
    return json.loads(described["output"])  # type: ignore[no-any-return]


def worker(aws: Clients, stack: dict[str, str], **overrides: Any) -> Worker:
    return Worker(
        aws.sqs,
        aws.sfn,
        settings(stack, max_receive_count=4, **overrides),
        PythonRunner(crash_if_asked),
        isolated_runner=IsolatedPythonRunner(HANDLER, grace_s=1),
    )


def test_a_redelivered_job_runs_in_a_process_of_its_own(
    aws: Clients, stack: dict[str, str]
) -> None:
    again = start_and_lose_first_delivery(aws, stack, [{"n": 1}])
    first = start(aws.sfn, stack["state_machine_arn"], [{"n": 2}], name="run-2")
    with running(worker(aws, stack)):
        complete(aws, stack, 2)
        [redelivered] = entries(aws, again)
        [delivered_once] = entries(aws, first)
    assert redelivered["status"] == "SUCCEEDED", redelivered
    assert redelivered["output"]["pid"] != os.getpid()  # isolated
    assert delivered_once["output"]["pid"] == os.getpid()  # a first delivery runs in-thread


def test_a_job_crashing_on_every_delivery_fails_at_the_crash_limit_and_spares_its_neighbour(
    aws: Clients, stack: dict[str, str]
) -> None:
    arn = start_and_lose_first_delivery(aws, stack, [{"crash": True}, {"n": 2, "sleep_s": 0.2}])
    with running(worker(aws, stack, crash_limit=3)):
        complete(aws, stack, 2)
        crashed, healthy = entries(aws, arn)
        assert eventually(lambda: depth(aws.sqs, stack["jobs_queue_url"]) == 0, timeout_s=10)
    assert healthy["status"] == "SUCCEEDED" and healthy["output"]["n"] == 2, healthy
    assert crashed["status"] == "FAILED" and crashed["error"] == ERROR_HANDLER_CRASHED, crashed
    assert "delivery 3 of this job crashed its process" in crashed["cause"]
    assert "killed by signal 9 (SIGKILL)" in crashed["cause"]
    assert depth(aws.sqs, stack["jobs_dlq_url"]) == 0  # failed by name, not dead-lettered
