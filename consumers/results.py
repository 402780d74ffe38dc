"""Send results and delete the jobs they answer, in batches, off the job threads.

A job is deleted from the jobs queue only after its result is on the results queue, so a crash
in between means the job runs again (at-least-once), never that its result is lost. Results that
finish within :data:`LINGER_S` of each other go out in one SendMessageBatch: a short window,
because the time from a job's end to its SendTaskSuccess is what callers wait for. Deletes have
nobody waiting: once a result is sent the job's slot is freed (``on_answered``) and its message
waits, hidden, for up to :data:`~consumers.deletes.DELETE_WINDOW_S` to share a
DeleteMessageBatch with others (:mod:`consumers.deletes`), so jobs that finish seconds apart
still share requests. A stop flushes every pending delete before the thread ends.

Sizes: an output too large for a result message goes to S3 by claim check
(:meth:`ResultSender.prepare`, on the job's thread); every message is then fitted under the
queue's ``MaximumMessageSize`` (a cause too long is clipped) and batches are split so that no
SendMessageBatch carries more than :data:`MAX_BATCH_BYTES`. Should SQS still refuse a whole
request for one entry, the entries are sent one by one: one bad entry never makes the innocent
results next to it run again.

Results that cannot be sent are never thrown away: when the results queue refuses a result for
a reason of its own or keeps failing past :data:`MAX_SEND_ATTEMPTS`, the sender hands it to the
:class:`~consumers.held_results.HeldResults` it composes, which spools it, holds its job (not
run again) and says when to try again (:meth:`ResultSender.service`). The sender keeps the
thread, the requests and the deletes.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Sequence
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
from consumers.deletes import DELETE_WINDOW_S, DeleteBatch
from consumers.held_results import CountCallback, HeldResults, HoldCallback
from consumers.pending import DoneCallback, Handles, Pending
from consumers.spool import Spool, SpoolPlace
from consumers.threads import CriticalThread, OnDeath

log = logging.getLogger(__name__)

#: After the first result arrives, wait up to this long for more to share its SendMessageBatch:
#: at most a quarter of a second on work that takes minutes, and a burst of short jobs (a Map's
#: fan-out) sends one request per ten results, not per one. (Deletes wait longer:
#: :mod:`consumers.deletes`.)
LINGER_S = 0.25
#: Per-entry send failures are retried this many times before the result is spooled.
MAX_SEND_ATTEMPTS = 5
RETRY_BACKOFF_S = 0.2
#: Errors that blame the message itself, which no wait can fix: such a result is not spooled
#: (its job is left to run again, as before). Every other refusal is the queue's (missing,
#: access denied, KMS, throttled, down) and the result is spooled until the queue takes it.
ENTRY_ERRORS = frozenset(
    {
        "InvalidParameterValue",
        "InvalidMessageContents",
        "MessageTooLong",
        "BatchRequestTooLong",
        "AWS.SimpleQueueService.BatchRequestTooLong",
    }
)
#: The most a SendMessageBatch may carry in total (the sum of its message sizes). The SQS API
#: reference gives 262,144 bytes (newer pages 1 MiB, with 1 MiB messages): the lower value is
#: safe on every queue, and no result message is larger once claim checks apply.
MAX_BATCH_BYTES = 262_144
#: Whole-request errors a later attempt can fix; any other 4xx is the request's own fault.
TRANSIENT_REQUEST_ERRORS = RETRYABLE_ERRORS
#: Rounds of clipping a cause before giving up on fitting a result (each removes the excess).
_FIT_ROUNDS = 8
#: Put on the sender's queue to make it look at its spool now.
_WAKE = object()


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
        spool: Spool | SpoolPlace | None = None,
        count: CountCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_hold: HoldCallback | None = None,
        hold_s: int = 300,
        on_answered: Callable[[str], None] | None = None,
        delete_window_s: float | None = None,
    ) -> None:
        """``on_death``: told if the sender's thread dies (:mod:`consumers.threads`); the
        results it held are then never sent (see :attr:`died`). ``spool``: where results that
        cannot be sent are kept (a place: claimed by :meth:`start`; None: in memory only,
        lost if the process ends). ``on_hold``: told to keep hidden a job message taken back
        at start (:meth:`load_spool`), for ``hold_s`` at a time. ``on_answered``: told (by
        message id) that a job's result is sent and its message now only awaits a batched
        delete (``on_done`` follows the delete). ``delete_window_s``: the longest a delete
        waits for others (None: :data:`~consumers.deletes.DELETE_WINDOW_S`; 0: at once)."""
        self.sqs = sqs
        self.results_queue_url = results_queue_url
        self.jobs_queue_url = jobs_queue_url
        self.on_done = on_done
        #: Without a bucket it still refuses outputs too large for a message, naming the setting.
        self.claim_check = claim_check or ClaimCheck()
        self.max_message_bytes = self.claim_check.max_message_bytes
        self.max_batch_bytes = max_batch_bytes
        self.on_answered = on_answered or (lambda _message_id: None)
        self.deletes = DeleteBatch(
            DELETE_WINDOW_S if delete_window_s is None else delete_window_s, clock
        )
        self._queue: queue.Queue[Pending | object | None] = queue.Queue()
        self._thread = CriticalThread("result-sender", self._run, on_death)
        #: Results that cannot be sent yet: spooled, retried, their jobs held.
        self.held = HeldResults(
            sqs,
            jobs_queue_url,
            on_done,
            lambda: self._queue.put(_WAKE),
            spool=spool,
            count=count,
            clock=clock,
            wall_clock=wall_clock,
            on_hold=on_hold,
            hold_s=hold_s,
        )

    def start(self) -> ResultSender:
        self.held.start()
        self._thread.start()
        return self

    @property
    def died(self) -> BaseException | None:
        """What killed the sender's thread, if it died (it then sends nothing more)."""
        return self._thread.died

    # --- what is held (see HeldResults) --------------------------------------------------
    @property
    def spool(self) -> Spool | None:
        return self.held.spool

    @property
    def spooled(self) -> int:
        return self.held.spooled

    @property
    def holding(self) -> bool:
        return self.held.holding

    @property
    def outside_slots(self) -> int:
        return self.held.outside_slots

    def status(self) -> dict[str, Any]:
        return self.held.status()

    def load_spool(self) -> int:
        return self.held.load_spool()

    def answer_delivery(
        self, message_id: str, job_id: str, token: str, receipt_handle: str
    ) -> bool:
        return self.held.answer_delivery(message_id, job_id, token, receipt_handle)

    def task_closed(self, message_id: str) -> bool:
        return self.held.task_closed(message_id)

    # --- the job threads' side -----------------------------------------------------------
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

    def renew_delete(self, message_id: str, receipt_handle: str) -> bool:
        """A job message received again while its delete waits: delete it by this handle.
        False when no delete of it is pending."""
        return self.deletes.renew(message_id, receipt_handle)

    def flush_deletes(self) -> None:
        """Delete every answered job message now. The sender's thread does it at stop; call it
        from elsewhere only when that thread is not running (never started, or died)."""
        self._delete_jobs(self.deletes.take(everything=True))

    def stop(self, timeout_s: float | None = None) -> bool:
        """Send everything submitted so far and delete the job messages answered, then end the
        thread (spooled results stay on disk). With ``timeout_s`` (a worker told to stop now)
        give up waiting after that long; returns whether all was handled."""
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # --- the sender's thread -------------------------------------------------------------
    def _run(self) -> None:
        while True:
            first = self._get(self._wait_s())
            if first is None:  # FIFO: everything submitted before stop() is handled
                break
            batch: list[Pending] = [first] if isinstance(first, Pending) else []
            stop_after = False
            window_end = time.monotonic() + LINGER_S
            while batch and len(batch) < SQS_MAX_BATCH:
                try:
                    item = self._queue.get(timeout=max(0.0, window_end - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop_after = True
                    break
                if isinstance(item, Pending):
                    batch.append(item)
            if batch:
                self.send(batch)
            self.service()
            if stop_after:
                break
        self.flush_deletes()
        self._report_at_stop()
        if self.spool is not None:
            self.spool.close()  # a worker started after this one may take it over

    def _wait_s(self) -> float | None:
        """How long the thread may sleep: until a retry or a batch of deletes is due."""
        waits = [w for w in (self.held.wait_s(), self.deletes.wait_s()) if w is not None]
        return min(waits) if waits else None

    def _get(self, timeout_s: float | None) -> Pending | object | None:
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return _WAKE

    def _report_at_stop(self) -> None:
        unsent = self.spooled
        if not unsent:
            return
        if self.spool is None:
            log.error(
                "stopping with %d results not sent and no spool: their jobs run again", unsent
            )
        else:
            log.warning(
                "stopping with %d results not sent: they stay spooled in %s and go out at the "
                "next start on this host, without their jobs running again",
                unsent,
                self.spool.directory,
            )

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
        for request in self._requests(ready):
            self._send_with_retries(request)

    def _requests(self, ready: list[Pending]) -> list[list[Pending]]:
        """Fitted results grouped into requests within SQS's limits (:func:`split_by_size`)."""
        sizes = [body_bytes(p.body) for p in ready]
        return [
            [ready[i] for i in indices]
            for indices in split_by_size(sizes, SQS_MAX_BATCH, self.max_batch_bytes)
        ]

    def _send_with_retries(self, batch: list[Pending]) -> None:
        """Send one request's worth, retrying entries SQS failed for reasons of its own; what
        still fails is spooled (or, refused for its own content, left to run again)."""
        pending = batch
        for attempt in range(1, MAX_SEND_ATTEMPTS + 1):
            failed_entries = self._send_once(pending)
            retry = [p for p, code, sender_fault in failed_entries if not sender_fault]
            for p, code, sender_fault in failed_entries:
                if sender_fault or attempt == MAX_SEND_ATTEMPTS:
                    self._not_sent(p, code)
            if not retry or attempt == MAX_SEND_ATTEMPTS:
                return
            pending = retry
            time.sleep(RETRY_BACKOFF_S * attempt)

    def _not_sent(self, pending: Pending, code: str) -> None:
        """A result SQS did not take: held and spooled, unless SQS blamed the message itself."""
        if code in ENTRY_ERRORS:
            log.error(
                "result for job %s refused by the results queue (%s); the job will be redelivered",
                pending.result.job_id,
                code,
            )
            self.held.drop(pending)
            return
        self.held.keep(pending, code)

    def service(self) -> None:
        """On the sender's thread: delete job messages answered by sent results (a batch, when
        due), drop results whose task is over, retry the spooled results when due, forget old
        sent markers."""
        if self.deletes.wait_s() == 0.0:
            self._delete_jobs(self.deletes.take())
        chores = self.held.chores()
        if chores.answered:
            self._answered(chores.answered)
        for pending in chores.closed:
            self.held.discard_closed(pending, self._delete_jobs)
        self.held.keep_handles()
        if chores.retry_due:
            self._retry()
        self.held.prune_markers()

    def _retry(self) -> None:
        """Send the spooled results again, each once; the hold schedules the next retry."""
        unsent = self.held.to_retry()
        if unsent:
            log.debug("retrying %d spooled results", len(unsent))
        failures = [f for request in self._requests(unsent) for f in self._send_once(request)]
        for p, code, _sender_fault in failures:
            self._not_sent(p, code)
        self.held.retried(failed=bool(failures))

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
                log.debug("sending %d results failed (%s); retrying", len(batch), code)
                return [(p, code, False) for p in batch]
            if len(batch) > 1:
                # The request as a whole was refused (one entry too large for the queue, the
                # queue missing, ...): send each alone so only an entry at fault fails.
                log.debug(
                    "SQS refused a batch of %d results (%s); sending one by one", len(batch), code
                )
                return [failure for p in batch for failure in self._send_once([p])]
            return [(batch[0], code, True)]
        except BotoCoreError as exc:
            log.debug("sending %d results failed: %s", len(batch), exc)
            return [(p, "RequestFailed", False) for p in batch]
        failed_by_id = {int(f["Id"]): f for f in response.get("Failed", [])}
        self._answered([p for i, p in enumerate(batch) if i not in failed_by_id])
        return [
            (batch[i], f.get("Code", ""), bool(f.get("SenderFault")))
            for i, f in failed_by_id.items()
        ]

    def _answered(self, sent: list[Pending]) -> None:
        """Results on the results queue: their job messages join the batch of deletes (their
        slots are freed now), except those of results that were spooled, deleted at once so
        that the hold can forget them (or keep a sent marker, for a job message not in hand)."""
        if not sent:
            return
        handles, unspooled = self.held.mark_sent(sent)
        now = [h for h in handles if h[0].spooled is not None]
        later = [h for h in handles if h[0].spooled is None]
        self.deletes.add(later)  # first: a redelivery from now on renews the handle to delete
        for _pending, message_id, _handle in later:
            self.on_answered(message_id)
        self._delete_jobs(now)
        self.held.settle(sent, unspooled, now)
        if self.deletes.wait_s() == 0.0:
            self._delete_jobs(self.deletes.take())

    def _delete_jobs(self, sent: Handles) -> None:
        if not sent:
            return
        for start in range(0, len(sent), SQS_MAX_BATCH):
            chunk = sent[start : start + SQS_MAX_BATCH]
            try:
                response = self.sqs.delete_message_batch(
                    QueueUrl=self.jobs_queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": handle}
                        for i, (_p, _mid, handle) in enumerate(chunk)
                    ],
                )
                for refused in response.get("Failed", []):
                    log.warning(
                        "job %s answered but not deleted (%s); it may run again",
                        chunk[int(refused["Id"])][0].result.job_id,
                        refused.get("Code"),
                    )
            except (BotoCoreError, ClientError):
                log.exception("deleting %d answered jobs failed; they may run again", len(chunk))
        for _p, message_id, _handle in sent:
            self.on_done(message_id, True)
