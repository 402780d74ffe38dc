"""Dead letters on the embedded stack: the execution learns of them, the archive keeps them.

The stack runs the dead-letter handler behind one local event source mapping per DLQ, as the
dead-letter Lambda does on AWS; these tests only move messages the way SQS would and read what
a user sees: the execution's output, the archive's messages.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.contract import ERROR_DEAD_LETTERED, encode, parse_job
from bridge.dead_letter import (
    EXECUTION_ATTRIBUTE,
    JOB_ID_ATTRIBUTE,
    RECEIVE_COUNT_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    TASK_TOLD_ATTRIBUTE,
)
from bridge.local_stack import LocalStack, StackSettings
from bridge.quarantine import REASON_ATTRIBUTE
from tests.support.aws import depth, receive_all, start
from tests.support.messages import make_result
from tests.support.polling import eventually, wait_for_execution

pytestmark = pytest.mark.e2e


def attributes(message: dict[str, Any]) -> dict[str, str]:
    return {k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()}


def receive_until_dead_lettered(sqs: Any, url: str) -> dict[str, Any]:
    """A consumer that takes the message and never answers, sped up: receive it (visibility 0)
    until the queue's redrive policy moves it to the DLQ. Returns the last copy received."""
    first = eventually(
        lambda: sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=1).get(
            "Messages"
        ),
        timeout_s=20,
    )
    assert first, f"nothing arrived on {url}"
    last = first[0]
    for _ in range(20):
        messages = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return last
        last = messages[0]
    raise AssertionError("the redrive policy never moved the message")


def one_job(stack: LocalStack, name: str) -> str:
    """Start an execution with one job; returns its ARN."""
    assert stack.clients and stack.config and stack.config.state_machine_arn
    return start(stack.clients.sfn, stack.config.state_machine_arn, [{"n": 1}], name=name)


def queue(stack: LocalStack) -> str:
    """The jobs queue's name."""
    return f"{stack.settings.prefix}-jobs"


@pytest.mark.slow  # over 3.3 s: the full suite (make test stays under 3 minutes)
def test_a_job_dead_lettered_by_max_receive_count_fails_its_task_within_seconds(
    stack: LocalStack,
) -> None:
    assert stack.clients and stack.config and stack.config.jobs_archive_url
    sqs, config, archive = stack.clients.sqs, stack.config, stack.config.jobs_archive_url
    execution = one_job(stack, "dead-job")
    message = receive_until_dead_lettered(sqs, config.jobs_queue_url or "")
    job = parse_job(message["Body"])
    moved_at = time.monotonic()

    described = wait_for_execution(stack.clients.sfn, execution, timeout_s=60)
    learned_after_s = time.monotonic() - moved_at

    assert described["status"] == "SUCCEEDED"  # the Map catches it: a failure as data
    [entry] = json.loads(described["output"])
    assert entry["status"] == "FAILED" and entry["error"] == ERROR_DEAD_LETTERED
    assert learned_after_s < 60, learned_after_s  # the bound; it takes seconds here
    archived = receive_all(sqs, archive, 1, timeout_s=20)
    assert [m["Body"] for m in archived] == [message["Body"]]
    said = attributes(archived[0])
    reason = f"exceeded maxReceiveCount {stack.settings.jobs_max_receive_count} on {queue(stack)}"
    assert said[REASON_ATTRIBUTE] == reason
    assert said[TASK_TOLD_ATTRIBUTE] == "failed"
    assert said[JOB_ID_ATTRIBUTE] == job.job_id
    assert said[EXECUTION_ATTRIBUTE] == execution
    assert said[SOURCE_QUEUE_ATTRIBUTE] == queue(stack)
    assert int(said[RECEIVE_COUNT_ATTRIBUTE]) >= 1
    for fact in (job.job_id, f"receive count {said[RECEIVE_COUNT_ATTRIBUTE]}", reason):
        assert fact in entry["cause"]
    assert depth(sqs, config.jobs_dlq_url or "") == 0


