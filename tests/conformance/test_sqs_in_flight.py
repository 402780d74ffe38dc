"""ChangeMessageVisibility only for a message in flight (``compat/sqs_in_flight.py``): once a
message's visibility timeout has lapsed, its old receipt handle cannot hide it again."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.local_stack.compat.sqs_in_flight import CODE, NOT_IN_FLIGHT
from tests.support.conformance import Target

pytestmark = [pytest.mark.conformance, pytest.mark.slow]


def received(target: Target, url: str, count: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(messages) < count and time.monotonic() < deadline:
        messages += target.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
    assert len(messages) == count
    return messages


@pytest.mark.gap(NOT_IN_FLIGHT)
def test_a_lapsed_message_cannot_be_hidden_with_its_old_handle(target: Target) -> None:
    url = target.queue("lapsed", VisibilityTimeout="1")
    target.sqs.send_message(QueueUrl=url, MessageBody="job")
    (message,) = received(target, url, 1)
    time.sleep(1.5)  # visible again: no longer in flight
    with pytest.raises(ClientError) as refused:
        target.sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=30
        )
    assert refused.value.response["Error"]["Code"].endswith(CODE)
    assert [m["Body"] for m in received(target, url, 1)] == ["job"]  # still there for others


@pytest.mark.gap(NOT_IN_FLIGHT)
def test_in_a_batch_only_the_lapsed_entry_fails(target: Target) -> None:
    url = target.queue("batch", VisibilityTimeout="30")
    for body in ("lapsed", "held"):
        target.sqs.send_message(QueueUrl=url, MessageBody=body)
    by_body = {m["Body"]: m for m in received(target, url, 2)}
    lapsed, held = by_body["lapsed"], [by_body["held"]]
    target.sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=lapsed["ReceiptHandle"], VisibilityTimeout=1
    )
    time.sleep(1.5)  # "lapsed" is visible again, not received again
    response = target.sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "lapsed", "ReceiptHandle": lapsed["ReceiptHandle"], "VisibilityTimeout": 30},
            {"Id": "held", "ReceiptHandle": held[0]["ReceiptHandle"], "VisibilityTimeout": 30},
        ],
    )
    assert [s["Id"] for s in response["Successful"]] == ["held"]
    [failed] = response["Failed"]
    assert failed["Id"] == "lapsed" and failed["Code"].endswith(CODE) and failed["SenderFault"]


def test_a_message_in_flight_can_still_be_hidden_and_released(target: Target) -> None:
    url = target.queue("inflight", VisibilityTimeout="30")
    target.sqs.send_message(QueueUrl=url, MessageBody="job")
    (message,) = received(target, url, 1)
    handle = message["ReceiptHandle"]
    target.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=60)
    target.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    assert [m["Body"] for m in received(target, url, 1)] == ["job"]
