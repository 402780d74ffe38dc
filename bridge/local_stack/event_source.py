"""A local SQS event source mapping: what Lambda does for the completion function on AWS.

moto cannot run Lambda code without Docker, so the embedded stack polls the results queue itself
and calls the real completion handler with real SQS event payloads. It keeps the rules of AWS's
mapping that the bridge depends on, so a test on the embedded stack sees what production sees:

* **batch size and batching window**: records are gathered until ``batch_size`` is reached or
  ``maximum_batching_window_s`` has passed since the first one arrived (with a window of 0, one
  receive of up to 10 records is one batch), or the payload nears Lambda's 6 MB limit; within
  the window the poller long-polls, as AWS's do, so a batch costs about one receive per second
  of window, not one every few milliseconds. The defaults (:class:`EventSourceSettings`) are
  Terraform's, chosen by measurement (see ``maximum_batching_window_in_seconds`` in
  ``infra/modules/completion/variables.tf``); a test holds the two equal;
* **maximum concurrency**: up to ``maximum_concurrency`` invocations run at once; while all are
  busy nothing more is received, so the rest of the backlog stays visible in the queue;
* **function timeout**: the handler's context reports the time left of ``function_timeout_s``;
  an invocation that overruns it (or raises) has failed as a whole: nothing is deleted and every
  record becomes visible again after the queue's visibility timeout;
* **partial batch responses** (``ReportBatchItemFailures``): the records the response does not
  name are deleted. A response naming an ``itemIdentifier`` that is not in the batch, or one
  that is empty, missing, or not a string, or a response that is not a JSON object, fails the
  *whole* batch: nothing is deleted.

Failed records stay in the queue and, after ``maxReceiveCount`` receives, move to the results
DLQ through the queue's own redrive policy: the same path as on AWS. Unlike Lambda, a timed-out
handler cannot be killed here: its thread runs on in the background, but its records are not
deleted.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
#: Called once per record after the invocation: (record, acknowledged).
Observer = Callable[[dict[str, Any], bool], None]

#: ReceiveMessage and DeleteMessageBatch take at most 10 entries.
SQS_BATCH = 10
#: Lambda's synchronous invocation payload limit; the mapping stops gathering before it.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: Room kept for one more receive of 10 messages of 256 KiB.
_RECEIVE_HEADROOM_BYTES = SQS_BATCH * 262_144


@dataclass(frozen=True)
class EventSourceSettings:
    """The mapping's knobs, with the defaults of ``infra/modules/completion/variables.tf``
    (``batch_size``, ``maximum_batching_window_in_seconds``, ``timeout``,
    ``maximum_concurrency``). Fractions of seconds are accepted so tests stay fast."""

    batch_size: int = 10
    maximum_batching_window_s: float = 0.0
    function_timeout_s: float = 10.0
    #: AWS's minimum is 2; 1 is allowed here for tests that need one invocation at a time.
    maximum_concurrency: int = 5

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError(f"batch_size must be between 1 and 10000, got {self.batch_size}")
        if not 0 <= self.maximum_batching_window_s <= 300:
            raise ValueError(
                "maximum_batching_window_s must be between 0 and 300, "
                f"got {self.maximum_batching_window_s}"
            )
        if self.batch_size > SQS_BATCH and self.maximum_batching_window_s < 1:
            raise ValueError(
                f"batch_size {self.batch_size} > 10 needs maximum_batching_window_s >= 1 "
                "(as on AWS)"
            )
        if not 0 < self.function_timeout_s <= 900:
            raise ValueError(
                f"function_timeout_s must be in (0, 900], got {self.function_timeout_s}"
            )
        if not 1 <= self.maximum_concurrency <= 1000:
            raise ValueError(
                f"maximum_concurrency must be between 1 and 1000, got {self.maximum_concurrency}"
            )


@dataclass
class LocalLambdaContext:
    """The attributes of Lambda's context object that the handler and powertools read.

    ``get_remaining_time_in_millis`` counts down from ``timeout_s`` since ``started_at``, as
    Lambda's does from the function timeout, so a deadline-aware handler behaves as on AWS."""

    function_name: str = "callback-bridge-completion"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:callback-bridge-completion"
    )
    timeout_s: float = 60.0
    started_at: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started_at
        return max(0, int((self.timeout_s - elapsed) * 1000))


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


def failed_items(response: Any, records: list[dict[str, Any]]) -> set[str] | None:
    """The message ids a partial batch response asks to retry, or ``None`` when the response
    fails the whole batch (AWS's rules: see the module docstring)."""
    if response is None:
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    in_batch = {r["messageId"] for r in records}
    named: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in in_batch:
            return None
        named.add(identifier)
    return named


