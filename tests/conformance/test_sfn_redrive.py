"""RedriveExecution (``compat/sfn_redrive.py``): an unsuccessful execution runs again in place,
with its ARN, and the Inline Map iterations that had succeeded are not run again.

``rerun --redrive`` relies on exactly this: a run stopped (or timed out) in the middle of its
jobs sends only its unfinished jobs again and ends with every job's output; one the failure
policy failed sends nothing again and fails again (its failed jobs are finished iterations)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.local_stack.compat.sfn_redrive import CODE, REDRIVE
from tests.support.conformance import Target, callback_task, map_over_items, wait_status
from tests.support.polling import eventually

pytestmark = [pytest.mark.conformance, pytest.mark.slow]


def callback_map(target: Target, name: str, then_fail: bool = False) -> tuple[str, str]:
    """(state machine ARN, queue URL): an Inline Map over ``$.items`` whose iterations send
    ``{"token", "n"}`` and wait; with ``then_fail`` a Fail state follows the Map."""
    queue = target.queue(f"{name}-q")
    task = callback_task(queue, {"n.$": "$.n"}, End=True)
    definition = map_over_items("Wait", {"Wait": task})
    if then_fail:
        definition["States"]["M"].pop("End")
        definition["States"]["M"]["Next"] = "Fail"
        definition["States"]["Fail"] = {"Type": "Fail", "Error": "Policy", "Cause": "by test"}
    return target.state_machine(name, definition), queue


def tokens(target: Target, queue: str, count: int, timeout_s: float = 20) -> dict[int, str]:
    """{n: task token} of the next ``count`` job messages (deleted once read)."""
    found: dict[int, str] = {}

    def probe() -> bool:
        answer = target.sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in answer.get("Messages", []):
            body = json.loads(message["Body"])
            found[int(body["n"])] = body["token"]
            target.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return len(found) >= count

    eventually(probe, timeout_s, every_s=0)
    assert len(found) == count, f"expected {count} job messages, got {sorted(found)}"
    return found


def nothing_more(target: Target, queue: str, wait_s: float = 2.0) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        answer = target.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)
        assert not answer.get("Messages"), [m["Body"] for m in answer["Messages"]]


def succeed(target: Target, token: str, n: int) -> None:
    target.sfn.send_task_success(taskToken=token, output=json.dumps({"done": n}))


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return str(info.value.response["Error"]["Code"])


@pytest.mark.gap(REDRIVE)
def test_a_stopped_execution_redrives_only_its_unfinished_iterations(target: Target) -> None:
    machine, queue = callback_map(target, "stopped")
    arn = target.sfn.start_execution(
        stateMachineArn=machine, input=json.dumps({"items": [{"n": 0}, {"n": 1}, {"n": 2}]})
    )["executionArn"]
    first = tokens(target, queue, 3)
    succeed(target, first[0], 0)
    succeed(target, first[2], 2)
    eventually(
        lambda: (
            sum(
                e["type"] == "MapIterationSucceeded"
                for e in target.sfn.get_execution_history(executionArn=arn, maxResults=1000)[
                    "events"
                ]
            )
            == 2
        )
    )
    target.sfn.stop_execution(executionArn=arn)
    assert wait_status(target, arn)["status"] == "ABORTED"

    redriven = target.sfn.redrive_execution(executionArn=arn)
    assert "redriveDate" in redriven
    again = tokens(target, queue, 1)
    assert list(again) == [1]  # 0 and 2 succeeded before: not sent again
    nothing_more(target, queue)
    described = target.sfn.describe_execution(executionArn=arn)
    assert described["status"] == "RUNNING" and described["redriveCount"] == 1
    succeed(target, again[1], 1)

    ended = wait_status(target, arn)
    assert ended["status"] == "SUCCEEDED", ended
    assert ended["executionArn"] == arn and ended["redriveCount"] == 1
    assert ended["redriveDate"] >= ended["startDate"]
    assert json.loads(ended["output"]) == [{"done": 0}, {"done": 1}, {"done": 2}]
    [listed] = target.sfn.list_executions(stateMachineArn=machine)["executions"]
    assert listed["executionArn"] == arn and listed["status"] == "SUCCEEDED"
    assert listed["redriveCount"] == 1
    kinds = [e["type"] for e in target.sfn.get_execution_history(executionArn=arn)["events"]]
    assert kinds.count("ExecutionRedriven") == 1 and kinds.count("ExecutionAborted") == 1
    assert kinds.index("ExecutionAborted") < kinds.index("ExecutionRedriven")


@pytest.mark.gap(REDRIVE)
def test_a_failure_after_the_map_fails_again_without_rerunning_iterations(
    target: Target,
) -> None:
    machine, queue = callback_map(target, "policy", then_fail=True)
    arn = target.sfn.start_execution(
        stateMachineArn=machine, input=json.dumps({"items": [{"n": 0}, {"n": 1}]})
    )["executionArn"]
    for n, token in tokens(target, queue, 2).items():
        succeed(target, token, n)
    assert wait_status(target, arn)["status"] == "FAILED"

    target.sfn.redrive_execution(executionArn=arn)
    ended = wait_status(target, arn)
    assert ended["status"] == "FAILED" and ended["error"] == "Policy"
    assert ended["redriveCount"] == 1
    nothing_more(target, queue)  # the Map's iterations had succeeded: no job sent again


@pytest.mark.gap(REDRIVE)
def test_running_and_succeeded_executions_are_not_redrivable(target: Target) -> None:
    machine, queue = callback_map(target, "refused")
    arn = target.sfn.start_execution(
        stateMachineArn=machine, input=json.dumps({"items": [{"n": 0}]})
    )["executionArn"]
    token = tokens(target, queue, 1)[0]
    assert error_code(target.sfn.redrive_execution, executionArn=arn).endswith(CODE)
    described = target.sfn.describe_execution(executionArn=arn)
    assert described["redriveCount"] == 0 and described["redriveStatus"] == "NOT_REDRIVABLE"
    succeed(target, token, 0)
    assert wait_status(target, arn)["status"] == "SUCCEEDED"
    assert error_code(target.sfn.redrive_execution, executionArn=arn).endswith(CODE)
    assert target.sfn.describe_execution(executionArn=arn)["redriveCount"] == 0
