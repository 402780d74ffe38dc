"""A local SQS event source mapping: what Lambda does for the completion function on AWS.

moto cannot run Lambda code without Docker, so the embedded stack polls the results queue itself
and calls the real completion handler with real SQS event payloads, then deletes exactly the
records the handler did not report in ``batchItemFailures``. Failed records stay in the queue,
become visible again after the visibility timeout and, after ``maxReceiveCount`` receives, move
to the results DLQ through the queue's own redrive policy: the same path as on AWS.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
#: Called once per record after the invocation: (record, acknowledged).
Observer = Callable[[dict[str, Any], bool], None]


@dataclass
class LocalLambdaContext:
    """The attributes of Lambda's context object that powertools reads."""

    function_name: str = "callback-bridge-completion"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:callback-bridge-completion"
    )

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        for name, value in attributes.items()
    }


def to_event_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ``Records`` entry in the shape Lambda delivers SQS messages."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": _message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class LocalEventSourceMapping:
    """Polls ``queue_url`` in a thread and invokes ``handler`` with batches of up to 10."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        region: str,
        batch_size: int = 10,
        observer: Observer | None = None,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.region = region
        self.batch_size = batch_size
        self.observer = observer
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-esm", daemon=True)

    def start(self) -> LocalEventSourceMapping:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception:  # a poller must survive anything; SQS keeps the messages
                log.exception("local event source mapping: poll failed")
                self._stop.wait(1)

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive one batch and invoke the handler; returns the number of records."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        records = [to_event_record(m, self.queue_arn, self.region) for m in messages]
        try:
            response = self.handler({"Records": records}, LocalLambdaContext())
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            log.exception("completion handler raised; the whole batch will be retried")
            failed = {r["messageId"] for r in records}
        done = [r for r in records if r["messageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)
                ],
            )
        if self.observer:
            for record in records:
                self.observer(record, record["messageId"] not in failed)
        return len(records)
