"""AWS's Step Functions limits, as the embedded stack enforces them (bridge.limits): INLINE Map
concurrency, 25,000 history events, 256 KiB payloads, and queues sized like Terraform's."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.aws import Clients
from bridge.limits import (
    DATA_LIMIT_ERROR,
    HISTORY_EVENTS,
    HISTORY_LIMIT_CAUSE,
    HISTORY_LIMIT_ERROR,
    INLINE_MAX_CONCURRENCY,
    PAYLOAD_BYTES,
    QUEUE_MESSAGE_BYTES,
)
from bridge.local_stack.resources import StackSettings, create_resources
from tests.support.conformance import (
    Target,
    callback_task,
    map_over_items,
    receive_one,
    wait_status,
)

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

QUEUES_VARIABLES = Path(__file__).parents[2] / "infra" / "modules" / "queues" / "variables.tf"


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return str(info.value.response["Error"]["Code"])


def drain_tokens(target: Target, queue: str, settle_s: float, timeout_s: float = 30) -> list[str]:
    """Receive (and delete) every job message until none has arrived for ``settle_s``."""
    tokens: list[str] = []
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < settle_s:
        messages = target.sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if messages:
            quiet_since = time.monotonic()
        for message in messages:
            tokens.append(json.loads(message["Body"])["token"])
            target.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return tokens


def sized_string(total_bytes: int, wrapper: str = '{"a":""}') -> str:
    """The ``a`` value that makes the compact JSON document ``{"a": ...}`` ``total_bytes``."""
    return "x" * (total_bytes - len(wrapper))


def run_map(target: Target, name: str, items: int, mode: str, **fields: Any) -> tuple[str, str]:
    queue = target.queue(f"{name}-q", VisibilityTimeout="120")
    task = callback_task(queue, {"i.$": "$"}, End=True)
    arn = target.state_machine(name, map_over_items("Job", {"Job": task}, mode=mode, **fields))
    items_input = json.dumps({"items": list(range(items))})
    return target.sfn.start_execution(stateMachineArn=arn, input=items_input)["executionArn"], queue


@pytest.mark.gap("sfn-inline-max-concurrency")
@pytest.mark.parametrize("max_concurrency", [0, 100])
def test_an_inline_map_runs_at_most_40_iterations_at_once(
    target: Target, max_concurrency: int
) -> None:
    execution, queue = run_map(
        target, f"inline{max_concurrency}", 50, "INLINE", MaxConcurrency=max_concurrency
    )
    first = drain_tokens(target, queue, settle_s=2)
    assert len(first) == INLINE_MAX_CONCURRENCY
    for token in first:
        target.sfn.send_task_success(taskToken=token, output="{}")
    rest = drain_tokens(target, queue, settle_s=2)
    assert len(rest) == 10
    for token in rest:
        target.sfn.send_task_success(taskToken=token, output="{}")
    assert wait_status(target, execution)["status"] == "SUCCEEDED"


def test_an_inline_map_keeps_a_max_concurrency_below_40(target: Target) -> None:
    execution, queue = run_map(target, "inline5", 8, "INLINE", MaxConcurrency=5)
    first = drain_tokens(target, queue, settle_s=1.5)
    assert len(first) == 5
    for token in first:
        target.sfn.send_task_success(taskToken=token, output="{}")
    for token in drain_tokens(target, queue, settle_s=1.5):
        target.sfn.send_task_success(taskToken=token, output="{}")
    assert wait_status(target, execution)["status"] == "SUCCEEDED"


def test_a_distributed_map_is_not_held_to_40(target: Target) -> None:
    execution, queue = run_map(target, "distributed", 50, "DISTRIBUTED")
    tokens = drain_tokens(target, queue, settle_s=2, timeout_s=60)
    assert len(tokens) == 50
    for token in tokens:
        target.sfn.send_task_success(taskToken=token, output="{}")
    assert wait_status(target, execution, timeout_s=60)["status"] == "SUCCEEDED"


@pytest.mark.slow
@pytest.mark.gap("sfn-history-event-limit")
def test_an_execution_fails_at_25000_history_events(target: Target) -> None:
    # Each lap writes 4 events (Pass and Choice, entered and exited): 7,000 laps would need
    # 28,000, so the execution ends only if the limit ends it.
    arn = target.state_machine(
        "history",
        {
            "StartAt": "Count",
            "States": {
                "Count": {
                    "Type": "Pass",
                    "Parameters": {"n.$": "States.MathAdd($.n, 1)"},
                    "Next": "More",
                },
                "More": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.n", "NumericLessThan": 7000, "Next": "Count"}],
                    "Default": "Done",
                },
                "Done": {"Type": "Succeed"},
            },
        },
    )
    execution = target.sfn.start_execution(stateMachineArn=arn, input='{"n": 0}')["executionArn"]
    try:
        described = wait_status(target, execution, timeout_s=180)
    finally:
        if target.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
            target.sfn.stop_execution(executionArn=execution)
    assert (described["status"], described.get("error"), described.get("cause")) == (
        "FAILED",
        HISTORY_LIMIT_ERROR,
        HISTORY_LIMIT_CAUSE,
    )
    # moto answers the whole history at once; AWS pages it, newest first when asked.
    events = target.sfn.get_execution_history(
        executionArn=execution, reverseOrder=True, maxResults=2
    )["events"]
    last = max(events, key=lambda event: event["id"])
    assert (last["id"], last["type"], last["previousEventId"]) == (
        HISTORY_EVENTS,
        "ExecutionFailed",
        HISTORY_EVENTS - 1,
    )
    assert last["executionFailedEventDetails"] == {
        "error": HISTORY_LIMIT_ERROR,
        "cause": HISTORY_LIMIT_CAUSE,
    }


@pytest.mark.gap("sfn-execution-input-limit")
def test_start_execution_refuses_input_over_256_kib(target: Target) -> None:
    arn = target.state_machine(
        "input", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    )
    at_limit = json.dumps({"a": sized_string(PAYLOAD_BYTES)}, separators=(",", ":"))
    assert len(at_limit.encode()) == PAYLOAD_BYTES
    target.sfn.start_execution(stateMachineArn=arn, input=at_limit)
    over = json.dumps({"a": sized_string(PAYLOAD_BYTES + 1)}, separators=(",", ":"))
    code = error_code(target.sfn.start_execution, stateMachineArn=arn, input=over)
    assert code == "ValidationException"
    # Multi-byte characters count as their UTF-8 bytes, not as characters.
    wide = json.dumps({"a": "é" * (PAYLOAD_BYTES // 2)}, ensure_ascii=False)
    code = error_code(target.sfn.start_execution, stateMachineArn=arn, input=wide)
    assert code == "ValidationException"


@pytest.mark.gap("sfn-callback-output-limit")
def test_send_task_success_refuses_output_over_256_kib(target: Target) -> None:
    queue = target.queue("output-q")
    arn = target.callback_machine("output", queue)
    execution = target.sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    token = json.loads(receive_one(target, queue)["Body"])["token"]
    over = json.dumps({"a": sized_string(PAYLOAD_BYTES + 1)}, separators=(",", ":"))
    code = error_code(target.sfn.send_task_success, taskToken=token, output=over)
    assert code == "ValidationException"
    # The task still waits: a valid callback completes it.
    target.sfn.send_task_success(taskToken=token, output='{"ok": true}')
    described = wait_status(target, execution)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"ok": True}


def pass_output_machine(target: Target, name: str, output_bytes: int) -> str:
    result = {"a": sized_string(output_bytes)}
    return target.state_machine(
        name, {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": result, "End": True}}}
    )


@pytest.mark.gap("sfn-payload-limit-inclusive")
def test_a_state_output_of_exactly_256_kib_passes(target: Target) -> None:
    arn = pass_output_machine(target, "exact", PAYLOAD_BYTES)
    execution = target.sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    described = wait_status(target, execution)
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert len(json.dumps(output, separators=(",", ":")).encode()) == PAYLOAD_BYTES


def test_a_state_output_over_256_kib_fails_the_execution(target: Target) -> None:
    arn = pass_output_machine(target, "over", PAYLOAD_BYTES + 1)
    execution = target.sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    described = wait_status(target, execution)
    assert (described["status"], described.get("error"), described.get("cause")) == (
        "FAILED",
        DATA_LIMIT_ERROR,
        "The state/task 'P' returned a result with a size exceeding the maximum number of "
        "bytes service limit.",
    )


def test_queues_accept_what_terraforms_queues_accept(target: Target) -> None:
    if target.name != "embedded":
        pytest.skip("checks the embedded stack's own resources against infra/modules/queues")
    match = re.search(
        r'variable "max_message_size" \{.*?default\s*=\s*(\d+)', QUEUES_VARIABLES.read_text(), re.S
    )
    assert match, f"no max_message_size default in {QUEUES_VARIABLES}"
    terraform_default = int(match.group(1))
    assert terraform_default == QUEUE_MESSAGE_BYTES
    create_resources(Clients(sqs=target.sqs, sfn=target.sfn), StackSettings(prefix="cbsize"))
    urls = target.sqs.list_queues(QueueNamePrefix="cbsize")["QueueUrls"]
    assert len(urls) >= 4  # jobs, results and their DLQs (and the DLQs' archives)
    sizes = {
        url.rsplit("/", 1)[-1]: int(
            target.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])[
                "Attributes"
            ]["MaximumMessageSize"]
        )
        for url in urls
    }
    assert set(sizes.values()) == {terraform_default}, sizes


@pytest.mark.gap("sfn-task-parameters-limit")
def test_a_task_whose_parameters_exceed_256_kib_fails_with_data_limit_exceeded(
    target: Target,
) -> None:
    queue = target.queue("params-q")
    # The input fits; the message Parameters build from it (the text twice) does not.
    task = callback_task(queue, {"a.$": "$.text", "b.$": "$.text"}, timeout_s=5, End=True)
    arn = target.state_machine("params", {"StartAt": "Send", "States": {"Send": task}})
    text = "x" * (PAYLOAD_BYTES // 2 + 1000)
    execution = target.sfn.start_execution(stateMachineArn=arn, input=json.dumps({"text": text}))[
        "executionArn"
    ]
    described = wait_status(target, execution, timeout_s=20)
    assert (described["status"], described.get("error")) == ("FAILED", DATA_LIMIT_ERROR)
    assert not target.sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0).get("Messages")
