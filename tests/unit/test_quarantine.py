"""A quarantined copy always fits its queue: attributes give way to the body, never the reverse."""

from __future__ import annotations

from bridge.limits import QUEUE_MESSAGE_BYTES, sqs_message_bytes
from bridge.quarantine import REASON_ATTRIBUTE, SOURCE_ATTRIBUTE, fitted_attributes


def attribute(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def test_a_small_message_keeps_everything() -> None:
    fitted = fitted_attributes("{}", "m-1", "body: not JSON", {"trace": attribute("t-1")})
    assert fitted["trace"]["StringValue"] == "t-1"
    assert fitted[REASON_ATTRIBUTE]["StringValue"] == "body: not JSON"
    assert fitted[SOURCE_ATTRIBUTE]["StringValue"] == "m-1"


def test_a_body_near_the_limit_drops_the_largest_sender_attribute_and_says_so() -> None:
    extras = {"big": attribute("x" * 5000), "small": attribute("s")}
    body = "[" * (QUEUE_MESSAGE_BYTES - 3000)
    fitted = fitted_attributes(body, "m-1", "input: nested deeper than 63 levels", extras)
    assert "big" not in fitted and fitted["small"]["StringValue"] == "s"
    assert "attributes dropped to fit: big" in fitted[REASON_ATTRIBUTE]["StringValue"]
    assert sqs_message_bytes(body, fitted) <= QUEUE_MESSAGE_BYTES


def test_a_body_with_little_room_shortens_the_reason() -> None:
    reason = "r" * 1000
    body = "x" * (QUEUE_MESSAGE_BYTES - 200)
    fitted = fitted_attributes(body, "m-1", reason, {"trace": attribute("t")})
    assert 0 < len(fitted[REASON_ATTRIBUTE]["StringValue"]) < 200
    assert sqs_message_bytes(body, fitted) <= QUEUE_MESSAGE_BYTES


def test_a_body_at_the_limit_goes_without_attributes() -> None:
    body = "x" * QUEUE_MESSAGE_BYTES
    assert fitted_attributes(body, "m-1", "reason", {"trace": attribute("t")}) == {}


def test_attributes_are_counted_as_sqs_counts_them() -> None:
    assert sqs_message_bytes("é", {"ab": attribute("cd")}) == 2 + 2 + len("String") + 2
