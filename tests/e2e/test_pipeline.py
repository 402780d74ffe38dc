"""The real ASL in moto's interpreter, real worker processes, real SQS semantics."""

from __future__ import annotations

import json
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from bridge.contract import parse_job
from bridge.local_stack import LocalStack
from bridge.quarantine import REASON_ATTRIBUTE
from tests.support.aws import receive_all, start
from tests.support.polling import eventually, wait_for_execution
from tests.support.stack import WorkerFactory, assert_queues_empty

pytestmark = pytest.mark.e2e

DEMO = "consumers.demo_handler:work"


def run_jobs(stack: LocalStack, jobs: list[dict], name: str = "e2e") -> list[dict]:
    assert stack.clients and stack.config
    arn = start(stack.clients.sfn, stack.config.state_machine_arn, jobs, name=name)
    described = wait_for_execution(stack.clients.sfn, arn, timeout_s=60)
    assert described["status"] == "SUCCEEDED", described
    return json.loads(described["output"])


def test_job_message_produced_by_the_asl_satisfies_the_contract(stack: LocalStack) -> None:
    """No workers: read what the state machine itself put on the jobs queue."""
    assert stack.clients and stack.config
    items = [{"n": 0}, {"n": 1, "type": "render"}]
    start(stack.clients.sfn, stack.config.state_machine_arn, items, name="contract")
    messages = receive_all(stack.clients.sqs, stack.config.jobs_queue_url, 2)
    jobs = sorted((parse_job(m["Body"]) for m in messages), key=lambda job: job.map_index)
    assert [job.input for job in jobs] == items
    assert [job.type for job in jobs] == ["default", "render"]
    assert [job.job_id for job in jobs] == ["contract/RunJob/0/0", "contract/RunJob/1/0"]
    assert all(job.execution_arn.endswith(":contract") for job in jobs)
    assert all(job.attempt == 0 and job.version == 1 for job in jobs)


@pytest.mark.parametrize("stack_settings", ["INLINE", "DISTRIBUTED"], indirect=True)
def test_fan_out_succeeds_and_failures_are_data(stack: LocalStack, workers: WorkerFactory) -> None:
    for _ in range(2):
        workers("--handler", DEMO, "--concurrency", "3")
    jobs = [{"n": n, "sleep_ms": 50, "fail": n == 3} for n in range(6)]
    jobs[1]["type"] = "render"
    output = run_jobs(stack, jobs)
    assert [entry["status"] for entry in output] == [
        "SUCCEEDED",
        "SUCCEEDED",
        "SUCCEEDED",
        "FAILED",
        "SUCCEEDED",
        "SUCCEEDED",
    ]
    assert output[3]["error"] == "DemoFailure"
    assert [entry["output"]["n"] for entry in output if entry["status"] == "SUCCEEDED"] == [
        0,
        1,
        2,
        4,
        5,
    ]
    assert output[1]["output"]["type"] == "render"
    assert output[0]["output"]["type"] == "default"
    assert (
        len({entry["output"]["worker_pid"] for entry in output if entry["status"] == "SUCCEEDED"})
        >= 1
    )
    assert_queues_empty(stack)


def test_shell_command_worker(stack: LocalStack, workers: WorkerFactory, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        textwrap.dedent("""
        import json, os, sys
        data = json.load(sys.stdin)
        if data.get("fail"):
            print("something broke", file=sys.stderr)
            sys.exit(4)
        if data.get("plain"):
            print("plain text")
        else:
            print(json.dumps({"sum": sum(data["values"]), "type": os.environ["BRIDGE_JOB_TYPE"]}))
    """)
    )
    workers("--command", f"{sys.executable} {script}")
    output = run_jobs(
        stack, [{"values": [1, 2, 3], "type": "sum"}, {"fail": True}, {"plain": True}]
    )
    assert output[0] == {"status": "SUCCEEDED", "output": {"sum": 6, "type": "sum"}}
    assert output[1]["status"] == "FAILED" and output[1]["error"] == "Bridge.CommandFailed"
    assert output[2] == {"status": "SUCCEEDED", "output": "plain text"}
    assert_queues_empty(stack)


@pytest.mark.slow  # over 2.5 s: the full suite (make test stays under 3 min)
def test_sigterm_lets_the_running_job_finish(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    assert stack.clients and stack.config
    process = workers("--handler", DEMO, "--concurrency", "1")
    arn = start(
        stack.clients.sfn,
        stack.config.state_machine_arn,
        [{"n": 0, "sleep_ms": 1500}],
        name="drain",
    )
    # Running, not merely received: a message that arrives after the signal goes back to the
    # queue (another worker's), so the signal must follow the job's start.
    log = tmp_path / "worker-0.log"
    running = eventually(
        lambda: "job drain/RunJob/0/0 (default) started" in log.read_text(),
        timeout_s=20,
        every_s=0.05,
    )
    assert running, "the worker never started the job"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    described = wait_for_execution(stack.clients.sfn, arn, timeout_s=20)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])[0]["status"] == "SUCCEEDED"
    assert_queues_empty(stack)


@pytest.mark.slow  # over 3.3 s: the full suite (make test stays under 3 minutes)
def test_malformed_messages_end_in_the_dlqs_with_a_reason(
    stack: LocalStack, workers: WorkerFactory
) -> None:
    assert stack.clients and stack.config
    sqs, config = stack.clients.sqs, stack.config
    process = workers("--handler", DEMO)
    sqs.send_message(QueueUrl=config.jobs_queue_url, MessageBody="not json at all")
    sqs.send_message(QueueUrl=config.results_queue_url, MessageBody='{"version": 2}')
    # The dead-letter handler consumes the DLQs and keeps each letter in its archive.
    dead_job = receive_all(sqs, config.jobs_archive_url, 1, timeout_s=20)
    dead_result = receive_all(sqs, config.results_archive_url, 1, timeout_s=20)
    assert dead_job[0]["Body"] == "not json at all"
    assert "not JSON" in dead_job[0]["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert "version" in dead_result[0]["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert process.poll() is None, "the worker must survive bad input"
    # and it still works afterwards
    assert run_jobs(stack, [{"n": 1}])[0]["status"] == "SUCCEEDED"
