"""Failed jobs at the execution level: with ``failure_policy="fail"`` an execution whose jobs
failed beyond the tolerated count or percentage ends FAILED with ``Bridge.JobsFailed`` and the
counts in its cause, for INLINE and DISTRIBUTED maps alike; within the tolerance, or with the
default "report", it succeeds and its output lists every job, failures included."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bridge.contract import parse_job
from bridge.local_stack import LocalStack, StackSettings
from bridge.local_stack.resources import LOCAL_ROLE_ARN
from bridge.state_machine import JOBS_FAILED_ERROR, StateMachineParams, render_definition
from tests.support.aws import start
from tests.support.polling import wait_for_execution
from tests.support.stack import WorkerFactory, e2e_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEMO = "consumers.demo_handler:work"
MODES = ["INLINE", "DISTRIBUTED"]


@pytest.fixture
def stack_settings(request: pytest.FixtureRequest) -> StackSettings:
    """The e2e settings (tests/e2e/conftest.py) with a Map mode and a failure policy; the
    policy reaches the definition through StackSettings, as ``local up`` passes it."""
    mode, policy = getattr(request, "param", ("INLINE", {}))
    return e2e_settings(map_mode=mode, **policy)


def resources(stack: LocalStack) -> tuple[str, str]:
    """The stack's state machine ARN and jobs queue URL."""
    assert stack.config and stack.config.state_machine_arn and stack.config.jobs_queue_url
    return stack.config.state_machine_arn, stack.config.jobs_queue_url


def machine(stack: LocalStack, name: str, **params: Any) -> str:
    """Another state machine on the stack's jobs queue, rendered from the same template."""
    assert stack.clients
    definition = render_definition(
        StateMachineParams(
            jobs_queue_url=resources(stack)[1],
            timeout_seconds=120,
            max_queue_wait_seconds=20,
            job_timeout_seconds=30,
            **params,
        )
    )
    return str(
        stack.clients.sfn.create_state_machine(
            name=name, definition=definition, roleArn=LOCAL_ROLE_ARN, type="STANDARD"
        )["stateMachineArn"]
    )


def jobs(total: int, failing: int) -> list[dict[str, Any]]:
    """``total`` demo jobs, the last ``failing`` of which fail."""
    return [{"n": n, "sleep_ms": 10, "fail": n >= total - failing} for n in range(total)]


def finish(stack: LocalStack, arn: str) -> dict[str, Any]:
    assert stack.clients
    described = wait_for_execution(stack.clients.sfn, arn, timeout_s=60)
    assert described["status"] != "RUNNING", f"{arn} still running"
    return described


@pytest.mark.parametrize(
    "stack_settings", [(mode, {"failure_policy": "fail"}) for mode in MODES], indirect=True
)
def test_a_failed_job_fails_the_execution_with_the_counts(
    stack: LocalStack, workers: WorkerFactory
) -> None:
    """Real workers: one job of four raises; the execution fails, its cause says how many."""
    assert stack.clients
    state_machine = resources(stack)[0]
    workers("--handler", DEMO, "--concurrency", "4")
    arn = start(stack.clients.sfn, state_machine, jobs(4, 1), name="one-bad")
    described = finish(stack, arn)
    assert described["status"] == "FAILED", described
    assert described["error"] == JOBS_FAILED_ERROR
    assert described["cause"] == (
        '1 of 4 jobs failed, more than tolerated (at most 0 jobs and 100%); errors: ["DemoFailure"]'
    )
    # Under the same policy a run without failures succeeds with the usual output.
    clean = start(stack.clients.sfn, state_machine, jobs(3, 0), name="clean")
    output = json.loads(finish(stack, clean)["output"])
    assert [entry["status"] for entry in output] == ["SUCCEEDED"] * 3


