"""bridge.ops.rerun.redrive: which executions it redrives, and the one-line reasons it gives
for the others (before calling RedriveExecution, or from its ExecutionNotRedrivable)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.ops.jobs import JobsError
from bridge.ops.rerun import redrive

pytestmark = pytest.mark.unit

ARN = "arn:aws:states:us-east-1:123456789012:execution:callback-bridge:nightly"
WHEN = datetime.datetime(2026, 12, 7, 21, 0, tzinfo=datetime.UTC)


class Sfn:
    """DescribeExecution answers ``status`` (then RUNNING once redriven); RedriveExecution
    answers ``refusal`` if set."""

    def __init__(self, status: str, error: str | None = None, refusal: str | None = None):
        self.described = {"executionArn": ARN, "status": status, "redriveCount": 0}
        if error:
            self.described["error"] = error
        self.refusal = refusal
        self.redriven: list[str] = []

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return dict(self.described)

    def redrive_execution(self, executionArn: str) -> dict[str, Any]:
        if self.refusal:
            error = {"Error": {"Code": "ExecutionNotRedrivable", "Message": self.refusal}}
            raise ClientError(error, "RedriveExecution")  # type: ignore[arg-type]
        self.redriven.append(executionArn)
        self.described.update(status="RUNNING", redriveCount=1, redriveDate=WHEN)
        return {"redriveDate": WHEN}


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "ABORTED"])
def test_an_unsuccessful_execution_is_redriven_in_place(status: str) -> None:
    sfn = Sfn(status, error="States.Timeout" if status == "FAILED" else None)
    done = redrive(sfn, ARN)
    assert sfn.redriven == [ARN]
    assert done.to_json() == {
        "execution_arn": ARN,
        "previous_status": status,
        "redrive_count": 1,
        "redrive_date": "2026-12-07T21:00:00+00:00",
    }


@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED"])
def test_a_running_or_succeeded_execution_is_refused_naming_it(status: str) -> None:
    sfn = Sfn(status)
    with pytest.raises(JobsError) as refused:
        redrive(sfn, ARN)
    assert str(refused.value) == (
        f"execution {ARN} is {status}: only a FAILED, TIMED_OUT or ABORTED execution can be "
        "redriven"
    )
    assert sfn.redriven == []


def test_a_failure_policy_failure_is_refused_pointing_to_rerun() -> None:
    sfn = Sfn("FAILED", error="Bridge.JobsFailed")
    with pytest.raises(JobsError) as refused:
        redrive(sfn, ARN)
    said = str(refused.value)
    assert ARN in said and "Bridge.JobsFailed" in said
    assert f"'callback-bridge rerun {ARN}'" in said and "\n" not in said
    assert sfn.redriven == []


def test_step_functions_refusal_is_one_line_with_its_reason() -> None:
    sfn = Sfn("FAILED", refusal="Execution history event limit exceeded.")
    with pytest.raises(JobsError) as refused:
        redrive(sfn, ARN)
    assert str(refused.value) == (
        f"execution {ARN} cannot be redriven: Execution history event limit exceeded."
    )


def test_other_aws_errors_are_left_to_the_caller() -> None:
    class Throttled(Sfn):
        def redrive_execution(self, executionArn: str) -> dict[str, Any]:
            error = {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}
            raise ClientError(error, "RedriveExecution")  # type: ignore[arg-type]

    with pytest.raises(ClientError):
        redrive(Throttled("ABORTED"), ARN)
