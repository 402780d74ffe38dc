"""Per-letter actions (bridge.ops.letters) against moto in-process: redrive skips what would
run nothing or bounce back, delete and fail touch only the letters named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.aws import Clients
from bridge.config import BridgeConfig
from bridge.dead_letter import DeadLetterHandler, archive_routes
from bridge.local_stack import compat
from bridge.local_stack.event_source import LocalLambdaContext, to_event_record
from bridge.ops import letters
from bridge.ops.inspect.dead_letters import Explainer
from bridge.ops.inspect.executions import ExecutionLens
from bridge.ops.inspect.queues import Side, choose_sides
from bridge.ops.resolve import UnknownId
from bridge.quarantine import REASON_ATTRIBUTE, SOURCE_ATTRIBUTE, quarantine
from tests.support.aws import receive_all, start
from tests.support.polling import visible, wait_for_execution

pytestmark = pytest.mark.functional

PATCHES = {
    "sqs-dead-letter-source",
    "sfn-send-task-failure-cause",
    "sfn-closed-token",
    "sfn-integer-tolerated-percentage",
}


@pytest.fixture(autouse=True)
def embedded_behaviour() -> Iterator[None]:
    compat.apply([patch for patch in compat.registry() if patch.name in PATCHES])
    yield
    compat.revert()


@pytest.fixture
def config(stack: dict[str, str]) -> BridgeConfig:
    return BridgeConfig(**stack)


def sides(config: BridgeConfig) -> list[Side]:
    return choose_sides(config, "jobs")


def dead_letter(aws: Clients, stack: dict[str, str], name: str) -> dict[str, Any]:
    """Start an execution of one job and let the redrive policy move it to the DLQ (its task
    still waits); returns the job message as first received."""
    start(aws.sfn, stack["state_machine_arn"], [{"n": name}], name=name)
    (message,) = receive_all(aws.sqs, stack["jobs_queue_url"], 1)
    url = stack["jobs_queue_url"]
    aws.sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    for _ in range(10):
        answer = aws.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=0)
        if not answer.get("Messages"):
            return message
    raise AssertionError("never dead-lettered")


def archive(aws: Clients, stack: dict[str, str]) -> None:
    """The dead-letter handler, once over the DLQ: tells the tasks, archives the letters."""
    url = stack["jobs_dlq_url"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    messages = aws.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    ).get("Messages", [])
    handler = DeadLetterHandler(aws.sfn, aws.sqs, archive_routes(BridgeConfig(**stack)))
    records = [to_event_record(m, arn, "us-east-1") for m in messages]
    handler.handle({"Records": records}, LocalLambdaContext())
    for message in messages:
        aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def redrive(
    aws: Clients, config: BridgeConfig, ids: list[str] | None, force: bool = False
) -> list[letters.LetterOutcome]:
    explainer = Explainer(ExecutionLens(aws.sfn), config.state_machine_arn)
    with letters.holding(aws.sqs, aws.sfn, sides(config), config.state_machine_arn, ids) as chosen:
        return letters.redrive_letters(aws.sqs, chosen, sides(config), explainer, force)


def test_a_letter_whose_task_waits_is_redriven_with_its_original_id(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    message = dead_letter(aws, stack, "waits")
    dead_letter(aws, stack, "other")

    (outcome,) = redrive(aws, config, ["waits/RunJob/0/0"])

    assert (outcome.action, outcome.job_id, outcome.destination) == (
        "redriven",
        "waits/RunJob/0/0",
        "callback-bridge-jobs",
    )
    (back,) = receive_all(aws.sqs, stack["jobs_queue_url"], 1)
    assert back["Body"] == message["Body"]
    said = {k: v["StringValue"] for k, v in back.get("MessageAttributes", {}).items()}
    assert said == {SOURCE_ATTRIBUTE: message["MessageId"]}  # the handler's others dropped
    assert visible(aws.sqs, stack["jobs_dlq_url"]) == 1  # the other letter, untouched


def test_a_letter_whose_task_is_closed_is_skipped_with_the_rerun_to_use(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    dead_letter(aws, stack, "closed")
    archive(aws, stack)  # the handler fails the task, then archives the letter

    (outcome,) = redrive(aws, config, ["closed"])

    assert outcome.action == "skipped"
    assert "task is closed" in outcome.note
    assert "callback-bridge rerun closed/RunJob/0/0" in outcome.note
    assert visible(aws.sqs, stack["jobs_archive_url"]) == 1
    assert visible(aws.sqs, stack["jobs_queue_url"]) == 0


def test_a_malformed_letter_goes_back_only_with_force(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    quarantine(aws.sqs, stack["jobs_dlq_url"], "logged-1", "not a job", "malformed job: $: x")

    (refused,) = redrive(aws, config, ["logged-1"])
    assert refused.action == "skipped" and refused.note.startswith("malformed (malformed job")
    assert "dlq delete" in refused.note and visible(aws.sqs, stack["jobs_queue_url"]) == 0

    (forced,) = redrive(aws, config, ["logged-1"], force=True)
    assert forced.action == "redriven"
    (back,) = receive_all(aws.sqs, stack["jobs_queue_url"], 1)
    assert back["Body"] == "not a job"
    assert REASON_ATTRIBUTE not in back.get("MessageAttributes", {})


def test_redriving_every_letter_skips_the_ones_that_would_run_nothing(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    dead_letter(aws, stack, "fine")
    quarantine(aws.sqs, stack["jobs_dlq_url"], "logged-2", "{", "malformed job: $: y")

    outcomes = redrive(aws, config, None)

    assert sorted((o.job_id or "-", o.action) for o in outcomes) == [
        ("-", "skipped"),
        ("fine/RunJob/0/0", "redriven"),
    ]


def test_delete_removes_only_the_letters_named(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    dead_letter(aws, stack, "keep")
    quarantine(aws.sqs, stack["jobs_dlq_url"], "logged-3", "junk", "malformed job: $: z")
    with letters.holding(
        aws.sqs, aws.sfn, sides(config), config.state_machine_arn, ["logged-3"]
    ) as chosen:
        report = letters.delete_letters(chosen)

    assert len(report.deleted) == 1 and report.not_deleted == []
    (left,) = receive_all(aws.sqs, stack["jobs_dlq_url"], 1)
    assert json.loads(left["Body"])["job_id"] == "keep/RunJob/0/0"


def test_an_unknown_id_does_nothing_and_releases_everything(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    dead_letter(aws, stack, "safe")
    with (
        pytest.raises(UnknownId),
        letters.holding(
            aws.sqs, aws.sfn, sides(config), config.state_machine_arn, ["safe", "no-such"]
        ),
    ):
        raise AssertionError("never reached")
    assert visible(aws.sqs, stack["jobs_dlq_url"]) == 1  # visible again at once


def test_fail_on_a_malformed_letter_keeps_it_and_says_what_to_do(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    quarantine(aws.sqs, stack["jobs_dlq_url"], "logged-4", "junk", "malformed job: $: w")
    explainer = Explainer(ExecutionLens(aws.sfn), config.state_machine_arn)
    with letters.holding(
        aws.sqs, aws.sfn, sides(config), config.state_machine_arn, ["logged-4"]
    ) as chosen:
        report = letters.fail_letters(aws.sfn, chosen, explainer)
        job_of = {letter.keys.message_id: letter.keys.job_id for letter in chosen}

    (kept,) = report.no_token
    assert report.failed == []
    advice = letters.advice(report, job_of)
    assert f"callback-bridge dlq delete {kept} --yes" in advice[kept]
    assert visible(aws.sqs, stack["jobs_dlq_url"]) == 1


def test_fail_by_execution_fails_every_waiting_task_of_it(
    aws: Clients, stack: dict[str, str], config: BridgeConfig
) -> None:
    dead_letter(aws, stack, "many")
    explainer = Explainer(ExecutionLens(aws.sfn), config.state_machine_arn)
    with letters.holding(
        aws.sqs, aws.sfn, sides(config), config.state_machine_arn, ["many"]
    ) as chosen:
        report = letters.fail_letters(aws.sfn, chosen, explainer)

    assert len(report.failed) == 1 and visible(aws.sqs, stack["jobs_dlq_url"]) == 0
    arn = str(config.state_machine_arn).replace(":stateMachine:", ":execution:") + ":many"
    output = json.loads(wait_for_execution(aws.sfn, arn)["output"])
    assert output[0]["error"] == "Bridge.DeadLettered"