@pytest.mark.parametrize(
    "stack_settings",
    [(mode, {"failure_policy": "fail", "tolerated_failure_percentage": 25}) for mode in MODES],
    indirect=True,
)
def test_failures_within_the_tolerance_leave_the_execution_succeeded(
    stack: LocalStack, workers: WorkerFactory
) -> None:
    """Real workers: 1 of 4 failed is 25 %, tolerated; 2 of 4 is not."""
    assert stack.clients
    workers("--handler", DEMO, "--concurrency", "4")
    sfn, state_machine = stack.clients.sfn, resources(stack)[0]
    tolerated = start(sfn, state_machine, jobs(4, 1), name="quarter")
    beyond = start(sfn, state_machine, jobs(4, 2), name="half")
    succeeded = finish(stack, tolerated)
    assert succeeded["status"] == "SUCCEEDED", succeeded
    output = json.loads(succeeded["output"])
    assert [entry["status"] for entry in output] == ["SUCCEEDED"] * 3 + ["FAILED"]
    assert output[3]["error"] == "DemoFailure"
    failed = finish(stack, beyond)
    assert (failed["status"], failed["error"]) == ("FAILED", JOBS_FAILED_ERROR), failed
    assert failed["cause"].startswith("2 of 4 jobs failed, more than tolerated (at most 4 jobs")


def fail(count: int | None = None, percentage: int | None = None) -> dict[str, Any]:
    """The "fail" policy's parameters with these tolerances."""
    return {
        "failure_policy": "fail",
        "tolerated_failure_count": count,
        "tolerated_failure_percentage": percentage,
    }


# The thresholds, pinned exactly. No workers: the test completes each task itself
# (SendTaskSuccess / SendTaskFailure, as the completion handler would), so many executions
# finish in seconds. (policy parameters, jobs, failing, expected status)
THRESHOLDS: list[tuple[dict[str, Any], int, int, str]] = [
    ({}, 3, 3, "SUCCEEDED"),  # "report": everything tolerated
    (fail(), 3, 0, "SUCCEEDED"),
    (fail(), 0, 0, "SUCCEEDED"),  # no jobs at all
    (fail(count=2), 5, 2, "SUCCEEDED"),
    (fail(count=2), 5, 3, "FAILED"),
    (fail(percentage=30), 10, 3, "SUCCEEDED"),  # 30 % is not more than 30 %
    (fail(percentage=29), 10, 3, "FAILED"),
    (fail(percentage=33), 3, 1, "FAILED"),  # 33.3 % > 33 %
    (fail(percentage=34), 3, 1, "SUCCEEDED"),
    (fail(percentage=0), 7, 1, "FAILED"),
    (fail(percentage=99), 7, 7, "FAILED"),
    (fail(percentage=100), 7, 7, "SUCCEEDED"),
    (fail(count=3, percentage=50), 4, 3, "FAILED"),  # within the count, beyond the percentage
    (fail(count=1, percentage=50), 4, 2, "FAILED"),  # within the percentage, beyond the count
]


def complete_tasks(stack: LocalStack, arns: list[str], timeout_s: float = 60) -> None:
    """Answer every job message until all ``arns`` have ended: fail those whose input asks."""
    assert stack.clients
    sfn, sqs, url = stack.clients.sfn, stack.clients.sqs, resources(stack)[1]
    deadline = time.monotonic() + timeout_s
    running = set(arns)
    while running and time.monotonic() < deadline:
        for message in sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", []):
            job = parse_job(message["Body"])
            if job.input.get("fail"):
                sfn.send_task_failure(taskToken=job.token, error="Boom", cause="asked to fail")
            else:
                sfn.send_task_success(taskToken=job.token, output=json.dumps({"n": job.input["n"]}))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        running = {
            arn
            for arn in running
            if sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        }
        time.sleep(0.05)
    assert not running, f"still running: {sorted(running)}"


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_tolerated_count_and_percentage_boundaries(stack: LocalStack, mode: str) -> None:
    assert stack.clients
    sfn = stack.clients.sfn
    arns = []
    for index, (params, total, failing, _) in enumerate(THRESHOLDS):
        state_machine = machine(
            stack, f"thresholds-{mode.lower()}-{index}", map_mode=mode, **params
        )
        arns.append(start(sfn, state_machine, jobs(total, failing), name=f"case-{index}"))
    complete_tasks(stack, arns)
    for arn, (params, total, failing, expected) in zip(arns, THRESHOLDS, strict=True):
        described = sfn.describe_execution(executionArn=arn)
        case = f"{params} {failing} of {total} failed"
        assert described["status"] == expected, f"{case}: {described}"
        if expected == "FAILED":
            assert described["error"] == JOBS_FAILED_ERROR, case
            assert described["cause"].startswith(f"{failing} of {total} jobs failed"), case
            assert described["cause"].endswith('errors: ["Boom"]'), case
        else:
            output = json.loads(described["output"])
            assert [entry["status"] for entry in output] == ["SUCCEEDED"] * (total - failing) + [
                "FAILED"
            ] * failing, case
