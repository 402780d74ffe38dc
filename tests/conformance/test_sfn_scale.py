"""The Step Functions scale patches (compat/sfn_scale.py): what each keeps, and the work it saves.

Each patch is "speed, not behaviour": the behaviour tests run on every target and state what the
patch must preserve; the canaries count work (never seconds: machines here are shared and
noisy; timings live in benchmarks/embedded_scale.py and docs/local-stack.md).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bridge.local_stack.compat import sfn_scale
from tests.support.conformance import Target, callback_task, map_over_items, wait_status
from tests.support.polling import eventually

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

JOBS = 20
#: Bytes of padding per item: the Map input is then ~JOBS KB, easy to tell from one item.
PAD = 1000


def depth(target: Target, queue: str) -> int:
    attributes = target.sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def answer_all(target: Target, queue: str, expected: int, timeout_s: float = 60) -> list[Any]:
    """Receive ``expected`` job messages and send each one's body back as its task output."""
    bodies: list[Any] = []

    def drained() -> bool:
        for message in target.sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            body = json.loads(message["Body"])
            target.sfn.send_task_success(
                taskToken=body.pop("token"), output=json.dumps(body, separators=(",", ":"))
            )
            target.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            bodies.append(body)
        return len(bodies) >= expected

    assert eventually(drained, timeout_s), f"{len(bodies)} of {expected} jobs answered"
    return bodies


def selector_machine(target: Target, name: str, mode: str) -> tuple[str, str]:
    """A Map whose ItemSelector reads the item, its index and a field of the Map's input."""
    queue = target.queue(f"{name}-q")
    body = {"index.$": "$.index", "n.$": "$.item.n", "label.$": "$.label"}
    arn = target.state_machine(
        name,
        map_over_items(
            "T",
            {"T": callback_task(queue, body, End=True)},
            mode=mode,
            ItemSelector={
                "index.$": "$$.Map.Item.Index",
                "item.$": "$$.Map.Item.Value",
                "label.$": "$.label",
            },
        ),
    )
    return arn, queue


def items_input(jobs: int = JOBS) -> str:
    return json.dumps(
        {"label": "batch-7", "items": [{"n": n, "pad": "x" * PAD} for n in range(jobs)]}
    )


@pytest.mark.parametrize("mode", ["INLINE", "DISTRIBUTED"])
def test_each_iteration_selects_from_its_item_and_the_map_input(target: Target, mode: str) -> None:
    """What sfn-shared-map-input keeps: every iteration's ItemSelector sees its own item and
    index and the Map state's input, and the Map's output lists the iterations in item order."""
    arn, queue = selector_machine(target, f"sel-{mode.lower()}", mode)
    execution = target.sfn.start_execution(stateMachineArn=arn, input=items_input())["executionArn"]
    bodies = answer_all(target, queue, JOBS)
    assert sorted((b["index"], b["n"], b["label"]) for b in bodies) == [
        (n, n, "batch-7") for n in range(JOBS)
    ]
    described = wait_status(target, execution, timeout_s=60)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == [
        {"index": n, "n": n, "label": "batch-7"} for n in range(JOBS)
    ]


@pytest.mark.gap("sfn-shared-map-input")
def test_an_iteration_does_not_copy_the_whole_map_input(
    embedded_only: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto copies the whole Map input once per iteration (and again per Task state): O(N^2)
    for N items. The patch copies it once per Map run."""
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.eval import states

    whole = JOBS * PAD
    big_copies: list[int] = []
    original = copy.deepcopy

    class CountingCopy:
        """Stands in for the ``copy`` module in the interpreter's modules."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            if len(json.dumps(value, default=str)) >= whole:
                big_copies.append(1)
            return original(value, memo)

    # Undone when the test ends, before the stack's patches are reverted (some of which
    # replace the same module attribute).
    with monkeypatch.context() as patch:
        for module in (states, execute_state):
            patch.setattr(module, "copy", CountingCopy)
        arn, queue = selector_machine(embedded_only, "copies", "INLINE")
        embedded_only.sfn.start_execution(stateMachineArn=arn, input=items_input())
        assert eventually(lambda: depth(embedded_only, queue) >= JOBS, timeout_s=60)
    # The parent's own states copy their input a fixed number of times, whatever N is.
    assert len(big_copies) < JOBS, f"{len(big_copies)} copies of the Map input for {JOBS} items"


@pytest.mark.gap("sfn-distributed-children-cap")
def test_a_distributed_map_runs_a_bounded_number_of_children_at_once(
    embedded_only: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bound: with it at 5, a 20-item Distributed Map has 5 jobs waiting at a time, and
    every item still runs exactly once, its output in item order. moto starts all 20."""
    monkeypatch.setattr(sfn_scale, "DISTRIBUTED_CHILDREN_AT_ONCE", 5)
    arn, queue = selector_machine(embedded_only, "bounded", "DISTRIBUTED")
    execution = embedded_only.sfn.start_execution(stateMachineArn=arn, input=items_input())[
        "executionArn"
    ]
    assert eventually(lambda: depth(embedded_only, queue) >= 5, timeout_s=60)
    assert not eventually(lambda: depth(embedded_only, queue) > 5, timeout_s=1.5)
    bodies = answer_all(embedded_only, queue, JOBS)
    assert sorted(b["index"] for b in bodies) == list(range(JOBS))
    described = wait_status(embedded_only, execution, timeout_s=60)
    assert described["status"] == "SUCCEEDED"
    assert [entry["index"] for entry in json.loads(described["output"])] == list(range(JOBS))


@pytest.mark.gap("sfn-forget-finished-threads")
def test_finished_interpreter_threads_are_not_kept(
    embedded_only: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto keeps every thread its interpreter ever started (three per job) in a module-level
    list; the patch drops the finished ones, so a long-running stack does not grow per job."""
    from moto.stepfunctions.parser.utils import TMP_THREADS

    monkeypatch.setattr(sfn_scale, "PRUNE_EVERY", 1)
    TMP_THREADS.clear()
    arn, queue = selector_machine(embedded_only, "threads", "INLINE")
    execution = embedded_only.sfn.start_execution(stateMachineArn=arn, input=items_input())[
        "executionArn"
    ]
    answer_all(embedded_only, queue, JOBS)
    assert wait_status(embedded_only, execution, timeout_s=60)["status"] == "SUCCEEDED"
    finished = eventually(
        lambda: sum(1 for thread in TMP_THREADS if not thread.is_alive()) <= 2, timeout_s=2
    )
    dead = sum(1 for thread in TMP_THREADS if not thread.is_alive())
    assert finished, f"{dead} finished threads kept after {JOBS} jobs"
