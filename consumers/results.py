"""Send results and delete the jobs they answer, in batches, off the job threads.

A job is deleted from the jobs queue only after its result is on the results queue, so a crash
in between means the job runs again (at-least-once), never that its result is lost. Results that
finish close together go out in one SendMessageBatch and one DeleteMessageBatch.

Sizes: an output too large for a result message goes to S3 by claim check
(:meth:`ResultSender.prepare`, on the job's thread); every message is then fitted under the
queue's ``MaximumMessageSize`` (a cause too long is clipped) and batches are split so that no
SendMessageBatch carries more than :data:`MAX_BATCH_BYTES`. Should SQS still refuse a whole
request for one entry, the entries are sent one by one: one bad entry never makes the innocent
results next to it run again.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge.batching import SQS_MAX_BATCH
from bridge.claim_check import BUCKET_SETTING, ClaimCheck, failed
from bridge.contract import (
    ERROR_CLAIM_CHECK_FAILED,
    ERROR_OUTPUT_TOO_LARGE,
    MAX_MESSAGE_BYTES,
    Result,
    clip,
    encode,
)
from bridge.errors import RETRYABLE_ERRORS, error_code
from consumers.threads import CriticalThread, OnDeath

log = logging.getLogger(__name__)

#: After the first result arrives, wait up to this long for more to share its SendMessageBatch
#: (and the jobs' DeleteMessageBatch): at most a quarter of a second on work that takes minutes,
#: and a burst of short jobs (a Map's fan-out) sends one request per ten results, not per one.
LINGER_S = 0.25
#: Per-entry send failures are retried this many times before the job is left to reappear.
MAX_SEND_ATTEMPTS = 5
RETRY_BACKOFF_S = 0.2
#: The most a SendMessageBatch may carry in total (the sum of its message sizes). The SQS API
#: reference gives 262,144 bytes (newer pages 1 MiB, with 1 MiB messages): the lower value is
#: safe on every queue, and no result message is larger once claim checks apply.
MAX_BATCH_BYTES = 262_144
#: Whole-request errors a later attempt can fix; any other 4xx is the request's own fault.
TRANSIENT_REQUEST_ERRORS = RETRYABLE_ERRORS
#: Rounds of clipping a cause before giving up on fitting a result (each removes the excess).
_FIT_ROUNDS = 8


@dataclass
class Pending:
    result: Result
    message_id: str
    receipt_handle: str
    #: The message body, once fitted (:func:`fit_result`).
    body: str = ""


#: Called once per job when the sender is done with it: (message_id, delivered).
DoneCallback = Callable[[str, bool], None]


def body_bytes(body: str) -> int:
    """A message body's size as SQS counts it (UTF-8 bytes)."""
    return len(body.encode("utf-8"))


