"""bridge.ops.jobs against moto in-process: real executions of the bridge's template, their
tasks answered straight through Step Functions (a worker's callbacks, without the worker)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from bridge.aws import Clients
from bridge.contract import ERROR_COMMAND_FAILED, ERROR_RETRYABLE, parse_job
from bridge.local_stack.resources import StackSettings, create_resources
from bridge.ops.jobs import JobReader, JobsError, find_job, list_jobs, parse_since, since_time
from tests.support.aws import start
from tests.support.polling import wait_for_execution

pytestmark = pytest.mark.functional


def answer(aws: Clients, stack: dict[str, str], verdicts: dict[int, list[str]], count: int) -> None:
    """Answer ``count`` job messages: per map index a list of verdicts, one per attempt:
    ``ok``, ``fail`` (Bridge.CommandFailed) or ``retry`` (Bridge.Retryable)."""
    used: dict[int, int] = {}
    answered, deadline = 0, time.monotonic() + 30
    while answered < count and time.monotonic() < deadline:
        for message in aws.sqs.receive_message(
            QueueUrl=stack["jobs_queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            job = parse_job(message["Body"])
            index = int(job.map_index or 0)
            verdict = verdicts.get(index, ["ok"])[used.get(index, 0)]
            used[index] = used.get(index, 0) + 1
            if verdict == "ok":
                aws.sfn.send_task_success(taskToken=job.token, output=json.dumps({"i": index}))
            else:
                error = ERROR_RETRYABLE if verdict == "retry" else ERROR_COMMAND_FAILED
                cause = f"exit status 3; stderr tail:\nboom {index}"
                aws.sfn.send_task_failure(taskToken=job.token, error=error, cause=cause)
            aws.sqs.delete_message(
                QueueUrl=stack["jobs_queue_url"], ReceiptHandle=message["ReceiptHandle"]
            )
            answered += 1
    assert answered == count


def test_inline_jobs_come_from_the_history_with_every_attempt(
    aws: Clients, stack: dict[str, str]
) -> None:
    jobs = [{"n": 0}, {"n": 1, "type": "render"}, {"n": 2}]
    execution = start(aws.sfn, stack["state_machine_arn"], jobs, name="mixed")
    answer(aws, stack, {1: ["retry", "ok"], 2: ["fail"]}, count=4)
    wait_for_execution(aws.sfn, execution)
    reader = JobReader(aws.sfn)

    every = list_jobs(reader, stack["state_machine_arn"], executions=[execution])
    failed = list_jobs(reader, stack["state_machine_arn"], "failed", executions=[execution])

    assert [(j.job_id, j.status, j.attempts, j.type) for j in every] == [
        ("mixed/RunJob/0/0", "SUCCEEDED", 1, "default"),
        ("mixed/RunJob/1/1", "SUCCEEDED", 2, "render"),
        ("mixed/RunJob/2/0", "FAILED", 1, "default"),
    ]
    assert every[0].output == {"i": 0} and every[0].document()["output"] == {"i": 0}
    retried = every[1]
    assert [(a.status, a.error) for a in retried.history] == [
        ("FAILED", ERROR_RETRYABLE),
        ("SUCCEEDED", None),
    ]
    assert [a.output for a in retried.history] == [None, {"i": 1}]
    assert retried.input == {"n": 1, "type": "render"}
    (third,) = failed
    row = third.row()
    assert row["cause"] == "exit status 3; stderr tail: boom 2"
    assert row["execution_arn"] == execution
    assert row["error"] == ERROR_COMMAND_FAILED and third.input == {"n": 2}
    assert third.document()["cause"].endswith("boom 2")  # in full for `jobs show`
    assert find_job(reader, execution, 2, "mixed/RunJob/2").job_id == "mixed/RunJob/2/0"
    with pytest.raises(JobsError, match="has no job 9"):
        find_job(reader, execution, 9, "mixed/RunJob/9")


def test_running_jobs_and_a_bounded_listing_of_recent_executions(
    aws: Clients, stack: dict[str, str]
) -> None:
    finished = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}], name="first")
    answer(aws, stack, {}, count=1)
    wait_for_execution(aws.sfn, finished)
    start(aws.sfn, stack["state_machine_arn"], [{"n": 1}, {"n": 2}], name="second")
    reader = JobReader(aws.sfn)
    time.sleep(0.5)  # both tasks scheduled

    running = list_jobs(reader, stack["state_machine_arn"], "running")
    newest = list_jobs(JobReader(aws.sfn), stack["state_machine_arn"], max_executions=1)
    later = since_time("1h", now=datetime.now(UTC) + timedelta(hours=2))
    none = JobReader(aws.sfn)

    assert {job.job_id for job in running} == {"second/RunJob/0/0", "second/RunJob/1/0"}
    assert {job.execution_name for job in newest} == {"second"}
    assert list_jobs(none, stack["state_machine_arn"], since=later) == []
    assert none.reads.executions_read == 0  # nothing older than --since is read
    assert "read 1 execution(s)" in reader.reads.describe(None)


def test_a_distributed_map_reads_outcomes_from_the_output(aws: Clients) -> None:
    stack = create_resources(aws, StackSettings(map_mode="DISTRIBUTED", prefix="dist"))
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}, {"n": 1}], name="wide")
    answer(aws, stack, {1: ["fail"]}, count=2)
    assert wait_for_execution(aws.sfn, execution)["status"] == "SUCCEEDED"

    jobs = JobReader(aws.sfn).jobs(execution)

    assert [(j.job_id, j.status, j.error, j.source) for j in jobs] == [
        ("wide/RunJob/0", "SUCCEEDED", None, "output"),
        ("wide/RunJob/1", "FAILED", ERROR_COMMAND_FAILED, "output"),
    ]
    assert jobs[1].input == {"n": 1} and jobs[1].attempts is None
    assert (jobs[0].output, jobs[1].output) == ({"i": 0}, None)


def test_a_failed_distributed_map_without_children_says_why(aws: Clients) -> None:
    """Bridge.JobsFailed leaves no output; moto cannot list a Map Run's children."""
    settings = StackSettings(map_mode="DISTRIBUTED", prefix="strict", failure_policy="fail")
    stack = create_resources(aws, settings)
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}, {"n": 1}], name="strict")
    answer(aws, stack, {1: ["fail"]}, count=2)
    assert wait_for_execution(aws.sfn, execution)["status"] == "FAILED"
    reader = JobReader(aws.sfn)

    jobs = reader.jobs(execution)

    assert [(j.index, j.status, j.input) for j in jobs] == [
        (0, "UNKNOWN", {"n": 0}),
        (1, "UNKNOWN", {"n": 1}),
    ]
    assert "child executions of arn:aws:states:" in reader.reads.describe(None)


@pytest.mark.parametrize(
    ("text", "span"), [("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15))]
)
def test_since_reads_a_number_and_a_unit(text: str, span: timedelta) -> None:
    assert parse_since(text) == span


@pytest.mark.parametrize("text", ["1 hour", "h", "-1h", "1w"])
def test_a_bad_since_names_the_forms_it_takes(text: str) -> None:
    with pytest.raises(JobsError, match="90s, 15m, 1h, 7d"):
        parse_since(text)
