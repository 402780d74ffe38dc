"""What SQS refuses in a message: characters outside its allowed set, and a body plus message
attributes over the queue's ``MaximumMessageSize``. moto 5.2.5 accepts both.

AWS behaviour and sources:

* SendMessage API reference (``MessageBody``): "A message can include only XML, JSON, and
  unformatted text. The following Unicode characters are allowed: #x9 | #xA | #xD | #x20 to
  #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"; "If a message contains characters outside
  the allowed set, Amazon SQS rejects the message and returns an InvalidMessageContents error"
  (HTTP 400, a client fault in the SQS model). AWS's message, as clients report it
  (asim/nitro-plugins#437, Particular/NServiceBus.AmazonSQS#2630, psd401/aistudio#1525):
  "Invalid binary character '#x7' was found in the message body, the set of allowed characters
  is #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]."
* MessageAttributeValue API reference: a String value "has the same restrictions on the content
  as the message body"; AWS answers ``InvalidParameterValue`` for one (LocalStack's AWS-validated
  ``test_invalid_string_attributes_cause_invalid_parameter_value_error``; the wording is not
  recorded, ours is modelled on the body's).
* "Amazon SQS message quotas" (developer guide): message attributes count toward the message
  size; a message is measured in bytes. AWS's answer, recorded in LocalStack's AWS-validated
  snapshots (``tests/aws/services/sqs/test_sqs.snapshot.json``): SendMessage
  ``InvalidParameterValue`` "One or more parameters are invalid. Reason: Message must be shorter
  than 1024 bytes." with name + data type + value counted (``test_send_oversized_message``,
  ``test_send_message_with_updated_maximum_message_size``); in SendMessageBatch only the
  oversized entry fails, in ``Failed`` with ``InvalidParameterValue``, "One or more parameters
  cannot be validated. Reason: Message must be shorter than 1024 bytes.", ``SenderFault`` true
  (``test_send_batch_message_size``); an entry with a forbidden character fails alone with
  ``InvalidMessageContents`` (``test_batch_send_with_invalid_char_should_succeed``); the whole
  batch's size, attributes included, over 1,048,576 bytes is ``BatchRequestTooLong``
  (``test_send_message_batch_with_oversized_contents``).

moto 5.2.5 checks no character; it measures the body alone, in characters; it refuses a whole
SendMessageBatch for one oversized body and counts only bodies, in characters, toward the batch
limit.

Cost of the checks per message (the character search is one compiled regex search, about 5 ns
a character; the size is O(1) for an ASCII body, ``str.isascii`` reads a flag), best of 5 on 2
shared CPUs, Python 3.11.7, 2026-12-07::

    .venv/bin/python -m timeit -s "from bridge.local_stack.compat import sqs_message_contents \\
        as m; b = 'x' * 1024" "m.check_contents(b, None); m.message_bytes(b, None)"

1 KB body: 5.4 µs; 256 KB body (``'x' * 262144``): 1.4 ms; 256 KB of "é": 0.8 to 1.0 ms. A
SendMessageBatch(10) of tiny bodies through the embedded server costs about 4.3 ms
(``benchmarks.sqs_depth``): ten 1 KB bodies add about 55 µs, 1 %.
"""

from __future__ import annotations

import re
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

INVALID_CHARACTERS = "sqs-invalid-characters"
SIZE = "sqs-attributes-count-toward-size"

#: One character outside SQS's allowed set (lone surrogates, U+FFFE/U+FFFF, C0 controls but
#: tab, LF and CR). One compiled search per body: no per-character Python loop.
FORBIDDEN = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
ALLOWED_SET = "#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]"
BATCH_ENTRY_ID = re.compile(r"^[\w-]{1,80}$")  # moto's own check, kept as it is


def forbidden_character(text: str) -> str | None:
    """The first character of ``text`` SQS refuses, or ``None``."""
    found = FORBIDDEN.search(text)
    return found.group() if found else None


