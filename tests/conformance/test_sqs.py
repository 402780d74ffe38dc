"""SQS behaviours the bridge relies on (consumers, DLQs, the local event source)."""

from __future__ import annotations

import pytest

from tests.support.conformance import Target, receive_one
from tests.support.polling import eventually

pytestmark = [pytest.mark.conformance, pytest.mark.slow]


def test_message_received_max_receive_count_times_moves_to_the_dlq(target: Target) -> None:
    source, dlq = target.queue_with_dlq("redrive", max_receive_count=2, visibility_timeout_s=1)
    target.sqs.send_message(QueueUrl=source, MessageBody="poison")
    for _ in range(2):  # received twice, never deleted
        receive_one(target, source)

    def moved() -> list:
        # The move happens on the receive after the count is exceeded (as on AWS).
        target.sqs.receive_message(QueueUrl=source, WaitTimeSeconds=1)
        return target.sqs.receive_message(QueueUrl=dlq).get("Messages", [])

    dead = eventually(moved, timeout_s=20)
    assert dead and dead[0]["Body"] == "poison"


def test_change_visibility_to_zero_makes_a_message_visible_at_once(target: Target) -> None:
    url = target.queue("visible", VisibilityTimeout="300")
    target.sqs.send_message(QueueUrl=url, MessageBody="job")
    first = receive_one(target, url)
    assert target.sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    target.sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    again = target.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    assert [m["Body"] for m in again] == ["job"]


def test_message_attributes_survive_the_move_to_the_dlq(target: Target) -> None:
    source, dlq = target.queue_with_dlq("attrs", max_receive_count=1, visibility_timeout_s=1)
    target.sqs.send_message(
        QueueUrl=source,
        MessageBody="b",
        MessageAttributes={
            "trace": {"DataType": "String", "StringValue": "t-42"},
            "attempt": {"DataType": "Number", "StringValue": "3"},
        },
    )
    receive_one(target, source)

    def moved() -> list:
        target.sqs.receive_message(QueueUrl=source, WaitTimeSeconds=1)
        return target.sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"]).get(
            "Messages", []
        )

    dead = eventually(moved, timeout_s=20)
    assert dead
    attributes = dead[0]["MessageAttributes"]
    assert attributes["trace"] == {"DataType": "String", "StringValue": "t-42"}
    assert attributes["attempt"]["StringValue"] == "3"
