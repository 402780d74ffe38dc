"""The life of a job off the happy path, with real worker processes on the embedded stack.

Each test asserts what a workflow sees (execution status and output) and what is left in the
queues. Timing flags are shrunk (visibility 2 s, heartbeats every 1 s) so that what takes hours
on AWS takes seconds here; the rules between them are the production ones (bridge.timing).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.local_stack import LocalStack
from consumers.keepalive import closed_task_error
from tests.e2e.scripts import job_script, runs
from tests.support.aws import start
from tests.support.polling import eventually, visible, wait_for_execution
from tests.support.stack import WorkerFactory, assert_queues_empty

pytestmark = pytest.mark.e2e

FAST = ("--visibility-timeout", "2", "--heartbeat-interval", "1", "--cancel-grace", "1")


def clients(stack: LocalStack) -> tuple[Any, Any, Any]:
    assert stack.clients and stack.config
    return stack.clients.sfn, stack.clients.sqs, stack.config


def outputs(stack: LocalStack, arn: str, timeout_s: float = 60) -> list[dict[str, Any]]:
    sfn, _, _ = clients(stack)
    described = wait_for_execution(sfn, arn, timeout_s=timeout_s)
    assert described["status"] == "SUCCEEDED", described
    return list(json.loads(described["output"]))


@pytest.mark.slow
def test_a_backlog_longer_than_every_heartbeat_setting_completes_every_job_once(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    """Eight executions at once in front of one slow consumer: the last job waits far longer
    than the visibility timeout, the heartbeat interval and the stale-check age."""
    sfn, _, config = clients(stack)
    workers(
        "--command", job_script(tmp_path), "--concurrency", "1", "--stale-check-age", "1", *FAST
    )
    arns = [
        start(
            sfn,
            config.state_machine_arn,
            [{"marks": str(tmp_path), "sleep_s": 0.4}] * 2,
            name=f"backlog-{n}",
        )
        for n in range(8)
    ]
    for arn in arns:
        assert [entry["status"] for entry in outputs(stack, arn, 90)] == ["SUCCEEDED"] * 2
    assert sorted(runs(tmp_path)) == sorted(set(runs(tmp_path)))  # each job ran once
    assert len(runs(tmp_path)) == 16
    assert_queues_empty(stack)


@pytest.mark.slow
def test_a_job_longer_than_its_visibility_timeout_and_heartbeat_period_runs_once(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    sfn, _, config = clients(stack)
    for _ in range(2):  # a second worker would take the job if it ever became visible
        workers("--command", job_script(tmp_path), *FAST)
    arn = start(sfn, config.state_machine_arn, [{"marks": str(tmp_path), "sleep_s": 5}])
    assert outputs(stack, arn)[0]["status"] == "SUCCEEDED"
    assert len(runs(tmp_path)) == 1
    assert_queues_empty(stack)


@pytest.mark.slow  # over 2.5 s: the full suite (make test stays under 3 min)
def test_stop_execution_kills_the_command_and_its_grandchild_and_frees_the_slot(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    sfn, _, config = clients(stack)
    workers("--command", job_script(tmp_path), "--concurrency", "1", *FAST)
    doomed = start(
        sfn, config.state_machine_arn, [{"marks": str(tmp_path), "mode": "hang"}], name="doomed"
    )
    assert eventually(lambda: list(tmp_path.glob("*.started")), timeout_s=20)
    sfn.stop_execution(executionArn=doomed)
    # One heartbeat period (1 s) + grace (1 s): the job is gone and its slot is free again.
    after = start(sfn, config.state_machine_arn, [{"marks": str(tmp_path)}], name="after")
    assert outputs(stack, after, timeout_s=15)[0]["status"] == "SUCCEEDED"
    time.sleep(2.5)  # the grandchild would have left its mark by now
    assert not list(tmp_path.glob("*.grandchild")), "the grandchild outlived its job"
    assert sfn.describe_execution(executionArn=doomed)["status"] == "ABORTED"
    assert_queues_empty(stack)  # the cancelled job's message was deleted, no result sent


@pytest.mark.slow  # about 8 s with its stack; tests/unit/test_supervisor.py covers timeouts
def test_job_timeout_fails_the_task_with_bridge_job_timeout(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    sfn, _, config = clients(stack)
    workers("--command", job_script(tmp_path), "--job-timeout", "2", *FAST)
    arn = start(sfn, config.state_machine_arn, [{"marks": str(tmp_path), "mode": "hang"}])
    (entry,) = outputs(stack, arn, timeout_s=20)
    assert (entry["status"], entry["error"]) == ("FAILED", "Bridge.JobTimeout")
    time.sleep(2.5)
    assert not list(tmp_path.glob("*.grandchild"))
    assert_queues_empty(stack)


@pytest.mark.slow
def test_per_type_job_timeouts_override_the_default(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    sfn, _, config = clients(stack)
    workers("--command", job_script(tmp_path), "--job-timeouts", "slow=1", *FAST)
    marks = str(tmp_path)
    arn = start(
        sfn,
        config.state_machine_arn,
        [{"marks": marks, "sleep_s": 3, "type": "slow"}, {"marks": marks, "sleep_s": 3}],
    )
    first, second = outputs(stack, arn, timeout_s=20)
    assert first["error"] == "Bridge.JobTimeout"
    assert second["status"] == "SUCCEEDED"


@pytest.mark.slow
def test_drain_timeout_releases_the_job_and_another_worker_finishes_it(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    sfn, _, config = clients(stack)
    first = workers("--command", job_script(tmp_path), "--drain-timeout", "1", *FAST)
    arn = start(sfn, config.state_machine_arn, [{"marks": str(tmp_path), "sleep_s": 6}])
    assert eventually(lambda: runs(tmp_path), timeout_s=20)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == 0
    workers("--command", job_script(tmp_path), *FAST)
    assert outputs(stack, arn, timeout_s=30)[0]["status"] == "SUCCEEDED"
    assert len(runs(tmp_path)) == 2  # released, not lost; run again by the second worker
    assert_queues_empty(stack)


@pytest.mark.slow
def test_a_second_signal_after_the_loop_ended_exits_within_five_seconds(
    stack: LocalStack, workers: WorkerFactory
) -> None:
    """The hard case: a Python handler in a thread that ignores cancellation."""
    sfn, sqs, config = clients(stack)
    process = workers("--handler", "tests.e2e.handlers:ignore_cancellation", *FAST)
    start(sfn, config.state_machine_arn, [{"sleep_s": 60}])
    jobs = config.jobs_queue_url
    assert eventually(lambda: visible(sqs, jobs) == 0 and runs_in_flight(sqs, jobs), 20)
    process.send_signal(signal.SIGTERM)
    time.sleep(1.5)  # the receive loop has ended; the worker is draining
    process.send_signal(signal.SIGTERM)
    began = time.monotonic()
    process.wait(timeout=10)
    assert time.monotonic() - began < 5
    assert eventually(lambda: visible(sqs, jobs) == 1, timeout_s=1.5)  # released at once


def runs_in_flight(sqs: Any, url: str) -> bool:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 1


@pytest.mark.slow  # over 2.5 s: the full suite (make test stays under 3 min)
def test_a_redriven_stale_job_is_deleted_without_running(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    """A job whose execution was stopped while it sat in a DLQ comes back by a redrive: the
    worker heartbeats it first (it is old), learns the task is closed, and deletes it."""
    sfn, sqs, config = clients(stack)
    arn = start(sfn, config.state_machine_arn, [{"marks": str(tmp_path)}], name="stale")
    (message,) = eventually(
        lambda: sqs.receive_message(QueueUrl=config.jobs_queue_url, WaitTimeSeconds=1).get(
            "Messages"
        ),
        timeout_s=20,
    )
    sfn.stop_execution(executionArn=arn)
    token = json.loads(message["Body"])["token"]
    assert eventually(lambda: closed_task_error(sfn, token), timeout_s=10)  # the task is over
    time.sleep(1.2)  # older than --stale-check-age
    sqs.send_message(QueueUrl=config.jobs_queue_url, MessageBody=message["Body"])  # redriven
    sqs.delete_message(QueueUrl=config.jobs_queue_url, ReceiptHandle=message["ReceiptHandle"])
    workers("--command", job_script(tmp_path), "--stale-check-age", "1", *FAST)
    assert eventually(lambda: assert_no_messages(sqs, config.jobs_queue_url), timeout_s=20)
    assert runs(tmp_path) == []
    assert_queues_empty(stack)


def assert_no_messages(sqs: Any, url: str) -> bool:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"])
        + int(attributes["ApproximateNumberOfMessagesNotVisible"])
        == 0
    )


@pytest.mark.slow
def test_undecodable_output_and_sys_exit_end_as_failures(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    sfn, _, config = clients(stack)
    command_worker = workers("--command", job_script(tmp_path), *FAST)
    arn = start(sfn, config.state_machine_arn, [{"marks": str(tmp_path), "mode": "binary"}])
    (binary,) = outputs(stack, arn, timeout_s=20)
    assert (binary["status"], binary["error"]) == ("FAILED", "Bridge.InvalidOutput")
    command_worker.send_signal(signal.SIGTERM)
    assert command_worker.wait(timeout=10) == 0

    workers("--handler", "tests.e2e.handlers:exit_now", *FAST)
    arn = start(sfn, config.state_machine_arn, [{"n": 1}] * 3, name="exits")
    for entry in outputs(stack, arn, timeout_s=20):  # three in a row: no slot leaked
        assert (entry["status"], entry["error"]) == ("FAILED", "SystemExit")
    assert_queues_empty(stack)


@pytest.mark.slow  # over 3.3 s: the full suite (make test stays under 3 minutes)
def test_a_documentation_style_state_machine_runs_unchanged(
    stack: LocalStack, workers: WorkerFactory
) -> None:
    """The AWS documentation's callback example: its own message shape, no bridge contract."""
    sfn, _, config = clients(stack)
    definition = {
        "StartAt": "SendToWorker",
        "States": {
            "SendToWorker": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {
                    "QueueUrl": config.jobs_queue_url,
                    "MessageBody": {
                        "MessageTitle": "Task started by Step Functions. Waiting for callback.",
                        "TaskToken.$": "$$.Task.Token",
                    },
                },
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name="docs-callback",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/docs",
    )["stateMachineArn"]
    workers("--handler", "tests.e2e.handlers:echo", "--token-path", "$.TaskToken", *FAST)
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    described = wait_for_execution(sfn, arn, timeout_s=30)
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output == {
        "echo": {"MessageTitle": "Task started by Step Functions. Waiting for callback."}
    }  # the handler never sees the token
    assert_queues_empty(stack)


@pytest.mark.slow
def test_no_token_appears_in_debug_logs(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    sfn, _, config = clients(stack)
    workers("--handler", "consumers.demo_handler:work", "--log-level", "DEBUG", *FAST)
    arn = start(sfn, config.state_machine_arn, [{"n": 1, "sleep_ms": 1500}, {"n": 2}])
    assert [e["status"] for e in outputs(stack, arn)] == ["SUCCEEDED"] * 2
    tokens = task_tokens(sfn, arn)
    assert len(tokens) == 2
    log = (tmp_path / "worker-0.log").read_text()
    assert "DEBUG" in log and "SendTaskHeartbeat" in log  # botocore's bodies were logged
    for token in tokens:
        assert token not in log
        assert token[:40] not in log


def task_tokens(sfn: Any, arn: str) -> list[str]:
    """The real tokens, read back from the execution's history."""
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    tokens = []
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if details:
            body = json.loads(details["parameters"])["MessageBody"]
            tokens.append(body["token"])
    return tokens


@pytest.mark.slow  # over 2.5 s: the full suite (make test stays under 3 min)
def test_a_second_signal_leaves_no_job_process_behind(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    sfn, sqs, config = clients(stack)
    process = workers("--command", job_script(tmp_path), "--cancel-grace", "30", *FAST[:4])
    start(sfn, config.state_machine_arn, [{"marks": str(tmp_path), "mode": "hang"}])
    assert eventually(lambda: list(tmp_path.glob("*.started")), timeout_s=20)
    process.send_signal(signal.SIGINT)  # Ctrl-C: drains; the job itself never sees it
    time.sleep(0.5)
    assert not list(tmp_path.glob("*.grandchild"))
    process.send_signal(signal.SIGINT)
    began = time.monotonic()
    assert process.wait(timeout=10) == 130
    assert time.monotonic() - began < 5
    time.sleep(2.5)  # long enough for the grandchild to leave its mark, had it survived
    assert not list(tmp_path.glob("*.grandchild"))
    assert eventually(lambda: visible(sqs, config.jobs_queue_url) == 1, timeout_s=1.5)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def health(port: int) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())
    except OSError:
        return 0, {}


@pytest.mark.slow
def test_the_health_endpoint_says_ready_then_draining_with_the_running_count(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    sfn, _, config = clients(stack)
    port = free_port()
    process = workers("--command", job_script(tmp_path), "--health-port", str(port), *FAST)
    assert eventually(lambda: health(port)[0] == 200, timeout_s=20)
    assert health(port)[1]["state"] == "ready"
    start(sfn, config.state_machine_arn, [{"marks": str(tmp_path), "sleep_s": 4}])
    assert eventually(lambda: runs(tmp_path), timeout_s=20)
    process.send_signal(signal.SIGTERM)
    status, body = eventually(lambda: (s := health(port))[0] == 503 and s, timeout_s=5)
    assert (status, body["state"], body["running"]) == (503, "draining", 1)
    assert process.wait(timeout=20) == 0
