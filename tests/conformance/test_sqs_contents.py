"""What SQS refuses in a message: characters outside its allowed set, and a body plus message
attributes over the queue's ``MaximumMessageSize`` (``compat/sqs_message_contents.py``).

Clients here do not retry: stock moto answers a lone surrogate with a 500, and its canary
should fail at once rather than back off.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.local_stack.compat.sqs_message_contents import (
    INVALID_CHARACTERS,
    SIZE,
    forbidden_character,
    message_bytes,
)
from tests.support.aws import loopback_client
from tests.support.conformance import Target, receive_all

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

ATTRIBUTE = {"k": {"DataType": "String", "StringValue": "x"}}
ATTRIBUTE_BYTES = len("k") + len("String") + len("x")  # as AWS counts it
SMALL = "1024"  # the smallest MaximumMessageSize SQS accepts


def client(target: Target) -> Any:
    return target.sqs if target.is_aws else loopback_client("sqs", target.sqs.meta.endpoint_url)


def refusal(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return dict(info.value.response)


def bodies(target: Target, url: str, count: int) -> set[str]:
    return {message["Body"] for message in receive_all(target, url, count)}


# --- sqs-invalid-characters ------------------------------------------------------------------

FORBIDDEN = {
    "nul": "\x00",
    "backspace": "\x08",
    "vertical-tab": "\x0b",
    "unit-separator": "\x1f",
    "lone-surrogate": "\ud800",
    "fffe": "\ufffe",
    "ffff": "\uffff",
}


@pytest.mark.gap(INVALID_CHARACTERS)
@pytest.mark.parametrize("character", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_a_body_with_a_forbidden_character_is_refused(target: Target, character: str) -> None:
    url = target.queue("chars")
    response = refusal(
        client(target).send_message, QueueUrl=url, MessageBody=f'{{"out": "a{character}b"}}'
    )
    assert response["Error"]["Code"] == "InvalidMessageContents"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert f"'#x{ord(character):X}'" in response["Error"]["Message"] or target.is_aws


def test_every_allowed_character_class_is_accepted(target: Target) -> None:
    url = target.queue("allowed")
    body = "tab\t lf\n cr\r space ~ \x7f \u00e9 \ud7ff \ue000 \ufffd \U00010000 \U0010ffff 😀"
    target.sqs.send_message(QueueUrl=url, MessageBody=body)
    assert bodies(target, url, 1) == {body}


@pytest.mark.gap(INVALID_CHARACTERS)
def test_a_batch_refuses_only_the_entry_with_a_forbidden_character(target: Target) -> None:
    url = target.queue("batch-chars")
    entries = [{"Id": str(i), "MessageBody": str(i)} for i in range(9)]
    entries.append({"Id": "9", "MessageBody": "\x01"})
    response = client(target).send_message_batch(QueueUrl=url, Entries=entries)

    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in response["Failed"]] == [
        ("9", "InvalidMessageContents", True)
    ]
    assert len(response["Successful"]) == 9
    assert bodies(target, url, 9) == {str(i) for i in range(9)}


@pytest.mark.gap(INVALID_CHARACTERS)
def test_a_string_attribute_value_with_a_forbidden_character_is_refused(target: Target) -> None:
    url = target.queue("attr-chars")
    attributes = {"attr1": {"DataType": "String", "StringValue": "Invalid-\x08,\x0b"}}
    response = refusal(
        client(target).send_message, QueueUrl=url, MessageBody="ok", MessageAttributes=attributes
    )
    assert response["Error"]["Code"] == "InvalidParameterValue"


# --- sqs-attributes-count-toward-size --------------------------------------------------------


@pytest.mark.gap(SIZE)
def test_message_attributes_count_toward_the_maximum_message_size(target: Target) -> None:
    url = target.queue("attr-size", MaximumMessageSize=SMALL)
    fits = "a" * (int(SMALL) - ATTRIBUTE_BYTES)
    target.sqs.send_message(QueueUrl=url, MessageBody=fits, MessageAttributes=ATTRIBUTE)
    target.sqs.send_message(QueueUrl=url, MessageBody="a" * int(SMALL))  # the limit is inclusive

    response = refusal(
        client(target).send_message,
        QueueUrl=url,
        MessageBody=fits + "a",
        MessageAttributes=ATTRIBUTE,
    )
    assert response["Error"]["Code"] == "InvalidParameterValue"
    assert response["Error"]["Message"] == (
        "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes."
    )


@pytest.mark.gap(SIZE)
def test_the_maximum_message_size_is_counted_in_utf8_bytes(target: Target) -> None:
    url = target.queue("utf8-size", MaximumMessageSize=SMALL)
    body = "\u00e9" * 600  # 600 characters, 1,200 bytes
    response = refusal(client(target).send_message, QueueUrl=url, MessageBody=body)
    assert response["Error"]["Code"] == "InvalidParameterValue"


@pytest.mark.gap(SIZE)
def test_a_batch_refuses_only_the_oversized_entry(target: Target) -> None:
    url = target.queue("batch-size", MaximumMessageSize=SMALL)
    entries = [
        {"Id": "fits", "MessageBody": "a" * int(SMALL)},
        {"Id": "over", "MessageBody": "b" * (int(SMALL) + 1)},
        {"Id": "attr", "MessageBody": "c" * (int(SMALL) - 1), "MessageAttributes": ATTRIBUTE},
    ]
    response = client(target).send_message_batch(QueueUrl=url, Entries=entries)

    assert sorted(response["Failed"], key=lambda f: f["Id"]) == [
        {
            "Id": id_,
            "Code": "InvalidParameterValue",
            "SenderFault": True,
            "Message": "One or more parameters cannot be validated. "
            "Reason: Message must be shorter than 1024 bytes.",
        }
        for id_ in ("attr", "over")
    ]
    assert [s["Id"] for s in response["Successful"]] == ["fits"]
    assert bodies(target, url, 1) == {"a" * int(SMALL)}


@pytest.mark.gap(SIZE)
def test_message_attributes_count_toward_a_batchs_total_size(target: Target) -> None:
    url = target.queue("batch-total")
    limit = 1_048_576  # a SendMessageBatch request's bodies and attributes together
    entries = [
        {"Id": "1", "MessageBody": "a" * (limit - ATTRIBUTE_BYTES), "MessageAttributes": ATTRIBUTE},
        {"Id": "2", "MessageBody": "a"},
    ]
    response = refusal(client(target).send_message_batch, QueueUrl=url, Entries=entries)
    assert response["Error"]["Code"].endswith("BatchRequestTooLong")
    assert response["Error"]["Message"] == (
        f"Batch requests cannot be longer than {limit} bytes. You have sent {limit + 1} bytes."
    )


# --- the patch's helpers (not a conformance behaviour) ----------------------------------------


def test_forbidden_character_finds_each_class_and_passes_the_allowed_ones() -> None:
    for character in FORBIDDEN.values():
        assert forbidden_character(f"ok{character}ok") == character
    assert forbidden_character("\t\n\r \ud7ff\ue000\ufffd\U00010000\U0010ffff") is None
    assert forbidden_character("") is None


def test_message_bytes_counts_utf8_names_types_and_values() -> None:
    attributes = {
        "k\u00e9": {"DataType": "String", "StringValue": "\u00e9"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02"},
        "n": {"DataType": "Number", "StringValue": "12"},
    }
    assert message_bytes("\u00e9a", None) == 3
    assert message_bytes("", attributes) == (3 + 6 + 2) + (1 + 6 + 3) + (1 + 6 + 2)
