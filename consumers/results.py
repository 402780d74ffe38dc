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

Results that cannot be sent are never thrown away. When the results queue refuses a result for
a reason of its own (deleted, access denied, a KMS key disabled: any error but the few that
blame the message itself, :data:`ENTRY_ERRORS`) or keeps failing past
:data:`MAX_SEND_ATTEMPTS`, the result goes to the spool (:mod:`consumers.spool`, fsync'd on
local disk) and its job stays in its slot, state ``sending``, its message kept hidden by the
keep-alive. Spooled results are retried every :data:`SPOOL_RETRY_FIRST_S`, doubling up to
:data:`SPOOL_RETRY_MAX_S`, and sent as soon as the queue takes them; then the job message is
deleted and the file removed. The job never runs again. A worker whose slots all hold spooled
results receives nothing more: at most ``--concurrency`` results are held, each at most the
queue's ``MaximumMessageSize``.

A new worker on the same host (a restart) loads the spool at start and sends what is there.
It hides the job messages again with the receipt handles the spool kept (SQS takes a handle
while its message is in flight), so no other worker receives them meanwhile. A message whose
visibility lapsed first comes back through the queue, and the worker that receives it
(:meth:`answer_delivery`) holds it without running it, then deletes it once the result is out.
A result sent before its job message came back leaves a marker (``sent``) for
:data:`SENT_MARKER_TTL_S`, so the message is deleted when it arrives rather than run again. A
held result whose task is over (:meth:`task_closed`) is dropped: nothing can take it any more.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge.batching import SQS_MAX_BATCH
from bridge.claim_check import BUCKET_SETTING, ClaimCheck, failed
from bridge.contract import (
    ERROR_CLAIM_CHECK_FAILED,
    ERROR_OUTPUT_TOO_LARGE,
    MAX_MESSAGE_BYTES,
    ContractError,
    Result,
    clip,
    encode,
    mask_token,
    parse_result,
)
from bridge.errors import RETRYABLE_ERRORS, error_code
from consumers.spool import Spool, Spooled, SpoolError, SpoolPlace
from consumers.threads import CriticalThread, OnDeath

log = logging.getLogger(__name__)

#: After the first result arrives, wait up to this long for more to share its SendMessageBatch
#: (and the jobs' DeleteMessageBatch): at most a quarter of a second on work that takes minutes,
#: and a burst of short jobs (a Map's fan-out) sends one request per ten results, not per one.
LINGER_S = 0.25
#: Per-entry send failures are retried this many times before the result is spooled.
MAX_SEND_ATTEMPTS = 5
RETRY_BACKOFF_S = 0.2
#: Spooled results are tried again after this long, then twice as long each time up to
#: :data:`SPOOL_RETRY_MAX_S` (back to the first pause once the spool is empty).
SPOOL_RETRY_FIRST_S = 1.0
SPOOL_RETRY_MAX_S = 60.0
#: How long a result sent without its job message in hand (loaded at start) is remembered, so
#: that the message, when it comes back, is deleted rather than run: a message reappears
#: within its visibility timeout (at most 12 h) plus its wait in the queue.
SENT_MARKER_TTL_S = 24 * 3600.0
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


@dataclass
class Pending:
    result: Result
    message_id: str
    #: None: the job message is not in hand (a result loaded from the spool at start).
    receipt_handle: str | None
    #: The message body, once fitted (:func:`fit_result`).
    body: str = ""
    #: Other copies of the job message this result answers (message id -> receipt handle),
    #: received while the result was spooled: deleted with it.
    copies: dict[str, str] = field(default_factory=dict)
    #: Its spool entry, once spooled.
    spooled: Spooled | None = None
    #: Whether the worker's job table holds its job (submitted by a job thread: a slot).
    in_table: bool = True
    #: The result is on the results queue; what is left is deleting its job message(s).
    sent: bool = False
    #: Its task is over (the execution stopped or timed out): the result can never be taken.
    closed: bool = False

    def take_handles(self) -> list[tuple[str, str]]:
        """The job messages to delete now (message id, receipt handle), forgotten here."""
        handles = list(self.copies.items())
        if self.receipt_handle is not None:
            handles.insert(0, (self.message_id, self.receipt_handle))
        self.receipt_handle, self.copies = None, {}
        return handles


