"""Step Functions behaviours the bridge relies on: callbacks, timeouts, stops, Map failures."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.conformance import (
    Target,
    callback_task,
    map_over_items,
    receive_one,
    wait_status,
)

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

HEARTBEAT_EXPIRED = {"States.Timeout", "States.HeartbeatTimeout"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return str(info.value.response["Error"]["Code"])


def start_waiting(target: Target, name: str, **machine: Any) -> tuple[str, str]:
    """Start a one-callback-task execution; return (execution ARN, its task token)."""
    queue = target.queue(f"{name}-q")
    arn = target.callback_machine(name, queue, **machine)
    execution = target.sfn.start_execution(stateMachineArn=arn, input='{"n": 1}')["executionArn"]
    body = json.loads(receive_one(target, queue)["Body"])
    return execution, body["token"]


class Heartbeats:
    """Send SendTaskHeartbeat every ``every_s`` seconds in a thread until stopped."""

    def __init__(self, target: Target, token: str, every_s: float) -> None:
        self._stop = threading.Event()
        self.errors: list[str] = []

        def beat() -> None:
            while not self._stop.wait(every_s):
                try:
                    target.sfn.send_task_heartbeat(taskToken=token)
                except ClientError as exc:
                    self.errors.append(exc.response["Error"]["Code"])
                    return

        self._thread = threading.Thread(target=beat, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.mark.gap("sfn-unnamed-execution")
def test_unnamed_executions_get_fresh_uuid_names(target: Target) -> None:
    arn = target.state_machine(
        "unnamed", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    )
    first = target.sfn.start_execution(stateMachineArn=arn, input='{"a": 1}')["executionArn"]
    second = target.sfn.start_execution(stateMachineArn=arn, input='{"a": 2}')["executionArn"]
    third = target.sfn.start_execution(stateMachineArn=arn, input='{"a": 2}')["executionArn"]
    assert len({first, second, third}) == 3
    names = [target.sfn.describe_execution(executionArn=a)["name"] for a in (first, second, third)]
    assert all(UUID.match(name) for name in names), names


@pytest.mark.gap("sfn-stop-waiting-execution")
def test_stop_aborts_an_execution_waiting_for_its_token(target: Target) -> None:
    execution, token = start_waiting(target, "stop", heartbeat_s=60, timeout_s=120)
    target.sfn.stop_execution(executionArn=execution, error="Cancelled", cause="by test")
    assert wait_status(target, execution, timeout_s=5)["status"] == "ABORTED"
    assert error_code(target.sfn.send_task_heartbeat, taskToken=token) == "TaskTimedOut"
    assert error_code(target.sfn.send_task_success, taskToken=token, output="{}") == "TaskTimedOut"


@pytest.mark.gap("sfn-closed-token")
def test_a_token_whose_task_closed_answers_task_timed_out(target: Target) -> None:
    execution, token = start_waiting(target, "closed")
    target.sfn.send_task_success(taskToken=token, output='{"ok": true}')
    assert wait_status(target, execution)["status"] == "SUCCEEDED"
    assert error_code(target.sfn.send_task_success, taskToken=token, output="{}") == "TaskTimedOut"
    assert error_code(target.sfn.send_task_heartbeat, taskToken=token) == "TaskTimedOut"


@pytest.mark.gap("sfn-closed-token")
def test_a_duplicate_callback_while_the_execution_runs_answers_task_timed_out(
    target: Target,
) -> None:
    queue = target.queue("dup-q")
    task = callback_task(queue, {})
    arn = target.state_machine(
        "dup",
        {
            "StartAt": "First",
            "States": {"First": {**task, "Next": "Second"}, "Second": {**task, "End": True}},
        },
    )
    execution = target.sfn.start_execution(stateMachineArn=arn)["executionArn"]
    first = json.loads(receive_one(target, queue)["Body"])["token"]
    target.sfn.send_task_success(taskToken=first, output="{}")
    second = json.loads(receive_one(target, queue)["Body"])["token"]
    # The execution still runs (waiting on Second); the first token is spent.
    assert error_code(target.sfn.send_task_success, taskToken=first, output="{}") == "TaskTimedOut"
    target.sfn.send_task_success(taskToken=second, output="{}")
    assert wait_status(target, execution)["status"] == "SUCCEEDED"


@pytest.mark.gap("sfn-send-task-failure-cause")
def test_send_task_failure_keeps_the_cause(target: Target) -> None:
    execution, token = start_waiting(target, "cause")
    cause = "disk full on /scratch; " * 100
    target.sfn.send_task_failure(taskToken=token, error="Render.Failed", cause=cause)
    described = wait_status(target, execution)
    assert (described["status"], described.get("error"), described.get("cause")) == (
        "FAILED",
        "Render.Failed",
        cause,
    )
    history = target.sfn.get_execution_history(executionArn=execution)["events"]
    failed = [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"]
    assert failed and failed[0]["cause"] == cause


@pytest.mark.gap("sfn-send-task-failure-cause")
def test_a_catch_receives_error_and_cause(target: Target) -> None:
    execution, token = start_waiting(target, "catch", catch=True)
    target.sfn.send_task_failure(taskToken=token, error="Job.Failed", cause="exit 3")
    described = wait_status(target, execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["caught"] == {"Error": "Job.Failed", "Cause": "exit 3"}


@pytest.mark.gap("sfn-fresh-token-per-retry")
def test_each_retry_attempt_gets_a_fresh_token(target: Target) -> None:
    queue = target.queue("retry-q")
    arn = target.state_machine(
        "retry",
        {
            "StartAt": "T",
            "States": {
                "T": callback_task(
                    queue,
                    {"attempt.$": "$$.State.RetryCount"},
                    Retry=[{"ErrorEquals": ["Again"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                    End=True,
                )
            },
        },
    )
    execution = target.sfn.start_execution(stateMachineArn=arn)["executionArn"]
    first = json.loads(receive_one(target, queue)["Body"])
    target.sfn.send_task_failure(taskToken=first["token"], error="Again", cause="")
    second = json.loads(receive_one(target, queue)["Body"])
    assert (first["attempt"], second["attempt"]) == (0, 1)
    assert second["token"] != first["token"]
    assert error_code(target.sfn.send_task_heartbeat, taskToken=first["token"]) == "TaskTimedOut"
    target.sfn.send_task_success(taskToken=second["token"], output='{"attempt": "second"}')
    described = wait_status(target, execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"attempt": "second"}


def test_each_heartbeat_resets_heartbeat_seconds(target: Target) -> None:
    execution, token = start_waiting(target, "beat", heartbeat_s=2, timeout_s=60)
    beats = Heartbeats(target, token, every_s=0.5)
    time.sleep(4.5)  # more than twice HeartbeatSeconds, kept alive by heartbeats
    beats.stop()
    assert beats.errors == []
    assert target.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    target.sfn.send_task_success(taskToken=token, output='"done"')
    assert wait_status(target, execution)["status"] == "SUCCEEDED"


def test_missing_heartbeats_fail_the_task(target: Target) -> None:
    execution, _ = start_waiting(target, "noheart", heartbeat_s=1, timeout_s=60)
    described = wait_status(target, execution, timeout_s=15)
    assert described["status"] == "FAILED"
    assert described.get("error") in HEARTBEAT_EXPIRED


def test_timeout_seconds_bounds_the_task_whatever_the_heartbeats(target: Target) -> None:
    execution, token = start_waiting(target, "bounded", heartbeat_s=2, timeout_s=3)
    beats = Heartbeats(target, token, every_s=0.3)
    described = wait_status(target, execution, timeout_s=15)
    beats.stop()
    assert described["status"] == "FAILED"
    assert described.get("error") == "States.Timeout"


@pytest.mark.gap("sfn-closed-token")
def test_uncaught_failure_in_an_inline_map_fails_the_execution_and_closes_siblings(
    target: Target,
) -> None:
    queue = target.queue("map-q")
    arn = target.state_machine(
        "map",
        map_over_items(
            "T",
            {"T": callback_task(queue, {"index.$": "$.index"}, End=True)},
            ItemSelector={"index.$": "$$.Map.Item.Index"},
        ),
    )
    execution = target.sfn.start_execution(stateMachineArn=arn, input='{"items": [1, 2]}')[
        "executionArn"
    ]
    bodies = [json.loads(receive_one(target, queue)["Body"]) for _ in range(2)]
    tokens = {body["index"]: body["token"] for body in bodies}
    target.sfn.send_task_failure(taskToken=tokens[0], error="Boom", cause="item 0")
    described = wait_status(target, execution)
    assert (described["status"], described.get("error")) == ("FAILED", "Boom")
    assert (
        error_code(target.sfn.send_task_success, taskToken=tokens[1], output="{}") == "TaskTimedOut"
    )


def _distributed_machine(target: Target, name: str, **tolerance: Any) -> str:
    return target.state_machine(
        name,
        map_over_items(
            "Check",
            {
                "Check": {
                    "Type": "Choice",
                    "Default": "Ok",
                    "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Fail"}],
                },
                "Fail": {"Type": "Fail", "Error": "Item.Failed", "Cause": "asked to"},
                "Ok": {"Type": "Pass", "End": True},
            },
            mode="DISTRIBUTED",
            **tolerance,
        ),
    )


@pytest.mark.gap("sfn-distributed-map-failures")
def test_a_failed_child_fails_a_distributed_map_by_default(target: Target) -> None:
    arn = _distributed_machine(target, "dmap")
    execution = target.sfn.start_execution(
        stateMachineArn=arn,
        input=json.dumps({"items": [{"fail": False}, {"fail": True}, {"fail": False}]}),
    )["executionArn"]
    described = wait_status(target, execution)
    assert described["status"] == "FAILED"
    assert described.get("error") == "States.ExceedToleratedFailureThreshold"


def test_tolerated_failures_let_a_distributed_map_succeed(target: Target) -> None:
    arn = _distributed_machine(target, "dmaptol", ToleratedFailureCount=1)
    execution = target.sfn.start_execution(
        stateMachineArn=arn,
        input=json.dumps({"items": [{"fail": False}, {"fail": True}, {"fail": False}]}),
    )["executionArn"]
    assert wait_status(target, execution)["status"] == "SUCCEEDED"


@pytest.mark.gap("sfn-integer-tolerated-percentage")
def test_distributed_map_accepts_an_integer_tolerated_percentage(target: Target) -> None:
    arn = _distributed_machine(target, "dmapint", ToleratedFailurePercentage=50)
    execution = target.sfn.start_execution(
        stateMachineArn=arn, input=json.dumps({"items": [{"fail": False}]})
    )["executionArn"]
    assert wait_status(target, execution)["status"] == "SUCCEEDED"


@pytest.mark.gap("sfn-distributed-map-failures")
def test_failures_beyond_the_tolerance_fail_a_distributed_map(target: Target) -> None:
    arn = _distributed_machine(target, "dmapover", ToleratedFailurePercentage=50.0)
    execution = target.sfn.start_execution(
        stateMachineArn=arn,
        input=json.dumps({"items": [{"fail": True}, {"fail": True}, {"fail": False}]}),
    )["executionArn"]
    described = wait_status(target, execution)
    assert described["status"] == "FAILED"
    assert described.get("error") == "States.ExceedToleratedFailureThreshold"
