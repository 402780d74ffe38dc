"""Messages built to break a reader (issue 18), against moto in-process: absurd nesting,
duplicate keys, NaN. Each must end as a malformed message (in its DLQ with the reason, its task
told when the token is readable) or a named task failure; never as a dead thread, a retry loop
or a changed value."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge.aws import Clients
from bridge.config import BridgeConfig
from bridge.contract import ERROR_DEAD_LETTERED, ERROR_INVALID_OUTPUT
from bridge.dead_letter import TASK_TOLD_ATTRIBUTE, DeadLetterHandler, archive_routes
from bridge.limits import QUEUE_MESSAGE_BYTES
from bridge.local_stack.event_source import LocalLambdaContext
from bridge.quarantine import REASON_ATTRIBUTE
from consumers.command import CommandRunner
from consumers.runner import PythonRunner, Runner
from consumers.worker import Worker
from tests.support.aws import depth, receive_all, start
from tests.support.completion import complete, lambda_event
from tests.support.polling import eventually, wait_for_execution
from tests.support.worker import running, settings

LEVELS = 100_000  # 200 KB of brackets: a RecursionError in json.loads on every Python


def deep_message(**fields: Any) -> str:
    """A message whose ``input`` nests ``LEVELS`` arrays deep (fits a 256 KiB message)."""
    head = json.dumps({"version": 1, **fields})[:-1]
    return f'{head}, "input": {"[" * LEVELS}{"]" * LEVELS}}}'


def duplicated(body: str, key: str, value: Any) -> str:
    """``body`` with ``key`` written twice, the bad value first: ``json.loads`` keeps the last,
    valid one, and would accept it."""
    return "{" + json.dumps(key) + ": " + json.dumps(value) + ", " + body[1:]


def reasons(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] for m in messages)


def entries(aws: Clients, execution: str) -> list[dict[str, Any]]:
    described = wait_for_execution(aws.sfn, execution)
    assert described["status"] == "SUCCEEDED", described
    return list(json.loads(described["output"]))


def echo(data: Any, job: Any) -> Any:
    return {"echo": data}


# --- the worker ----------------------------------------------------------------------------
def test_bad_job_messages_are_dead_lettered_and_the_worker_keeps_receiving(
    aws: Clients, stack: dict[str, str]
) -> None:
    jobs_url = stack["jobs_queue_url"]
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}, {"n": 1}])
    healthy, doubled = sorted(
        receive_all(aws.sqs, jobs_url, 2), key=lambda m: json.loads(m["Body"])["map_index"]
    )
    for message in (healthy, doubled):
        aws.sqs.delete_message(QueueUrl=jobs_url, ReceiptHandle=message["ReceiptHandle"])
    bad_bodies = [deep_message(token="tok-deep"), duplicated(doubled["Body"], "version", 2)]
    for body in bad_bodies:
        aws.sqs.send_message(QueueUrl=jobs_url, MessageBody=body)
    aws.sqs.send_message(QueueUrl=jobs_url, MessageBody=healthy["Body"])

    with running(Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(echo))) as thread:
        assert complete(aws, stack, 1) == {"batchItemFailures": []}
        first = entries(aws, execution)
        dead = receive_all(aws.sqs, stack["jobs_dlq_url"], 2)
        # the same worker, still receiving: a later execution completes too
        later = start(aws.sfn, stack["state_machine_arn"], [{"n": 2}], name="run-2")
        assert complete(aws, stack, 1) == {"batchItemFailures": []}
        second = entries(aws, later)
        assert thread.is_alive()

    assert first[0] == {"status": "SUCCEEDED", "output": {"echo": {"n": 0}}}
    assert first[1]["status"] == "FAILED" and first[1]["error"] == "Bridge.InvalidJob"
    assert "duplicate key 'version'" in first[1]["cause"]  # its token was still readable
    assert second == [{"status": "SUCCEEDED", "output": {"echo": {"n": 2}}}]
    assert sorted(m["Body"] for m in dead) == sorted(bad_bodies)  # kept as they were
    duplicate_reason, deep_reason = reasons(dead)  # sorted: "body: d..." < "body: n..."
    assert "body: duplicate key 'version'" in duplicate_reason
    assert "body: nested deeper than 64 levels at byte" in deep_reason
    assert depth(aws.sqs, jobs_url) == 0


def run_to_the_end(aws: Clients, stack: dict[str, str], runner: Runner, jobs: list[Any]) -> Any:
    execution = start(aws.sfn, stack["state_machine_arn"], jobs)
    with running(Worker(aws.sqs, aws.sfn, settings(stack), runner)):
        assert complete(aws, stack, len(jobs)) == {"batchItemFailures": []}
        return entries(aws, execution)


def test_a_handler_returning_nan_or_infinity_fails_its_task_naming_the_path(
    aws: Clients, stack: dict[str, str]
) -> None:
    """Never SUCCEEDED with null where the handler put NaN."""
    outputs = [float("nan"), {"x": float("inf")}, {"items": [0, 1, 2, {"score": -1e999}]}, 1.5]
    output = run_to_the_end(
        aws, stack, PythonRunner(lambda data, job: outputs[data["n"]]), [{"n": n} for n in range(4)]
    )
    assert [entry["status"] for entry in output] == ["FAILED", "FAILED", "FAILED", "SUCCEEDED"]
    assert {entry.get("error") for entry in output[:3]} == {ERROR_INVALID_OUTPUT}
    assert "NaN at $:" in output[0]["cause"]
    assert "Infinity at $.x:" in output[1]["cause"]
    assert "-Infinity at $.items[3].score:" in output[2]["cause"]
    assert output[3]["output"] == 1.5


def test_a_command_printing_nan_fails_its_task_naming_the_path(
    aws: Clients, stack: dict[str, str]
) -> None:
    (entry,) = run_to_the_end(aws, stack, CommandRunner("""printf '{"x": NaN}'"""), [{"n": 0}])
    assert (entry["status"], entry["error"]) == ("FAILED", ERROR_INVALID_OUTPUT)
    assert "NaN at $.x" in entry["cause"]


def test_an_output_with_characters_sqs_refuses_arrives_unchanged(
    aws: Clients, stack: dict[str, str]
) -> None:
    """U+FFFE and U+FFFF are valid JSON but SQS refuses them raw in a body (the embedded SQS
    too): the result carries them as JSON escapes, so the workflow gets the same string."""
    command = CommandRunner(r"""printf '{"s": "a\357\277\277b\357\277\276"}'""")
    (entry,) = run_to_the_end(aws, stack, command, [{"n": 0}])
    assert entry == {"status": "SUCCEEDED", "output": {"s": "a\uffffb\ufffe"}}


# --- the completion handler ----------------------------------------------------------------
def test_an_over_deep_result_goes_to_the_results_dlq_without_retries(
    aws: Clients, stack: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    body = deep_message(token="tok-deep", job_id="run-1/RunJob/0/0", outcome="succeeded")
    aws.sqs.send_message(QueueUrl=stack["results_queue_url"], MessageBody=body)
    assert complete(aws, stack, 1) == {"batchItemFailures": []}  # acknowledged at once
    (dead,) = receive_all(aws.sqs, stack["results_dlq_url"], 1)
    assert dead["Body"] == body
    (reason,) = reasons([dead])
    assert "nested deeper than 64 levels" in reason and "no readable token" in reason
    assert depth(aws.sqs, stack["results_queue_url"]) == 0
    assert "result not handled" not in capfd.readouterr().out


def test_results_with_nan_or_duplicate_keys_never_deliver_a_changed_value(
    aws: Clients, stack: dict[str, str]
) -> None:
    """NaN in the output fails the task with Bridge.InvalidOutput (never null); a duplicate key
    is a malformed result (Bridge.InvalidResult), unless the token itself is duplicated."""
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}, {"n": 1}, {"n": 2}])
    jobs = sorted(
        (json.loads(m["Body"]) for m in receive_all(aws.sqs, stack["jobs_queue_url"], 3)),
        key=lambda job: job["map_index"],
    )

    def result(job: dict[str, Any], output: str) -> str:
        fields = {"version": 1, "token": job["token"], "job_id": job["job_id"]}
        return (
            json.dumps({**fields, "outcome": "succeeded", "worker": {"id": "w:1"}})[:-1]
            + f', "output": {output}}}'
        )

    bodies = [
        result(jobs[0], '{"x": NaN}'),
        duplicated(result(jobs[1], "1"), "outcome", "failed"),
        duplicated(result(jobs[2], "1"), "token", "someone-else's"),
    ]
    for body in bodies:
        aws.sqs.send_message(QueueUrl=stack["results_queue_url"], MessageBody=body)
    assert complete(aws, stack, 3) == {"batchItemFailures": []}
    dead = receive_all(aws.sqs, stack["results_dlq_url"], 2)

    # the third result's token is ambiguous: nobody can tell its task; stop it to finish
    def history() -> list[dict[str, Any]]:
        return list(aws.sfn.get_execution_history(executionArn=execution)["events"])

    eventually(lambda: len([e for e in history() if e["type"] == "TaskFailed"]) == 2)
    events = history()
    failures = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]
    aws.sfn.stop_execution(executionArn=execution)
    assert wait_for_execution(aws.sfn, execution)["status"] == "ABORTED"
    assert sorted(f["error"] for f in failures) == [ERROR_INVALID_OUTPUT, "Bridge.InvalidResult"]
    assert not [e for e in events if e["type"] == "TaskSucceeded"]  # nothing sent as null
    by_body = {m["Body"]: reasons([m])[0] for m in dead}
    assert bodies[0] not in by_body  # a valid result whose output Step Functions cannot take
    assert "duplicate key 'outcome'" in by_body[bodies[1]]
    assert "task failed with Bridge.InvalidResult" in by_body[bodies[1]]
    assert "duplicate key 'token'" in by_body[bodies[2]]
    assert "no readable token" in by_body[bodies[2]]


# --- the dead-letter handler ---------------------------------------------------------------
def test_the_dead_letter_handler_archives_an_over_deep_letter(
    aws: Clients, stack: dict[str, str]
) -> None:
    body = deep_message(token="tok-deep", job_id="run-1/RunJob/0/0")
    dlq_url = stack["jobs_dlq_url"]
    aws.sqs.send_message(QueueUrl=dlq_url, MessageBody=body)
    messages = aws.sqs.receive_message(
        QueueUrl=dlq_url, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    handler = DeadLetterHandler(aws.sfn, aws.sqs, archive_routes(BridgeConfig(**stack)))
    response = handler.handle(lambda_event(dlq_url, messages), LocalLambdaContext())
    assert response == {"batchItemFailures": []}
    (archived,) = receive_all(aws.sqs, stack["jobs_archive_url"], 1)
    assert archived["Body"] == body  # byte for byte
    told = archived["MessageAttributes"][TASK_TOLD_ATTRIBUTE]["StringValue"]
    assert told == "no-token"  # an over-deep body has no readable token


def test_the_dead_letter_handler_tells_the_task_of_a_duplicate_key_job(
    aws: Clients, stack: dict[str, str]
) -> None:
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    (message,) = receive_all(aws.sqs, stack["jobs_queue_url"], 1)
    body = duplicated(message["Body"], "map_index", -1)
    aws.sqs.send_message(QueueUrl=stack["jobs_dlq_url"], MessageBody=body)
    letters = aws.sqs.receive_message(
        QueueUrl=stack["jobs_dlq_url"], AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    handler = DeadLetterHandler(aws.sfn, aws.sqs, archive_routes(BridgeConfig(**stack)))
    handler.handle(lambda_event(stack["jobs_dlq_url"], letters), LocalLambdaContext())
    (entry,) = entries(aws, execution)
    assert (entry["status"], entry["error"]) == ("FAILED", ERROR_DEAD_LETTERED)


def test_a_malformed_job_at_the_size_limit_still_reaches_the_dlq_with_its_reason(
    aws: Clients, stack: dict[str, str]
) -> None:
    """The copy carries the reason and the source id as attributes, which count toward the
    size: a body near 256 KiB plus the sender's attribute leaves no room for them unless the
    sender's attribute gives way (before, SQS refused the copy and the message looped)."""
    jobs_url = stack["jobs_queue_url"]
    body = "[" * (QUEUE_MESSAGE_BYTES - 4000)
    aws.sqs.send_message(
        QueueUrl=jobs_url,
        MessageBody=body,
        MessageAttributes={"trace": {"DataType": "String", "StringValue": "t" * 3900}},
    )
    with running(Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(echo))):
        [dead] = receive_all(aws.sqs, stack["jobs_dlq_url"], 1)
    assert dead["Body"] == body
    reason = dead["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert "nested deeper than 64 levels" in reason
    assert "attributes dropped to fit: trace" in reason
    assert depth(aws.sqs, jobs_url) == 0