def test_a_result_that_lands_in_the_results_dlq_is_still_delivered(stack: LocalStack) -> None:
    """The completion path is down (its event source stopped), so a good result exceeds the
    results queue's maxReceiveCount; the dead-letter handler delivers it all the same."""
    assert stack.clients and stack.config and stack.event_source
    sqs, config = stack.clients.sqs, stack.config
    stack.event_source.stop()
    execution = one_job(stack, "dead-result")
    jobs = receive_all(sqs, config.jobs_queue_url or "", 1, timeout_s=20)
    job = parse_job(jobs[0]["Body"])
    result = make_result(token=job.token, job_id=job.job_id, output={"delivered": True})
    sqs.send_message(QueueUrl=config.results_queue_url, MessageBody=encode(result))
    sqs.delete_message(QueueUrl=config.jobs_queue_url, ReceiptHandle=jobs[0]["ReceiptHandle"])
    receive_until_dead_lettered(sqs, config.results_queue_url or "")

    described = wait_for_execution(stack.clients.sfn, execution, timeout_s=60)

    assert json.loads(described["output"]) == [
        {"status": "SUCCEEDED", "output": {"delivered": True}}
    ]
    archived = receive_all(sqs, config.results_archive_url or "", 1, timeout_s=20)
    assert attributes(archived[0])[TASK_TOLD_ATTRIBUTE] == "delivered"
    assert json.loads(archived[0]["Body"])["job_id"] == job.job_id


def test_the_state_file_names_the_archives(stack: LocalStack) -> None:
    assert stack.state_file and stack.config
    state = json.loads(Path(stack.state_file).read_text())
    assert state["jobs_archive_url"] == stack.config.jobs_archive_url
    assert state["results_archive_url"].endswith("/callback-bridge-results-dead-letters")


def test_with_handling_off_the_dlq_keeps_the_letter_and_nobody_is_told(
    tmp_path: Path, stack_settings: StackSettings
) -> None:
    settings = dataclasses.replace(stack_settings, dead_letter_handling=False)
    with LocalStack(settings, state_file=tmp_path / "off.json") as stack:
        assert stack.clients and stack.config and stack.config.jobs_dlq_url
        assert stack.config.jobs_archive_url is None and not stack.dead_letter_sources
        sqs, dlq = stack.clients.sqs, stack.config.jobs_dlq_url
        execution = one_job(stack, "kept")
        body = receive_until_dead_lettered(sqs, stack.config.jobs_queue_url or "")["Body"]
        for _ in range(8):  # operators may peek as often as they like: it stays put
            peeked = sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0, WaitTimeSeconds=1).get(
                "Messages", []
            )
            assert [m["Body"] for m in peeked] == [body]
        described = stack.clients.sfn.describe_execution(executionArn=execution)
        assert described["status"] == "RUNNING"  # left to the operator (redrive or fail)
        stack.clients.sfn.stop_execution(executionArn=execution)


@pytest.mark.slow
@pytest.mark.parametrize("switch", [[], ["--no-dead-letter-handling"]], ids=["on", "off"])
def test_local_up_switch_and_env_exports(tmp_path: Path, switch: list[str]) -> None:
    """``local up`` archives by default and exports the archives; the switch turns it off."""
    cli = [sys.executable, "-m", "bridge.cli.main", "local"]
    state = tmp_path / "local.json"
    up = subprocess.Popen([*cli, "up", "--state-file", str(state), *switch], text=True)
    try:
        assert eventually(lambda: state.exists() or up.poll() is not None, timeout_s=30)
        assert up.poll() is None, "local up exited"
        printed = subprocess.run(
            [*cli, "env", "--state-file", str(state)], capture_output=True, text=True, check=True
        ).stdout
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=30)
    names = {line.split("=", 1)[0].removeprefix("export ") for line in printed.splitlines()}
    archives = {"BRIDGE_JOBS_ARCHIVE_URL", "BRIDGE_RESULTS_ARCHIVE_URL"}
    assert (archives <= names) == (not switch)
    assert "BRIDGE_JOBS_DLQ_URL" in names
