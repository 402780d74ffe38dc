"""Dead letters listed, shown, redriven, failed and purged against moto in-process: real
executions, real redrive policies, the real dead-letter handler for archived copies."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from bridge.aws import Clients
from bridge.cli.options import aws_errors
from bridge.config import BridgeConfig
from bridge.contract import ERROR_DEAD_LETTERED, mask_token, parse_job
from bridge.dead_letter import DeadLetterHandler, archive_routes
from bridge.local_stack import compat
from bridge.local_stack.event_source import LocalLambdaContext, to_event_record
from bridge.ops.inspect import dead_letters
from bridge.ops.inspect.executions import ExecutionLens
from bridge.ops.inspect.queues import InspectError, Side, choose_sides, side_from_config
from bridge.ops.redrive import copy_messages, redrive_side
from bridge.quarantine import REASON_ATTRIBUTE, quarantine
from tests.support.aws import depth, receive_all, start
from tests.support.messages import body, make_result
from tests.support.polling import eventually, visible, wait_for_execution

#: AWS behaviour these tests read (DeadLetterQueueSourceArn, causes, TaskTimedOut).
PATCHES = {
    "sqs-dead-letter-source",
    "sfn-send-task-failure-cause",
    "sfn-closed-token",
    "sfn-integer-tolerated-percentage",  # the template's S3-fed Map renders an integer
}
MOVE_TASKS = "sqs-message-move-tasks"


@pytest.fixture
def move_tasks() -> None:
    """Request it to have StartMessageMoveTask (otherwise in-process moto lacks it)."""


@pytest.fixture(autouse=True)
def embedded_behaviour(request: pytest.FixtureRequest) -> Iterator[None]:
    names = PATCHES | ({MOVE_TASKS} if "move_tasks" in request.fixturenames else set())
    compat.apply([patch for patch in compat.registry() if patch.name in names])
    yield
    compat.revert()


@pytest.fixture
def config(stack: dict[str, str]) -> BridgeConfig:
    return BridgeConfig(**stack)


def explainer(aws: Clients, config: BridgeConfig) -> dead_letters.Explainer:
    return dead_letters.Explainer(ExecutionLens(aws.sfn), config.state_machine_arn)


def listed(aws: Clients, config: BridgeConfig, queue: str = "all") -> list[Any]:
    sides = choose_sides(config, queue)
    return [
        found.letter
        for found in dead_letters.list_dead_letters(aws.sqs, sides, explainer(aws, config)).letters
    ]


def dead_letter_jobs(
    aws: Clients, stack: dict[str, str], jobs: list[Any], name: str
) -> tuple[str, Counter[str]]:
    """Start an execution and let the jobs queue's redrive policy move every job to the DLQ
    (received without being deleted until maxReceiveCount); returns the execution ARN and the
    job message bodies."""
    before = depth(aws.sqs, stack["jobs_dlq_url"])
    execution = start(aws.sfn, stack["state_machine_arn"], jobs, name=name)
    assert eventually(lambda: visible(aws.sqs, stack["jobs_queue_url"]) == len(jobs))
    seen: dict[str, str] = {}
    for _ in range(30):
        for message in aws.sqs.receive_message(
            QueueUrl=stack["jobs_queue_url"],
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            WaitTimeSeconds=0,
        ).get("Messages", []):
            seen[message["MessageId"]] = message["Body"]
        if depth(aws.sqs, stack["jobs_dlq_url"]) == before + len(jobs):
            return execution, Counter(seen.values())
    raise AssertionError("the redrive policy never moved the jobs")


def archive_with_handler(aws: Clients, stack: dict[str, str]) -> None:
    """What the dead-letter Lambda does: tell each execution, copy to the archive, delete."""
    handler = DeadLetterHandler(aws.sfn, aws.sqs, archive_routes(BridgeConfig(**stack)))
    dlq = stack["jobs_dlq_url"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    while messages := aws.sqs.receive_message(
        QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["All"]
    ).get("Messages", []):
        records = [to_event_record(m, arn["QueueArn"], "us-east-1") for m in messages]
        answer = handler.handle({"Records": records}, LocalLambdaContext())
        assert answer == {"batchItemFailures": []}
        for record in records:
            aws.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=record["receiptHandle"])


def bodies(aws: Clients, url: str, expected: int) -> Counter[str]:
    return Counter(m["Body"] for m in receive_all(aws.sqs, url, expected, timeout_s=3))


# --- list ---------------------------------------------------------------------------------


def test_list_shows_exactly_the_dead_letters_and_consumes_none(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    execution, _ = dead_letter_jobs(aws, stack, [{"n": 0}, {"n": 1, "type": "render"}], "peeked")

    first = listed(aws, config)
    second = listed(aws, config, "jobs")

    assert len(first) == 2
    assert {letter.message_id for letter in first} == {letter.message_id for letter in second}
    assert visible(aws.sqs, stack["jobs_dlq_url"]) == 2  # all visible again: nothing consumed
    by_index = {letter.job_id: letter for letter in first}
    assert set(by_index) == {"peeked/RunJob/0/0", "peeked/RunJob/1/0"}
    render = by_index["peeked/RunJob/1/0"]
    assert render.job_type == "render"
    assert (render.execution_arn, render.execution_name) == (execution, "peeked")
    assert render.queue == "callback-bridge-jobs-dlq" and render.role == "dlq"
    assert render.source_queue == "callback-bridge-jobs"
    assert render.reason_source == "derived"
    assert "moved from callback-bridge-jobs by its redrive policy" in render.reason
    assert render.task_waiting is True and render.execution_status == "RUNNING"
    assert render.receive_count and render.receive_count >= 4
    assert render.age_s is not None and 0 <= render.age_s < 60
    assert render.token.startswith("…") and len(render.token) < 20


def test_list_reads_the_archive_and_what_the_handler_recorded(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    execution, _ = dead_letter_jobs(aws, stack, [{"n": 0}], "archived")
    archive_with_handler(aws, stack)
    wait_for_execution(aws.sfn, execution)  # the task's failure is in the history

    (letter,) = listed(aws, config, "jobs")

    assert letter.queue == "callback-bridge-jobs-dead-letters" and letter.role == "archive"
    assert letter.reason_source == "attribute"
    assert letter.reason.startswith("exceeded maxReceiveCount 4 on callback-bridge-jobs")
    assert "failed" in letter.task_state and ERROR_DEAD_LETTERED in letter.task_state
    assert "handler told the task: failed" in letter.task_state
    assert letter.task_waiting is False
    assert visible(aws.sqs, stack["jobs_archive_url"]) == 1


def test_results_name_their_execution_with_or_without_the_field(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}], name="res")
    job = parse_job(receive_all(aws.sqs, stack["jobs_queue_url"], 1)[0]["Body"])
    bare = body(make_result(token=job.token, job_id=job.job_id))  # an older consumer's result
    aws.sqs.send_message(QueueUrl=stack["results_dlq_url"], MessageBody=bare)
    quarantine(aws.sqs, stack["results_dlq_url"], "m-1", "{not json", "result is not JSON")

    letters = {letter.reason_source: letter for letter in listed(aws, config, "results")}

    derived, recorded = letters["derived"], letters["attribute"]
    assert derived.execution_arn == execution and derived.job_type == "default"
    assert derived.task_waiting is True and derived.token == mask_token(job.token)
    assert recorded.reason == "result is not JSON" and recorded.token == "<none>"
    assert recorded.task_state.startswith("unknown")


def test_a_wrong_queue_name_or_an_unconfigured_side_is_named(config: BridgeConfig) -> None:
    with pytest.raises(InspectError, match="unknown queue 'dlq'"):
        choose_sides(config, "dlq")
    with pytest.raises(InspectError, match="jobs_dlq_url"):
        choose_sides(BridgeConfig(results_dlq_url="http://q/r"), "jobs")


# --- show ---------------------------------------------------------------------------------


def test_show_decodes_the_message_and_never_prints_a_token(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    _, sent = dead_letter_jobs(aws, stack, [{"n": 0}, {"n": 1}], "shown")
    tokens = {parse_job(text).token for text in sent}
    letters = listed(aws, config)
    lens = ExecutionLens(aws.sfn)
    sides = choose_sides(config, "jobs")

    found = dead_letters.find(aws.sqs, sides, explainer(aws, config), letters[0].message_id)
    shown = dead_letters.detail(found, lens, events=20)

    text = json.dumps(shown)
    assert not any(token in text for token in tokens)  # the history holds every job's token
    assert shown["message"]["token"] == found.letter.token
    index = parse_job(found.message["Body"]).map_index
    assert shown["job_input"] == {"n": index}
    assert shown["execution"]["status"] == "RUNNING"
    assert {"TaskScheduled", "TaskSubmitted"} <= {event["type"] for event in shown["events"]}
    with pytest.raises(InspectError, match="no dead letter with message id 'nope'"):
        dead_letters.find(aws.sqs, sides, explainer(aws, config), "nope")


# --- fail ---------------------------------------------------------------------------------


def test_fail_ends_waiting_tasks_deletes_their_dead_letters_and_keeps_the_rest(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    dead_letter_jobs(aws, stack, [{"n": 0}], "told")
    archive_with_handler(aws, stack)  # its task is over: the archived copy must stay
    waiting, _ = dead_letter_jobs(aws, stack, [{"n": 1}, {"n": 2}], "waiting")
    sides = choose_sides(config, "jobs")

    report = dead_letters.fail_dead_letters(aws.sqs, aws.sfn, sides, explainer(aws, config))

    assert len(report.failed) == 2 and len(report.already_closed) == 1
    assert not report.errors and not report.not_deleted
    assert depth(aws.sqs, stack["jobs_dlq_url"]) == 0
    assert visible(aws.sqs, stack["jobs_archive_url"]) == 1
    output = json.loads(wait_for_execution(aws.sfn, waiting)["output"])
    assert [item["error"] for item in output] == [ERROR_DEAD_LETTERED] * 2
    assert "job waiting/RunJob/0/0 dead-lettered in callback-bridge-jobs-dlq" in output[0]["cause"]


def test_fail_with_an_unknown_id_does_nothing(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    execution, _ = dead_letter_jobs(aws, stack, [{"n": 0}], "kept")
    (letter,) = listed(aws, config)
    sides = choose_sides(config, "jobs")

    with pytest.raises(InspectError, match="no dead letter with message id nope"):
        dead_letters.fail_dead_letters(
            aws.sqs, aws.sfn, sides, explainer(aws, config), {letter.message_id, "nope"}
        )

    assert visible(aws.sqs, stack["jobs_dlq_url"]) == 1
    assert aws.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"


# --- redrive ------------------------------------------------------------------------------


def test_redrive_by_move_task_returns_dlq_and_archive_to_the_jobs_queue(
    aws: Clients, stack: dict[str, str], config: BridgeConfig, move_tasks: None
) -> None:
    _, archived = dead_letter_jobs(aws, stack, [{"n": 0}], "archived")
    archive_with_handler(aws, stack)
    _, waiting = dead_letter_jobs(aws, stack, [{"n": 1}, {"n": 2}], "dlq")

    results = redrive_side(aws.sqs, side_from_config(config, "jobs"), timeout_s=10)

    assert [(r.queue, r.method, r.moved, r.status) for r in results] == [
        ("callback-bridge-jobs-dlq", "move task", 2, "COMPLETED"),
        ("callback-bridge-jobs-dead-letters", "move task", 1, "COMPLETED"),
    ]
    assert depth(aws.sqs, stack["jobs_dlq_url"]) == depth(aws.sqs, stack["jobs_archive_url"]) == 0
    assert bodies(aws, stack["jobs_queue_url"], 3) == archived + waiting


def seed(aws: Clients, url: str, count: int) -> Counter[str]:
    for start_at in range(0, count, 10):
        entries = [
            {"Id": str(i), "MessageBody": f'{{"n": {i}}}'}
            for i in range(start_at, min(start_at + 10, count))
        ]
        aws.sqs.send_message_batch(QueueUrl=url, Entries=entries)
    return Counter(f'{{"n": {i}}}' for i in range(count))


def test_redrive_falls_back_to_copy_where_there_is_no_move_task(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    sent = seed(aws, stack["jobs_dlq_url"], 12)

    results = redrive_side(aws.sqs, side_from_config(config, "jobs"))

    assert [(r.method, r.moved, r.failed, r.status) for r in results] == [
        ("copy", 12, 0, "COMPLETED"),
        ("none", 0, 0, "EMPTY"),
    ]
    assert "StartMessageMoveTask unavailable" in results[0].note
    assert depth(aws.sqs, stack["jobs_dlq_url"]) == 0
    assert bodies(aws, stack["jobs_queue_url"], 12) == sent


def test_a_copy_refused_half_way_loses_and_duplicates_nothing(
    aws: Clients, stack: dict[str, str]
) -> None:
    sent = seed(aws, stack["jobs_dlq_url"], 15)
    calls = []

    def second_batch_fails(**_: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            error = {"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}
            raise ClientError(error, "SendMessageBatch")  # type: ignore[arg-type]

    aws.sqs.meta.events.register("before-call.sqs.SendMessageBatch", second_batch_fails)
    first = copy_messages(aws.sqs, stack["jobs_dlq_url"], stack["jobs_queue_url"])

    assert (first.moved, first.failed, first.status) == (10, 5, "FAILED")
    assert "injected" in first.note
    assert visible(aws.sqs, stack["jobs_dlq_url"]) == 5  # released at once, not in flight
    again = copy_messages(aws.sqs, stack["jobs_dlq_url"], stack["jobs_queue_url"])
    assert (again.moved, again.status) == (5, "COMPLETED")
    assert bodies(aws, stack["jobs_queue_url"], 15) == sent
    assert depth(aws.sqs, stack["jobs_dlq_url"]) == 0


def test_a_copy_stopped_on_request_stops_between_batches(
    aws: Clients, stack: dict[str, str]
) -> None:
    sent = seed(aws, stack["jobs_dlq_url"], 15)
    batches: list[int] = []
    aws.sqs.meta.events.register("after-call.sqs.SendMessageBatch", lambda **_: batches.append(1))

    stopped = copy_messages(
        aws.sqs, stack["jobs_dlq_url"], stack["jobs_queue_url"], stop=lambda: bool(batches)
    )

    assert (stopped.moved, stopped.status) == (10, "STOPPED")
    moved = bodies(aws, stack["jobs_queue_url"], 10)
    left = bodies(aws, stack["jobs_dlq_url"], 5)
    assert moved + left == sent and not (set(moved) & set(left))


def test_copy_keeps_to_the_rate(aws: Clients, stack: dict[str, str]) -> None:
    seed(aws, stack["jobs_dlq_url"], 10)
    naps: list[float] = []
    now = [0.0]

    result = copy_messages(
        aws.sqs,
        stack["jobs_dlq_url"],
        stack["jobs_queue_url"],
        max_per_second=5,
        clock=lambda: now[0],
        sleep=naps.append,
    )

    assert result.moved == 10
    assert naps[:2] == [1.0, 2.0]  # 5 messages a batch, one batch a second


def test_redrive_needs_a_destination(aws: Clients, stack: dict[str, str]) -> None:
    side = Side("jobs", source_url=None, dlq_url=stack["jobs_dlq_url"])
    with pytest.raises(InspectError, match="jobs_queue_url"):
        redrive_side(aws.sqs, side)


# --- purge --------------------------------------------------------------------------------


def test_purge_empties_the_dlq_and_the_archive(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    seed(aws, stack["jobs_dlq_url"], 3)
    seed(aws, stack["jobs_archive_url"], 2)
    quarantine(aws.sqs, stack["results_dlq_url"], "m", "{}", "kept: other side")

    purged = dead_letters.purge(aws.sqs, choose_sides(config, "jobs"))

    assert purged == {"callback-bridge-jobs-dlq": 3, "callback-bridge-jobs-dead-letters": 2}
    assert depth(aws.sqs, stack["jobs_dlq_url"]) == depth(aws.sqs, stack["jobs_archive_url"]) == 0
    (kept,) = receive_all(aws.sqs, stack["results_dlq_url"], 1)
    assert kept["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] == "kept: other side"


# --- what the CLI makes of AWS refusing ---------------------------------------------------


def test_access_denied_becomes_one_error_line(
    aws: Clients, capsys: pytest.CaptureFixture[str]
) -> None:
    with Stubber(aws.sqs) as stub:
        stub.add_client_error("get_queue_attributes", "AccessDenied", "not authorized")
        with pytest.raises(typer.Exit) as exited, aws_errors():
            aws.sqs.get_queue_attributes(QueueUrl="https://q/x", AttributeNames=["All"])

    assert exited.value.exit_code == 2
    assert capsys.readouterr().err == (
        "error: AWS refused GetQueueAttributes (AccessDenied): not authorized\n"
    )