def _code_point(character: str) -> str:
    return f"#x{ord(character):X}"


def _utf8_bytes(value: Any) -> int:
    if isinstance(value, bytes | bytearray):
        return len(value)
    text = str(value)
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def message_bytes(body: str, attributes: dict[str, Any] | None) -> int:
    """A message's size as SQS counts it: the body's UTF-8 bytes plus, per message attribute,
    its name, data type and value (a binary value's decoded bytes)."""
    size = _utf8_bytes(body)
    for name, value in (attributes or {}).items():
        size += _utf8_bytes(name) + _utf8_bytes(value.get("DataType") or "")
        for field in ("StringValue", "BinaryValue"):
            if value.get(field) is not None:
                size += _utf8_bytes(value[field])
    return size


def _error(code: str, message: str) -> Exception:
    from moto.sqs.exceptions import SQSException

    return SQSException(code, message)


# --- sqs-invalid-characters ------------------------------------------------------------------


def check_contents(body: str, attributes: dict[str, Any] | None) -> None:
    """Raise AWS's error for a body, or a String/Number attribute value, SQS refuses."""
    if (bad := forbidden_character(body)) is not None:
        raise _error(
            "InvalidMessageContents",
            f"Invalid binary character '{_code_point(bad)}' was found in the message body, "
            f"the set of allowed characters is {ALLOWED_SET}.",
        )
    for name, value in (attributes or {}).items():
        text = value.get("StringValue")
        if isinstance(text, str) and (bad := forbidden_character(text)) is not None:
            raise _error(
                "InvalidParameterValue",
                f"Invalid binary character '{_code_point(bad)}' was found in the value of "
                f"message attribute '{name}', the set of allowed characters is {ALLOWED_SET}.",
            )


def invalid_characters() -> list[Replacement]:
    """AWS (SendMessage API reference, ``MessageBody``; MessageAttributeValue API reference):
    a body with a character outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
    #x10000-#x10FFFF is refused with ``InvalidMessageContents``, a String attribute value with
    one with ``InvalidParameterValue``. moto 5.2.5 stores both (and answers a lone surrogate
    with a 500, from hashing the body). This checks the body and the attribute values in
    ``SQSBackend.send_message``, which SendMessage and each SendMessageBatch entry go through,
    before moto stores anything. Upstream: the same check in ``_validate_message``, given the
    attributes."""
    from moto.sqs.models import SQSBackend

    send_message = expect(SQSBackend, "send_message")

    def checked_send_message(
        self: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any
    ) -> Any:
        attributes = kwargs.get("message_attributes", args[0] if args else None)
        check_contents(message_body, attributes)
        return send_message(self, queue_name, message_body, *args, **kwargs)

    return [Replacement(SQSBackend, "send_message", checked_send_message)]


# --- sqs-attributes-count-toward-size --------------------------------------------------------


def _too_long(maximum: int, batch: bool) -> str:
    verb = "cannot be validated" if batch else "are invalid"
    return f"One or more parameters {verb}. Reason: Message must be shorter than {maximum} bytes."