def split_by_size(
    sizes: Sequence[int], max_entries: int = SQS_MAX_BATCH, max_bytes: int = MAX_BATCH_BYTES
) -> list[list[int]]:
    """Group entry indices, in order, into batches of at most ``max_entries`` entries and
    ``max_bytes`` bytes in total. An entry larger than ``max_bytes`` by itself goes alone."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for index, size in enumerate(sizes):
        if current and (len(current) >= max_entries or total + size > max_bytes):
            batches.append(current)
            current, total = [], 0
        current.append(index)
        total += size
    if current:
        batches.append(current)
    return batches


def fit_result(result: Result, max_bytes: int = MAX_MESSAGE_BYTES) -> tuple[Result, str] | None:
    """``result`` and its body, made to fit ``max_bytes``: unchanged when it fits; a succeeded
    result too large becomes ``Bridge.OutputTooLarge`` (a claim check would have carried it);
    a cause too long is clipped, keeping head and tail. ``None`` when even that cannot fit (a
    queue limit smaller than a token)."""
    body = encode(result)
    if body_bytes(body) <= max_bytes:
        return result, body
    if result.outcome == "succeeded":
        result = failed(
            result,
            ERROR_OUTPUT_TOO_LARGE,
            f"the result message would be {body_bytes(body)} bytes; the results queue accepts "
            f"{max_bytes}; set {BUCKET_SETTING} to pass large outputs through S3",
        )
        body = encode(result)
    cause = result.cause or ""
    for _ in range(_FIT_ROUNDS):
        excess = body_bytes(body) - max_bytes
        if excess <= 0:
            return result, body
        if not cause:
            break
        cause = clip(cause, max(0, len(cause) - excess))
        result = result.model_copy(update={"cause": cause or None})
        body = encode(result)
    return (result, body) if body_bytes(body) <= max_bytes else None


class ResultSender:
    """Sends results on its own thread; :meth:`prepare` runs on the job's thread first."""

    def __init__(
        self,
        sqs: Any,
        results_queue_url: str,
        jobs_queue_url: str,
        on_done: DoneCallback,
        *,
        claim_check: ClaimCheck | None = None,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        on_death: OnDeath | None = None,
    ) -> None:
        """``on_death``: told if the sender's thread dies (:mod:`consumers.threads`); the
        results it held are then never sent (see :attr:`died`)."""
        self.sqs = sqs
        self.results_queue_url = results_queue_url
        self.jobs_queue_url = jobs_queue_url
        self.on_done = on_done
        #: Without a bucket it still refuses outputs too large for a message, naming the setting.
        self.claim_check = claim_check or ClaimCheck()
        self.max_message_bytes = self.claim_check.max_message_bytes
        self.max_batch_bytes = max_batch_bytes
        self._queue: queue.Queue[Pending | None] = queue.Queue()
        self._thread = CriticalThread("result-sender", self._run, on_death)

    def start(self) -> ResultSender:
        self._thread.start()
        return self

    @property
    def died(self) -> BaseException | None:
        """What killed the sender's thread, if it died (it then sends nothing more)."""
        return self._thread.died

    def prepare(self, result: Result, oversized_output: Any = None) -> Result:
        """The result as it will be sent: a large output stored in S3 and replaced by its
        pointer (this uploads: call it on the job's thread, not the sender's). An output the
        runner refused only for its size (``Outcome.oversized_output``) is delivered this way
        when a claim-check bucket is configured; otherwise the failure stands."""
        if (
            oversized_output is not None
            and result.error == ERROR_OUTPUT_TOO_LARGE
            and self.claim_check.enabled
        ):
            result = result.model_copy(
                update={
                    "outcome": "succeeded",
                    "output": oversized_output,
                    "error": None,
                    "cause": None,
                }
            )
        try:
            return self.claim_check.apply(result)
        except Exception as exc:  # a bug here must still end the job with a named error
            log.exception("job %s: the claim check failed", result.job_id)
            return failed(result, ERROR_CLAIM_CHECK_FAILED, f"claim check failed: {exc!r}")

    def submit(self, result: Result, message_id: str, receipt_handle: str) -> None:
        self._queue.put(Pending(result, message_id, receipt_handle))

    def stop(self, timeout_s: float | None = None) -> bool:
        """Send everything submitted so far, then end the thread. With ``timeout_s`` (a worker
        told to stop now) give up waiting after that long; returns whether all was sent."""
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:  # FIFO: everything submitted before stop() is already sent
                return
            batch, stop_after = [first], False
            window_end = time.monotonic() + LINGER_S
            while len(batch) < SQS_MAX_BATCH:
                try:
                    item = self._queue.get(timeout=max(0.0, window_end - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop_after = True
                    break
                batch.append(item)
            self.send(batch)
            if stop_after:
                return

    def send(self, batch: list[Pending]) -> None:
        """Send results: each fitted into one message, in requests within SQS's size limits."""
        ready: list[Pending] = []
        for pending in batch:
            fitted = fit_result(pending.result, self.max_message_bytes)
            if fitted is None:
                log.error(
                    "result for job %s cannot fit a %d-byte message; the job will be redelivered",
                    pending.result.job_id,
                    self.max_message_bytes,
                )
                self.on_done(pending.message_id, False)
                continue
            if fitted[0] is not pending.result:
                log.warning(
                    "result for job %s shrunk to fit the results queue (%s)",
                    pending.result.job_id,
                    fitted[0].error,
                )
            pending.result, pending.body = fitted
            ready.append(pending)
        sizes = [body_bytes(p.body) for p in ready]
        for indices in split_by_size(sizes, SQS_MAX_BATCH, self.max_batch_bytes):
            self._send_with_retries([ready[i] for i in indices])

    def _send_with_retries(self, batch: list[Pending]) -> None:
        """Send one request's worth, retrying entries SQS failed for reasons of its own."""
        pending = batch
        for attempt in range(1, MAX_SEND_ATTEMPTS + 1):
            failed_entries = self._send_once(pending)
            retry = [p for p, _code, sender_fault in failed_entries if not sender_fault]
            for p, code, sender_fault in failed_entries:
                if sender_fault or attempt == MAX_SEND_ATTEMPTS:
                    log.error(
                        "result for job %s not sent (%s); the job will be redelivered",
                        p.result.job_id,
                        code,
                    )
                    self.on_done(p.message_id, False)
            if not retry or attempt == MAX_SEND_ATTEMPTS:
                return
            pending = retry
            time.sleep(RETRY_BACKOFF_S * attempt)

    def _send_once(self, batch: list[Pending]) -> list[tuple[Pending, str, bool]]:
        entries = [
            {"Id": str(i), "MessageBody": p.body or encode(p.result)} for i, p in enumerate(batch)
        ]
        try:
            response = self.sqs.send_message_batch(QueueUrl=self.results_queue_url, Entries=entries)
        except ClientError as exc:
            code = error_code(exc, "ClientError")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
            if status >= 500 or code in TRANSIENT_REQUEST_ERRORS:
                log.warning("sending %d results failed (%s); retrying", len(batch), code)
                return [(p, code, False) for p in batch]
            if len(batch) > 1:
                # The request as a whole was refused (one entry too large for the queue, ...):
                # send each alone so only the entry at fault fails.
                log.warning(
                    "SQS refused a batch of %d results (%s); sending one by one", len(batch), code
                )
                return [failure for p in batch for failure in self._send_once([p])]
            return [(batch[0], code, True)]
        except BotoCoreError:
            log.exception("sending %d results failed", len(batch))
            return [(p, "RequestFailed", False) for p in batch]
        failed_by_id = {int(f["Id"]): f for f in response.get("Failed", [])}
        self._delete_jobs([p for i, p in enumerate(batch) if i not in failed_by_id])
        return [
            (batch[i], f.get("Code", ""), bool(f.get("SenderFault")))
            for i, f in failed_by_id.items()
        ]

    def _delete_jobs(self, sent: list[Pending]) -> None:
        if not sent:
            return
        try:
            response = self.sqs.delete_message_batch(
                QueueUrl=self.jobs_queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": p.receipt_handle} for i, p in enumerate(sent)
                ],
            )
            for refused in response.get("Failed", []):
                log.warning(
                    "job %s answered but not deleted (%s); it may run again",
                    sent[int(refused["Id"])].result.job_id,
                    refused.get("Code"),
                )
        except (BotoCoreError, ClientError):
            log.exception("deleting %d answered jobs failed; they may run again", len(sent))
        for pending in sent:
            self.on_done(pending.message_id, True)
