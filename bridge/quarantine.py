"""Move a message that can never be processed to a dead-letter queue, with the reason.

Used by the consumer (malformed jobs) and the completion handler (malformed results). The
message is copied to the DLQ *before* the caller deletes the original, so a crash between the
two leaves a duplicate, never a loss. The original body is kept byte for byte; the reason and
origin travel as message attributes, which ``callback-bridge`` operators see in the DLQ.

Attributes count toward a message's size: a body near the queue's limit leaves no room for
them. The copy then drops the sender's attributes (largest first, named in the reason), then
shortens the reason, and as a last resort goes without attributes at all, rather than failing:
a copy SQS refuses would leave the message looping on its queue with no reason anywhere.
"""

from __future__ import annotations

from typing import Any

from bridge.limits import QUEUE_MESSAGE_BYTES, sqs_message_bytes

REASON_ATTRIBUTE = "bridge-dead-letter-reason"
SOURCE_ATTRIBUTE = "bridge-source-message-id"
MAX_REASON_CHARS = 1024
#: SQS allows 10 message attributes; two are ours.
MAX_KEPT_ATTRIBUTES = 8


def string_attribute(value: str) -> dict[str, str]:
    """A String message attribute in the shape SendMessage takes."""
    return {"DataType": "String", "StringValue": value}


def quarantine(
    sqs: Any,
    dlq_url: str,
    message_id: str,
    body: str,
    reason: str,
    attributes: dict[str, Any] | None = None,
    max_bytes: int = QUEUE_MESSAGE_BYTES,
) -> None:
    """Copy ``body`` to ``dlq_url`` with ``reason``; raises if SQS refuses (caller keeps it)."""
    body = body or "<empty>"
    sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody=body,
        MessageAttributes=fitted_attributes(body, message_id, reason, attributes, max_bytes),
    )


def fitted_attributes(
    body: str,
    message_id: str,
    reason: str,
    attributes: dict[str, Any] | None = None,
    max_bytes: int = QUEUE_MESSAGE_BYTES,
) -> dict[str, Any]:
    """The sender's attributes (up to :data:`MAX_KEPT_ATTRIBUTES`), the reason and the source
    message id, made to fit ``max_bytes`` together with ``body`` (see the module's doc)."""
    kept = dict(list((attributes or {}).items())[:MAX_KEPT_ATTRIBUTES])
    reason = reason[:MAX_REASON_CHARS] or "unspecified"
    dropped: list[str] = []

    def assemble(reason_text: str) -> dict[str, Any]:
        note = f" [attributes dropped to fit: {', '.join(dropped)}]" if dropped else ""
        return {
            **kept,
            REASON_ATTRIBUTE: string_attribute((reason_text + note)[: MAX_REASON_CHARS + 200]),
            SOURCE_ATTRIBUTE: string_attribute(message_id),
        }

    while kept and sqs_message_bytes(body, assemble(reason)) > max_bytes:
        largest = max(kept, key=lambda name: sqs_message_bytes("", {name: kept[name]}))
        dropped.append(largest)
        del kept[largest]
    fitted = assemble(reason)
    excess = sqs_message_bytes(body, fitted) - max_bytes
    if excess <= 0:
        return fitted
    room = len(reason.encode()) - excess
    if room > 0:
        shorter = reason.encode()[:room].decode("utf-8", errors="ignore")
        fitted = assemble(shorter)
        if shorter and sqs_message_bytes(body, fitted) <= max_bytes:
            return fitted
    return {}