class LocalEventSourceMapping:
    """Polls ``queue_url`` in a thread and invokes ``handler`` as Lambda's mapping would.

    ``batch_size``, when given, overrides ``settings.batch_size`` (the constructor's older
    signature)."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        region: str,
        batch_size: int | None = None,
        observer: Observer | None = None,
        *,
        settings: EventSourceSettings | None = None,
        poll_wait_s: int = 1,
    ) -> None:
        settings = settings or EventSourceSettings()
        if batch_size is not None:
            settings = replace(settings, batch_size=batch_size)
        self.settings = settings
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.region = region
        self.observer = observer
        #: Long poll of an idle poller: short, so ``stop`` is prompt.
        self.poll_wait_s = poll_wait_s
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn", "VisibilityTimeout"]
        )["Attributes"]
        self.queue_arn = attributes["QueueArn"]
        self._warn_on_short_visibility(int(attributes.get("VisibilityTimeout", 30)))
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(settings.maximum_concurrency)
        self._lock = threading.Lock()
        self._running: set[threading.Thread] = set()
        self._thread = threading.Thread(target=self._run, name="local-esm", daemon=True)

    def _warn_on_short_visibility(self, visibility_s: int) -> None:
        needed = self.settings.function_timeout_s + self.settings.maximum_batching_window_s
        if visibility_s < needed:
            log.warning(
                "results queue visibility timeout %d s is shorter than the function timeout "
                "plus batching window (%.0f s): a record can be redelivered while its "
                "invocation still runs (AWS advises 6 x timeout + window)",
                visibility_s,
                needed,
            )

    def start(self) -> LocalEventSourceMapping:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling; wait for running invocations up to the function timeout."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * self.poll_wait_s + 5)
        deadline = time.monotonic() + self.settings.function_timeout_s + 1
        with self._lock:
            running = list(self._running)
        for thread in running:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    @property
    def in_flight(self) -> int:
        """Invocations running now (for tests and status)."""
        with self._lock:
            return len(self._running)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.1):
                continue  # every invocation slot is busy: leave the backlog in the queue
            try:
                records = self.gather()
            except Exception:  # a poller must survive anything; SQS keeps the messages
                self._slots.release()
                log.exception("local event source mapping: poll failed")
                self._stop.wait(1)
                continue
            if not records:
                self._slots.release()
                continue
            thread = threading.Thread(
                target=self._invoke_in_slot, args=(records,), name="local-lambda", daemon=True
            )
            with self._lock:
                self._running.add(thread)
            thread.start()

    def _invoke_in_slot(self, records: list[dict[str, Any]]) -> None:
        try:
            self.invoke(records)
        except Exception:
            log.exception("local event source mapping: invocation failed")
        finally:
            with self._lock:
                self._running.discard(threading.current_thread())
            self._slots.release()

    def _receive(self, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return [to_event_record(m, self.queue_arn, self.region) for m in messages]

    def gather(self, wait_seconds: int | None = None) -> list[dict[str, Any]]:
        """One batch: up to ``batch_size`` records, gathered for at most the batching window
        from the first record's arrival (empty when nothing arrives within one long poll)."""
        size = self.settings.batch_size
        wait = self.poll_wait_s if wait_seconds is None else wait_seconds
        records = self._receive(min(SQS_BATCH, size), wait)
        if not records:
            return []
        window_end = time.monotonic() + self.settings.maximum_batching_window_s
        payload = sum(len(r["body"]) for r in records)
        while len(records) < size and payload < MAX_PAYLOAD_BYTES - _RECEIVE_HEADROOM_BYTES:
            remaining = window_end - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                break
            # Long polls last whole seconds: under a second left, wait it out, then look once
            # more (short polls every few milliseconds would gather the same records at the
            # cost of dozens of receives per batch, which AWS's pollers do not make).
            last = remaining < 1
            if last and self._stop.wait(remaining):
                break
            poll = 0 if last else min(self.poll_wait_s, int(remaining))  # ``stop`` stays prompt
            more = self._receive(min(SQS_BATCH, size - len(records)), poll)
            records.extend(more)
            payload += sum(len(r["body"]) for r in more)
            if last:
                break
        return records

    def invoke(self, records: list[dict[str, Any]]) -> set[str]:
        """Invoke the handler on ``records`` within the function timeout, delete what it
        processed, tell the observer; returns the ids of the deleted records."""
        deleted = self._delete(records, self._processed(records))
        if self.observer:
            for record in records:
                self.observer(record, record["messageId"] in deleted)
        return deleted

    def _processed(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        timeout_s = self.settings.function_timeout_s
        context = LocalLambdaContext(timeout_s=timeout_s)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["response"] = self.handler({"Records": records}, context)
            except BaseException as exc:  # whatever the handler does, the invocation failed
                outcome["error"] = exc

        thread = threading.Thread(target=run, name="local-lambda-handler", daemon=True)
        thread.start()
        thread.join(timeout=timeout_s)
        if thread.is_alive():
            log.error(
                "completion handler timed out after %.1f s; the whole batch of %d returns to "
                "the queue after its visibility timeout",
                timeout_s,
                len(records),
            )
            return []
        if "error" in outcome:
            log.error(
                "completion handler raised %r; the whole batch of %d will be retried",
                outcome["error"],
                len(records),
            )
            return []
        failed = failed_items(outcome.get("response"), records)
        if failed is None:
            log.error(
                "completion handler returned an invalid partial batch response (an "
                "itemIdentifier not in the batch, empty or not a string); the whole batch "
                "of %d will be retried",
                len(records),
            )
            return []
        return [r for r in records if r["messageId"] not in failed]

    def _delete(self, records: list[dict[str, Any]], done: list[dict[str, Any]]) -> set[str]:
        deleted: set[str] = set()
        for start in range(0, len(done), SQS_BATCH):
            chunk = done[start : start + SQS_BATCH]
            response = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)
                ],
            )
            for entry in response.get("Failed", []):
                log.warning(
                    "could not delete processed record %s: %s (it will be delivered again)",
                    chunk[int(entry["Id"])]["messageId"],
                    entry.get("Message", entry.get("Code")),
                )
            deleted.update(chunk[int(e["Id"])]["messageId"] for e in response.get("Successful", []))
        return deleted
