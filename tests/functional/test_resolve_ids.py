"""The ids a dead-lettered job's cause names find its archived letter (moto in-process, the
real dead-letter handler), and every id kind resolves against real executions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.aws import Clients
from bridge.config import BridgeConfig
from bridge.contract import ERROR_DEAD_LETTERED, parse_job
from bridge.dead_letter import DeadLetterHandler, archive_routes
from bridge.local_stack import compat
from bridge.local_stack.event_source import LocalLambdaContext, to_event_record
from bridge.ops.inspect.queues import choose_sides
from bridge.ops.letters import peek_letters, resolver_over
from bridge.ops.resolve import AmbiguousId
from bridge.quarantine import quarantine
from tests.support.aws import receive_all, start
from tests.support.polling import wait_for_execution

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


def drain(aws: Clients, stack: dict[str, str]) -> None:
    """One event source mapping poll of the jobs DLQ through the real handler."""
    sqs, url = aws.sqs, stack["jobs_dlq_url"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    messages = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    records = [to_event_record(m, dlq_arn, "us-east-1") for m in messages]
    handler = DeadLetterHandler(aws.sfn, aws.sqs, archive_routes(BridgeConfig(**stack)))
    assert handler.handle({"Records": records}, LocalLambdaContext()) == {"batchItemFailures": []}
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def one_job(aws: Clients, stack: dict[str, str], name: str) -> tuple[str, dict[str, Any]]:
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}], name=name)
    (message,) = receive_all(aws.sqs, stack["jobs_queue_url"], 1)
    return execution, message


def cause_of(aws: Clients, execution: str) -> str:
    output = json.loads(wait_for_execution(aws.sfn, execution)["output"])
    assert output[0]["error"] == ERROR_DEAD_LETTERED
    return str(output[0]["cause"])


def resolve(aws: Clients, stack: dict[str, str], text: str) -> Any:
    config = BridgeConfig(**stack)
    letters = peek_letters(aws.sqs, choose_sides(config, "jobs"), config.state_machine_arn)
    return resolver_over(aws.sfn, config.state_machine_arn, letters).resolve(text)


def test_a_quarantined_jobs_cause_names_the_id_the_worker_logged(
    aws: Clients, stack: dict[str, str]
) -> None:
    """The worker logs 'malformed job message <id>' with the jobs queue's id; its DLQ copy
    and then its archived copy each get a new id. The cause names the logged one."""
    execution, message = one_job(aws, stack, "quarantined")
    logged = message["MessageId"]
    quarantine(aws.sqs, stack["jobs_dlq_url"], logged, message["Body"], "malformed job: x")
    aws.sqs.delete_message(QueueUrl=stack["jobs_queue_url"], ReceiptHandle=message["ReceiptHandle"])
    drain(aws, stack)

    cause = cause_of(aws, execution)
    job_id = parse_job(message["Body"]).job_id

    assert f"message {logged} is kept in callback-bridge-jobs-dead-letters" in cause
    assert f"callback-bridge dlq show {job_id}" in cause
    by_logged, by_job = resolve(aws, stack, logged), resolve(aws, stack, job_id)
    (archived,) = by_logged.letters
    assert archived.message_id != logged  # the archived copy has an id of its own
    assert by_logged.kind == "source-message" and by_job.letters == (archived,)
    assert resolve(aws, stack, archived.message_id).letters == (archived,)
    assert resolve(aws, stack, "quarantined").letters == (archived,)
    assert resolve(aws, stack, execution).letters == (archived,)


def test_a_job_dead_lettered_by_receives_is_found_by_every_id_its_cause_names(
    aws: Clients, stack: dict[str, str]
) -> None:
    execution, message = one_job(aws, stack, "receives")
    url = stack["jobs_queue_url"]
    receipt = message["ReceiptHandle"]
    aws.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
    for _ in range(10):  # received, never deleted, until the redrive policy moves it
        answer = aws.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=0)
        if not answer.get("Messages"):
            break
    drain(aws, stack)

    cause = cause_of(aws, execution)
    named = re.search(r"message (\S+) is kept in", cause)
    lookup = re.search(r"dlq show (\S+)", cause)

    assert named and lookup, cause
    assert lookup[1] == "receives/RunJob/0/0"
    assert resolve(aws, stack, named[1]).letters == resolve(aws, stack, lookup[1]).letters
    assert len(resolve(aws, stack, lookup[1]).letters) == 1


def test_two_copies_of_one_dead_letter_are_listed_as_candidates(
    aws: Clients, stack: dict[str, str]
) -> None:
    """A crash between archiving and acknowledging leaves two copies of one letter: its job id
    then names both, and picking one needs its message id."""
    execution, message = one_job(aws, stack, "twice")
    for _ in range(2):
        aws.sqs.send_message(QueueUrl=stack["jobs_archive_url"], MessageBody=message["Body"])
    job = resolve(aws, stack, "twice/RunJob/0/0")
    assert len(job.letters) == 2
    with pytest.raises(AmbiguousId) as raised:
        job.one_letter()
    for letter in job.letters:
        assert letter.message_id in str(raised.value)
    assert resolve(aws, stack, execution).kind == "execution"
