"""An ended execution is described complete: SUCCEEDED with its output, FAILED with its error
and cause, never the status alone (bridge.local_stack.compat.sfn_execution_end)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.conformance import Target

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

#: How long, locally, the interpreter is held between ending and publishing its output.
_HOLD_S = 1.0


@pytest.fixture
def slow_publication(target: Target, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Locally, widen the moment between an execution ending and its output being read from
    the interpreter, so a DescribeExecution lands in it every time (on AWS: nothing to do)."""
    if target.is_aws:
        yield
        return
    from moto.stepfunctions.parser.asl.eval.states import States

    original = States.get_input

    def get_input(self: Any) -> Any:
        if sys._getframe(1).f_code.co_name == "_reflect_execution_status":
            time.sleep(_HOLD_S)
        return original(self)

    monkeypatch.setattr(States, "get_input", get_input)
    yield


def first_ended(target: Target, execution: str, timeout_s: float = 30) -> dict[str, Any]:
    """The first DescribeExecution answer that is not RUNNING (polled every 10 ms)."""
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = target.sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.01)


@pytest.mark.gap("sfn-atomic-execution-end")
@pytest.mark.usefixtures("slow_publication")
def test_succeeded_is_described_with_its_output(target: Target) -> None:
    arn = target.state_machine(
        "end-ok",
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"done": 1}, "End": True}}},
    )
    execution = target.sfn.start_execution(stateMachineArn=arn)["executionArn"]
    described = first_ended(target, execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described.get("output", "null")) == {"done": 1}


def test_failed_is_described_with_its_error_and_cause(target: Target) -> None:
    arn = target.state_machine(
        "end-fail",
        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Job.Bad", "Cause": "x"}}},
    )
    answers: list[dict[str, Any]] = []
    done = threading.Event()

    def describe_until_ended() -> None:
        answers.append(first_ended(target, execution))
        done.set()

    execution = target.sfn.start_execution(stateMachineArn=arn)["executionArn"]
    threading.Thread(target=describe_until_ended, daemon=True).start()
    assert done.wait(35)
    described = answers[0]
    assert (described["status"], described.get("error"), described.get("cause")) == (
        "FAILED",
        "Job.Bad",
        "x",
    )