#: Called once per job message when the sender is done with it: (message_id, delivered).
DoneCallback = Callable[[str, bool], None]
#: Metrics hook: ("results_spooled" | "results_unspooled", n).
CountCallback = Callable[[str, float], None]
#: Keep a job message hidden for a result loaded from the spool: (message id, receipt handle,
#: token, job id).
HoldCallback = Callable[[str, str, str, str], None]
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
    ) -> None:
        """``on_death``: told if the sender's thread dies (:mod:`consumers.threads`); the
        results it held are then never sent (see :attr:`died`). ``spool``: where results that
        cannot be sent are kept (a place: claimed by :meth:`start`; None: in memory only,
        lost if the process ends). ``on_hold``: told to keep hidden a job message taken back
        at start (:meth:`load_spool`), for ``hold_s`` at a time."""
        self.sqs = sqs
        self.results_queue_url = results_queue_url
        self.jobs_queue_url = jobs_queue_url
        self.on_done = on_done
        #: Without a bucket it still refuses outputs too large for a message, naming the setting.
        self.claim_check = claim_check or ClaimCheck()
        self.max_message_bytes = self.claim_check.max_message_bytes
        self.max_batch_bytes = max_batch_bytes
        self._place = spool if isinstance(spool, SpoolPlace) else None
        self.spool = spool if isinstance(spool, Spool) else None
        self.count = count or (lambda _name, _n: None)
        self.clock, self.wall_clock = clock, wall_clock
        self.on_hold = on_hold or (lambda _m, _h, _t, _j: None)
        self.hold_s = hold_s
        self._queue: queue.Queue[Pending | object | None] = queue.Queue()
        self._thread = CriticalThread("result-sender", self._run, on_death)
        #: Spooled results, and sent ones whose job message is still to delete, by message id.
        self._held: dict[str, Pending] = {}
        self._lock = threading.Lock()
        self._retry_at: float | None = None
        self._backoff_s = SPOOL_RETRY_FIRST_S
        #: The refusal that keeps results spooled (an error code), None while they flow.
        self._condition: str | None = None
        self._condition_since: float | None = None
        self._next_prune = 0.0

    def start(self) -> ResultSender:
        if self._place is not None and self.spool is None:
            self.spool = self._place.claim()
            log.info("results that cannot be sent are spooled in %s", self.spool.directory)
        self.load_spool()
        self._thread.start()
        return self

    @property
    def died(self) -> BaseException | None:
        """What killed the sender's thread, if it died (it then sends nothing more)."""
        return self._thread.died

    # --- what is held --------------------------------------------------------------------
    @property
    def spooled(self) -> int:
        """Results not sent yet, held for a retry."""
        with self._lock:
            return sum(1 for p in self._held.values() if not p.sent)

    @property
    def holding(self) -> bool:
        """Whether any result is held (spooled, or sent and awaiting its job message)."""
        return bool(self._held)

    @property
    def outside_slots(self) -> int:
        """Unsent results whose job is not in the worker's table (loaded from the spool at
        start): they count against ``--concurrency`` all the same, so what a worker holds stays
        bounded by its slots."""
        with self._lock:
            return sum(1 for p in self._held.values() if not p.sent and not p.in_table)

    def status(self) -> dict[str, Any]:
        """For the health endpoint: what is spooled and why."""
        now = self.wall_clock()
        with self._lock:
            unsent = [p for p in self._held.values() if not p.sent]
            oldest = min((p.spooled.spooled_at for p in unsent if p.spooled), default=None)
            return {
                "spooled": len(unsent),
                "oldest_s": None if oldest is None else round(max(0.0, now - oldest), 1),
                "awaiting_job_message": len(self._held) - len(unsent),
                **({"error": self._condition} if unsent and self._condition else {}),
                "spool": str(self.spool.directory) if self.spool else None,
            }

    def load_spool(self) -> int:
        """Take over what an earlier worker on this host spooled; returns the number of
        results still to send. Called by :meth:`start`."""
        if self.spool is None:
            return 0
        loaded, handed = 0, []
        for entry in self.spool.load():
            try:
                result = parse_result(entry.body)
            except ContractError:  # Spool.load checked it: cannot happen
                log.exception("spooled result of %s unreadable", entry.describe())
                continue
            pending = Pending(result, entry.message_id, None, entry.body, spooled=entry)
            pending.in_table, pending.sent = False, entry.sent
            with self._lock:
                self._held.setdefault(entry.message_id, pending)
            loaded += not entry.sent
            if entry.receipt_handle and not entry.sent:
                handed.append(pending)
        self._take_back(handed)
        if loaded:
            log.warning(
                "%d results spooled in %s before this start: sending them (their jobs are "
                "not run again)",
                loaded,
                self.spool.directory,
            )
            self._condition, self._condition_since = "spooled before this start", self.clock()
            self._retry_at = self.clock()
        return loaded

    def _take_back(self, pendings: list[Pending]) -> None:
        """Hide again the job messages of results spooled before this start, with the receipt
        handles the spool kept: while a message's visibility timeout has not lapsed, SQS still
        takes its last handle, and no other worker can receive (and run) it meanwhile. A
        message no longer in flight is taken when it comes back (:meth:`answer_delivery`)."""
        for start in range(0, len(pendings), SQS_MAX_BATCH):
            chunk = pendings[start : start + SQS_MAX_BATCH]
            handles = [p.spooled.receipt_handle if p.spooled else None for p in chunk]
            try:
                response = self.sqs.change_message_visibility_batch(
                    QueueUrl=self.jobs_queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": self.hold_s}
                        for i, h in enumerate(handles)
                    ],
                )
            except (BotoCoreError, ClientError) as exc:
                log.warning(
                    "could not take back %d job messages held before this start (%s); each "
                    "is taken when it comes back",
                    len(chunk),
                    exc,
                )
                continue
            refused = {int(f["Id"]): f.get("Code") for f in response.get("Failed", [])}
            for i, (pending, handle) in enumerate(zip(chunk, handles, strict=True)):
                if i in refused or handle is None:
                    log.info(
                        "the job message of %s is no longer held (%s): taken when it comes back",
                        pending.spooled.describe() if pending.spooled else pending.message_id,
                        refused.get(i),
                    )
                    continue
                with self._lock:
                    if pending.receipt_handle is None:
                        pending.receipt_handle = handle
                self.on_hold(
                    pending.message_id, handle, pending.result.token, pending.result.job_id
                )

    def answer_delivery(
        self, message_id: str, job_id: str, token: str, receipt_handle: str
    ) -> bool:
        """A job message just received: if a held result answers it (the same message, or a
        copy of the same task: job id and token), take the message instead of running the job,
        and return True. The message is deleted once the result is out (at once if it is)."""
        with self._lock:
            pending = self._held.get(message_id)
            if pending is None:
                pending = next(
                    (
                        p
                        for p in self._held.values()
                        if p.result.token == token and p.result.job_id == job_id
                    ),
                    None,
                )
            if pending is None:
                return False
            if pending.message_id == message_id:
                pending.receipt_handle = receipt_handle
            else:
                pending.copies[message_id] = receipt_handle
            sent = pending.sent
        log.info(
            "job %s (token %s) is answered by a %s result: message %s held, not run",
            job_id,
            mask_token(token),
            "sent" if sent else "spooled",
            message_id,
        )
        self._queue.put(_WAKE)
        return True

    def task_closed(self, message_id: str) -> bool:
        """Step Functions says the task of a held result is over (its execution stopped or
        timed out: a keep-alive heartbeat answered so). The result can never complete it:
        drop it, delete its job message(s) and free its slot, on the sender's thread. False if
        no unsent result of that message is held."""
        with self._lock:
            pending = self._held.get(message_id) or next(
                (p for p in self._held.values() if message_id in p.copies), None
            )
            if pending is None or pending.sent:
                return False
            pending.closed = True
        self._queue.put(_WAKE)
        return True

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

    def stop(self, timeout_s: float | None = None) -> bool:
        """Send everything submitted so far, then end the thread (spooled results stay on
        disk). With ``timeout_s`` (a worker told to stop now) give up waiting after that long;
        returns whether all was handled."""
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
        self._report_at_stop()
        if self.spool is not None:
            self.spool.close()  # a worker started after this one may take it over

    def _get(self, timeout_s: float | None) -> Pending | object | None:
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return _WAKE

    def _wait_s(self) -> float | None:
        """How long the thread may sleep: until the next retry, or a minute while anything is
        held (sent markers expire), or until something arrives."""
        with self._lock:
            if not self._held:
                return None
            retry_at = self._retry_at
        wait = SPOOL_RETRY_MAX_S if retry_at is None else retry_at - self.clock()
        return max(0.0, min(wait, SPOOL_RETRY_MAX_S))

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
        sizes = [body_bytes(p.body) for p in ready]
        for indices in split_by_size(sizes, SQS_MAX_BATCH, self.max_batch_bytes):
            self._send_with_retries([ready[i] for i in indices])

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
        """A result SQS did not take: spool it, unless SQS blamed the message itself."""
        if code in ENTRY_ERRORS:
            log.error(
                "result for job %s refused by the results queue (%s); the job will be redelivered",
                pending.result.job_id,
                code,
            )
            self._drop(pending)
            return
        if pending.spooled is None:
            entry = Spooled(
                pending.message_id,
                pending.result.job_id,
                pending.result.token,
                pending.body or encode(pending.result),
                self.wall_clock(),
                receipt_handle=pending.receipt_handle,
            )
            try:
                if self.spool is not None:
                    self.spool.put(entry)
            except SpoolError as exc:
                log.error("%s; the job will be redelivered", exc)
                self.on_done(pending.message_id, False)
                return
            pending.spooled = entry
            with self._lock:
                self._held[pending.message_id] = pending
            self.count("results_spooled", 1)
            log.info("result for %s not sent (%s): spooled", entry.describe(), code)
        self._condition_changed(code)

    def _drop(self, pending: Pending) -> None:
        """Give a result up (SQS refuses its content): its job message(s) reappear and run."""
        with self._lock:
            self._held.pop(pending.message_id, None)
            handles = pending.take_handles()
        if pending.spooled is not None and self.spool is not None:
            self.spool.remove(pending.message_id)
        for message_id, _handle in handles:
            self.on_done(message_id, False)

    def _condition_changed(self, code: str) -> None:
        """Log at WARNING when results start being spooled or the reason changes; schedule
        the next retry."""
        now = self.clock()
        with self._lock:
            if self._retry_at is None:
                self._retry_at = now + self._backoff_s
            previous = self._condition
            self._condition = code
            if previous is None:
                self._condition_since = now
            unsent = sum(1 for p in self._held.values() if not p.sent)
        if previous != code:
            where = self.spool.directory if self.spool else "memory (no spool: lost on exit)"
            log.warning(
                "the results queue refuses results (%s): %d spooled in %s, retried with "
                "backoff up to %.0f s; their jobs are held, not run again",
                code,
                unsent,
                where,
                SPOOL_RETRY_MAX_S,
            )

    def service(self) -> None:
        """On the sender's thread: delete job messages answered by sent results, retry the
        spooled results when due, forget old sent markers."""
        with self._lock:
            answered = [p for p in self._held.values() if p.sent and (p.receipt_handle or p.copies)]
            closed = [p for p in self._held.values() if p.closed and not p.sent]
            due = self._retry_at is not None and self.clock() >= self._retry_at
        if answered:
            self._answered(answered)
        for pending in closed:
            self._discard_closed(pending)
        self._keep_handles()
        if due:
            self._retry()
        self._prune_markers()

    def _discard_closed(self, pending: Pending) -> None:
        with self._lock:
            self._held.pop(pending.message_id, None)
            pending.sent = True  # nothing more to send
            handles = [(pending, m, h) for m, h in pending.take_handles()]
        log.warning(
            "the task of %s is over (its execution stopped or timed out): its spooled result "
            "is dropped, its job message deleted",
            pending.spooled.describe() if pending.spooled else pending.result.job_id,
        )
        self._delete_jobs(handles)
        if self.spool is not None:
            self.spool.remove(pending.message_id)
        self._all_sent("no result is spooled any more")

    def _keep_handles(self) -> None:
        """Write a spooled result's new receipt handle (its job message was received again),
        so that a restart can take the message back with it."""
        with self._lock:
            changed = [
                p
                for p in self._held.values()
                if p.spooled is not None
                and not p.sent
                and p.receipt_handle is not None
                and p.receipt_handle != p.spooled.receipt_handle
            ]
        for p in changed:
            assert p.spooled is not None and p.receipt_handle is not None
            entry = replace(p.spooled, receipt_handle=p.receipt_handle)
            try:
                if self.spool is not None:
                    self.spool.put(entry)
            except SpoolError as exc:
                log.warning("%s (a restart takes the job message when it comes back)", exc)
            p.spooled = entry

    def _retry(self) -> None:
        with self._lock:
            unsent = [p for p in self._held.values() if not p.sent and not p.closed]
        if not unsent:
            self._all_sent()
            return
        log.debug("retrying %d spooled results", len(unsent))
        failures: list[tuple[Pending, str, bool]] = []
        sizes = [body_bytes(p.body) for p in unsent]
        for indices in split_by_size(sizes, SQS_MAX_BATCH, self.max_batch_bytes):
            failures.extend(self._send_once([unsent[i] for i in indices]))
        for p, code, _sender_fault in failures:
            self._not_sent(p, code)
        if failures:
            with self._lock:
                self._backoff_s = min(SPOOL_RETRY_MAX_S, self._backoff_s * 2)
                self._retry_at = self.clock() + self._backoff_s
        else:
            self._all_sent()

    def _all_sent(
        self, how: str = "the results queue takes results again: every spooled result sent"
    ) -> None:
        """Every spooled result went out (those held may still await their job message)."""
        with self._lock:
            if any(not p.sent for p in self._held.values()):
                return
            condition, since = self._condition, self._condition_since
            self._condition = self._condition_since = self._retry_at = None
            self._backoff_s = SPOOL_RETRY_FIRST_S
        if condition is not None:
            log.warning(
                "%s (held %.0f s: %s)", how, self.clock() - (since or self.clock()), condition
            )

    def _prune_markers(self) -> None:
        now = self.clock()
        if now < self._next_prune:
            return
        self._next_prune = now + SPOOL_RETRY_MAX_S
        wall = self.wall_clock()
        with self._lock:
            old = [
                p
                for p in self._held.values()
                if p.sent
                and not (p.receipt_handle or p.copies)
                and p.spooled is not None
                and wall - p.spooled.spooled_at > SENT_MARKER_TTL_S
            ]
            for p in old:
                del self._held[p.message_id]
        for p in old:
            if self.spool is not None:
                self.spool.remove(p.message_id)
            log.info(
                "forgot the sent result of job %s: its job message never came back", p.result.job_id
            )

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
        """Results on the results queue: delete the job messages they answer and forget them
        (a result sent without its job message in hand stays as a sent marker)."""
        if not sent:
            return
        was_unsent = [p for p in sent if p.spooled is not None and not p.sent]
        handles: list[tuple[Pending, str, str]] = []
        with self._lock:
            for p in sent:
                p.sent = True
                handles.extend((p, message_id, h) for message_id, h in p.take_handles())
        self._delete_jobs(handles)
        deleted = {id(p) for p, _, _ in handles}
        for p in sent:
            if p.spooled is None:
                continue
            with self._lock:
                # Still awaited: no job message was in hand, or a copy arrived meanwhile.
                awaited = id(p) not in deleted or bool(p.receipt_handle or p.copies)
                if not awaited:
                    self._held.pop(p.message_id, None)
            if self.spool is not None:
                if awaited and not p.spooled.sent:
                    self._mark_sent(p)
                elif not awaited:
                    self.spool.remove(p.message_id)
        if was_unsent:
            self.count("results_unspooled", len(was_unsent))
            for p in was_unsent:
                log.info("spooled result for job %s sent", p.result.job_id)
            with self._lock:
                if self._retry_at is not None:
                    self._retry_at = self.clock()  # the queue is back: the rest at once
            self._all_sent()
        elif self._condition is not None:
            with self._lock:
                self._retry_at = self.clock()  # a fresh result went out: retry the spool now

    def _mark_sent(self, pending: Pending) -> None:
        """Remember on disk that the result went out, so a restart does not send it again."""
        assert pending.spooled is not None and self.spool is not None
        # A marker's time is when it was sent: SENT_MARKER_TTL_S counts from there.
        marker = replace(
            pending.spooled, sent=True, receipt_handle=None, spooled_at=self.wall_clock()
        )
        try:
            self.spool.put(marker)
        except SpoolError as exc:
            log.error("%s (the result was sent; a restart may send it again)", exc)
            return
        pending.spooled = marker

    def _delete_jobs(self, sent: list[tuple[Pending, str, str]]) -> None:
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
