"""One record of a dead-letter queue, read leniently: a dead letter is often a message that
breaks the contract, so nothing here raises on what the message holds.

What the dead-letter handler (:mod:`bridge.dead_letter`) needs from a record: its token and job
id if readable, its receive count, the queue it was dead-lettered from, and its message
attributes in the shape SendMessage takes (to copy them to the archive).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.contract import read_text, read_token
from bridge.quarantine import MAX_REASON_CHARS, REASON_ATTRIBUTE, SOURCE_ATTRIBUTE

DLQ_SUFFIX = "-dlq"


def queue_name(arn_or_url: str) -> str:
    """The queue name at the end of a queue ARN (``...:name``) or URL (``.../name``)."""
    return arn_or_url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def send_form(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Lambda's record attributes (``stringValue``/``binaryValue``, base64 text on AWS) in the
    shape SendMessage takes."""
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        data_type = value.get("dataType") or value.get("DataType")
        text = value.get("stringValue") or value.get("StringValue")
        binary = value.get("binaryValue") or value.get("BinaryValue")
        if not data_type:
            continue
        if data_type.startswith("Binary") and binary is not None:
            raw = base64.b64decode(binary) if isinstance(binary, str) else bytes(binary)
            converted[name] = {"DataType": data_type, "BinaryValue": raw}
        elif text:
            converted[name] = {"DataType": data_type, "StringValue": text}
    return converted


def _field(body: str, name: str) -> str | None:
    """A top-level string field of a message that may break the contract (over-deep, duplicate
    keys, NaN: the contract's lenient reader), or ``None``."""
    value = read_text(body, name)
    return value[:MAX_REASON_CHARS] if value else None


@dataclass(frozen=True)
class DeadLetter:
    """One DLQ record, read leniently: a dead letter is often one that breaks the contract."""

    message_id: str
    body: str
    attributes: dict[str, Any]
    receive_count: int
    dlq_arn: str
    #: Where the message was dead-lettered from (``DeadLetterQueueSourceArn``), else the queue
    #: the bridge's naming rule gives (the DLQ's name without ``-dlq``).
    source_queue: str
    source_arn: str | None
    token: str | None
    job_id: str | None
    execution_arn: str | None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DeadLetter:
        system = record.get("attributes") or {}
        body = str(record.get("body") or "")
        dlq_arn = str(record.get("eventSourceARN") or "")
        source_arn = system.get("DeadLetterQueueSourceArn") or None
        try:
            receive_count = int(system.get("ApproximateReceiveCount", 0))
        except (TypeError, ValueError):
            receive_count = 0
        return cls(
            message_id=str(record.get("messageId") or ""),
            body=body,
            attributes=send_form(record.get("messageAttributes") or {}),
            receive_count=receive_count,
            dlq_arn=dlq_arn,
            source_queue=queue_name(source_arn) if source_arn else _conventional_source(dlq_arn),
            source_arn=source_arn,
            token=read_token(body),
            job_id=_field(body, "job_id"),
            execution_arn=_field(body, "execution_arn"),
        )

    @property
    def source_message_id(self) -> str:
        """The id first logged for this message: the quarantining code's
        (``bridge-source-message-id``, the id the worker or completion handler logged), else
        this record's own. The archived copy carries it, so it finds the archived letter."""
        value = self.attributes.get(SOURCE_ATTRIBUTE, {}).get("StringValue")
        return str(value) if value else self.message_id

    def recorded_reason(self) -> str | None:
        """The reason the worker or completion handler gave when it quarantined the message."""
        value = self.attributes.get(REASON_ATTRIBUTE, {}).get("StringValue")
        return str(value) if value else None


def _conventional_source(dlq_arn: str) -> str:
    name = queue_name(dlq_arn)
    return name.removesuffix(DLQ_SUFFIX) if name.endswith(DLQ_SUFFIX) else "unknown source queue"