def attributes_count_toward_size() -> list[Replacement]:
    """AWS (developer guide, "Amazon SQS message quotas"; SendMessage API reference): a
    message's size is its body's UTF-8 bytes plus its attributes' names, data types and values,
    held to the queue's ``MaximumMessageSize`` (SendMessage: ``InvalidParameterValue`` for the
    request); in SendMessageBatch an entry over it, or refused for its contents, fails alone in
    ``Failed``, and the batch total, attributes included, is held to 1,048,576 bytes. moto 5.2.5
    counts the body alone, in characters, and refuses a whole batch for one oversized body.
    Replaces ``SQSResponse.send_message`` (the check, then moto's) and
    ``SQSBackend.send_message_batch`` (moto's steps, sizes measured with
    :func:`message_bytes`, entries failed one by one). Upstream: measure with
    :func:`message_bytes` in ``_validate_message`` and collect per-entry errors in
    ``send_message_batch``."""
    from moto.sqs import models, responses
    from moto.sqs.exceptions import (
        BatchEntryIdsNotDistinct,
        BatchRequestTooLong,
        InvalidBatchEntryId,
        SQSException,
        TooManyEntriesInBatchRequest,
    )

    respond_send_message = expect(responses.SQSResponse, "send_message")
    expect(models.SQSBackend, "send_message_batch")
    expect(models.SQSBackend, "_validate_message")
    expect(models.SQSBackend, "_get_first_duplicate_id")
    batch_limit = expect(models, "MAXIMUM_MESSAGE_LENGTH")

    def send_message(self: Any) -> Any:
        queue = self.sqs_backend.get_queue(self._get_queue_name())
        body = self._get_param("MessageBody")
        size = message_bytes(body or "", self._get_param("MessageAttributes", {}))
        if size > queue.maximum_message_size:
            raise _error("InvalidParameterValue", _too_long(queue.maximum_message_size, False))
        return respond_send_message(self)

    def send_message_batch(
        self: Any, queue_name: str, entries: dict[str, dict[str, Any]]
    ) -> tuple[list[Any], list[dict[str, Any]]]:
        queue = self.get_queue(queue_name)
        if any(not BATCH_ENTRY_ID.match(entry["Id"]) for entry in entries.values()):
            raise InvalidBatchEntryId()
        sizes = {
            key: message_bytes(entry["MessageBody"], entry.get("MessageAttributes"))
            for key, entry in entries.items()
        }
        if sum(sizes.values()) > batch_limit:
            raise BatchRequestTooLong(sum(sizes.values()))
        duplicate_id = self._get_first_duplicate_id([entry["Id"] for entry in entries.values()])
        if duplicate_id:
            raise BatchEntryIdsNotDistinct(duplicate_id)
        if len(entries) > 10:
            raise TooManyEntriesInBatchRequest(len(entries))

        failed: list[dict[str, Any]] = []

        def fail(entry: dict[str, Any], code: str, message: str) -> None:
            failed.append(
                {"Id": entry["Id"], "SenderFault": True, "Code": code, "Message": message}
            )

        sendable = []
        for key, entry in entries.items():
            if sizes[key] > queue.maximum_message_size:
                fail(entry, "InvalidParameterValue", _too_long(queue.maximum_message_size, True))
                continue
            # moto's request-wide checks (FIFO ids, DelaySeconds on FIFO), before any send
            self._validate_message(
                queue,
                entry["MessageBody"],
                int(entry.get("DelaySeconds") or 0),
                entry.get("MessageDeduplicationId"),
                entry.get("MessageGroupId"),
            )
            sendable.append(entry)
        messages = []
        for entry in sendable:
            try:
                message = self.send_message(
                    queue_name,
                    entry["MessageBody"],
                    message_attributes=entry["MessageAttributes"],
                    delay_seconds=entry["DelaySeconds"],
                    group_id=entry.get("MessageGroupId"),
                    deduplication_id=entry.get("MessageDeduplicationId"),
                )
            except SQSException as err:  # contents or DelaySeconds: this entry only
                fail(entry, err.code, err.message)
                continue
            message.user_id = entry["Id"]
            messages.append(message)
        return messages, failed

    return [
        Replacement(responses.SQSResponse, "send_message", send_message),
        Replacement(models.SQSBackend, "send_message_batch", send_message_batch),
    ]


PATCHES: list[Patch] = [
    Patch(
        INVALID_CHARACTERS,
        "SendMessage(Batch) refuses characters outside #x9 | #xA | #xD | #x20-#xD7FF | "
        "#xE000-#xFFFD | #x10000-#x10FFFF (InvalidMessageContents; attribute values: "
        "InvalidParameterValue)",
        invalid_characters,
    ),
    Patch(
        SIZE,
        "message attributes count toward MaximumMessageSize, in UTF-8 bytes; a batch fails "
        "only its oversized or refused entries",
        attributes_count_toward_size,
    ),
]
