"""Move a message that can never be processed to a dead-letter queue, with the reason.

Used by the consumer (malformed jobs) and the completion handler (malformed results). The
message is copied to the DLQ *before* the caller deletes the original, so a crash between the
two leaves a duplicate, never a loss. The original body is kept byte for byte; the reason and
origin travel as message attributes, which ``callback-bridge`` operators see in the DLQ.
"""

from __future__ import annotations

from typing import Any

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
) -> None:
    """Copy ``body`` to ``dlq_url`` with ``reason``; raises if SQS refuses (caller keeps it)."""
    kept = dict(list((attributes or {}).items())[:MAX_KEPT_ATTRIBUTES])
    message_attributes = {
        **kept,
        REASON_ATTRIBUTE: string_attribute(reason[:MAX_REASON_CHARS] or "unspecified"),
        SOURCE_ATTRIBUTE: string_attribute(message_id),
    }
    sqs.send_message(
        QueueUrl=dlq_url, MessageBody=body or "<empty>", MessageAttributes=message_attributes
    )
