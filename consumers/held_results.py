"""Results that cannot be sent yet: held, on the spool, until the results queue takes them.

Results that cannot be sent are never thrown away. When the results queue refuses a result for
a reason of its own (deleted, access denied, a KMS key disabled: any error but the few that
blame the message itself, :data:`consumers.results.ENTRY_ERRORS`) or keeps failing past the
sender's attempts, the result goes to the spool (:mod:`consumers.spool`, fsync'd on local disk)
and its job stays in its slot, state ``sending``, its message kept hidden by the keep-alive.
Spooled results are retried every :data:`SPOOL_RETRY_FIRST_S`, doubling up to
:data:`SPOOL_RETRY_MAX_S`, and sent as soon as the queue takes them; then the job message is
deleted and the file removed. The job never runs again. A worker whose slots all hold spooled
results receives nothing more: at most ``--concurrency`` results are held, each at most the
queue's ``MaximumMessageSize``.

A new worker on the same host (a restart) takes over the spool (:mod:`consumers.spool_takeover`)
and sends what is there; a job message of a held result that comes back through the queue is
held, not run (:meth:`HeldResults.answer_delivery`), and deleted once the result is out. A
result sent before its job message came back leaves a marker (``sent``) for
:data:`SENT_MARKER_TTL_S`, so the message is deleted when it arrives rather than run again. A
held result whose task is over (:meth:`HeldResults.task_closed`) is dropped: nothing can take it
any more.

Who does what: :class:`HeldResults` keeps what is held, on disk and in memory, and decides when
to retry; the sender (:class:`consumers.results.ResultSender`) composes it and does the sending
and the deleting on its own thread, asking :meth:`HeldResults.chores` what is due. The receiver's
and the keep-alive's threads call :meth:`HeldResults.answer_delivery` and
:meth:`HeldResults.task_closed`, hence the lock around what is held.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

from bridge.contract import encode, mask_token
from consumers import spool_takeover
from consumers.pending import DoneCallback, Handles, Pending
from consumers.spool import Spool, Spooled, SpoolError, SpoolPlace

log = logging.getLogger(__name__)

#: Spooled results are tried again after this long, then twice as long each time up to
#: :data:`SPOOL_RETRY_MAX_S` (back to the first pause once the spool is empty).
SPOOL_RETRY_FIRST_S = 1.0
SPOOL_RETRY_MAX_S = 60.0
#: How long a result sent without its job message in hand (loaded at start) is remembered, so
#: that the message, when it comes back, is deleted rather than run: a message reappears
#: within its visibility timeout (at most 12 h) plus its wait in the queue.
SENT_MARKER_TTL_S = 24 * 3600.0
#: Metrics hook: ("results_spooled" | "results_unspooled", n).
CountCallback = Callable[[str, float], None]
#: Keep a job message hidden for a result loaded from the spool: (message id, receipt handle,
#: token, job id).
HoldCallback = Callable[[str, str, str, str], None]
#: The sender's delete: removes job messages from the jobs queue, then tells ``on_done``.
DeleteCallback = Callable[[Handles], None]


class Chores(NamedTuple):
    """What the sender's thread has to do now for the results held (:meth:`HeldResults.chores`)."""

    #: Sent results whose job message is in hand: to delete.
    answered: list[Pending]
    #: Unsent results whose task is over: to drop (:meth:`HeldResults.discard_closed`).
    closed: list[Pending]
    #: Whether the spooled results are due to be sent again (:meth:`HeldResults.to_retry`).
    retry_due: bool


class HeldResults:
    """The results a sender holds: spooled until the results queue takes them, then kept as
    sent markers until their job message is deleted."""

    def __init__(
        self,
        sqs: Any,
        jobs_queue_url: str,
        on_done: DoneCallback,
        wake: Callable[[], None],
        *,
        spool: Spool | SpoolPlace | None,
        count: CountCallback | None,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        on_hold: HoldCallback | None,
        hold_s: int,
    ) -> None:
        """``wake``: makes the sender's thread look at what is held now. The rest as given to
        :class:`consumers.results.ResultSender`: ``spool`` is where results are kept (a place:
        claimed by :meth:`start`; None: in memory only, lost if the process ends); ``on_hold``
        is told to keep hidden a job message taken back at start, for ``hold_s`` at a time."""
        self.sqs = sqs
        self.jobs_queue_url = jobs_queue_url
        self.on_done = on_done
        self.wake = wake
        self._place = spool if isinstance(spool, SpoolPlace) else None
        self.spool = spool if isinstance(spool, Spool) else None
        self.count = count or (lambda _name, _n: None)
        self.clock, self.wall_clock = clock, wall_clock
        self.on_hold = on_hold or (lambda _m, _h, _t, _j: None)
        self.hold_s = hold_s
        #: Spooled results, and sent ones whose job message is still to delete, by message id.
        self._held: dict[str, Pending] = {}
        self._lock = threading.Lock()
        self._retry_at: float | None = None
        self._backoff_s = SPOOL_RETRY_FIRST_S
        #: The refusal that keeps results spooled (an error code), None while they flow.
        self._condition: str | None = None
        self._condition_since: float | None = None
        self._next_prune = 0.0

    def start(self) -> None:
        """Claim the spool's place, if given one, and take over what it holds."""
        if self._place is not None and self.spool is None:
            self.spool = self._place.claim()
            log.info("results that cannot be sent are spooled in %s", self.spool.directory)
        self.load_spool()

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

    def wait_s(self) -> float | None:
        """How long the sender's thread may sleep: until the next retry, or a minute while
        anything is held (sent markers expire), or until something arrives."""
        with self._lock:
            if not self._held:
                return None
            retry_at = self._retry_at
        wait = SPOOL_RETRY_MAX_S if retry_at is None else retry_at - self.clock()
        return max(0.0, min(wait, SPOOL_RETRY_MAX_S))

    def load_spool(self) -> int:
        """Take over what an earlier worker on this host spooled (:mod:`consumers.spool_takeover`);
        returns the number of results still to send. Called by :meth:`start`."""
        if self.spool is None:
            return 0
        loaded, handed = 0, []
        for pending in spool_takeover.load(self.spool):
            with self._lock:
                self._held.setdefault(pending.message_id, pending)
            loaded += not pending.sent
            if pending.spooled and pending.spooled.receipt_handle and not pending.sent:
                handed.append(pending)
        spool_takeover.take_back(
            self.sqs, self.jobs_queue_url, self.hold_s, handed, self._taken_back
        )
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

    def _taken_back(self, pending: Pending, handle: str) -> None:
        """A job message hidden again at start: kept hidden (``on_hold``) until it is deleted."""
        with self._lock:
            if pending.receipt_handle is None:
                pending.receipt_handle = handle
        self.on_hold(pending.message_id, handle, pending.result.token, pending.result.job_id)

    # --- other threads' news -------------------------------------------------------------
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
        self.wake()
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
        self.wake()
        return True

    # --- the sender's thread -------------------------------------------------------------
    def keep(self, pending: Pending, code: str) -> None:
        """A result the results queue did not take, for a reason of its own (``code``): spool
        it, unless it is already, and retry it later. If the spool cannot write it, its job is
        left to run again."""
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

    def drop(self, pending: Pending) -> None:
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

    def chores(self) -> Chores:
        """What is due now: job messages to delete, results whose task is over, a retry."""
        with self._lock:
            answered = [p for p in self._held.values() if p.sent and (p.receipt_handle or p.copies)]
            closed = [p for p in self._held.values() if p.closed and not p.sent]
            due = self._retry_at is not None and self.clock() >= self._retry_at
        return Chores(answered, closed, due)

    def discard_closed(self, pending: Pending, delete: DeleteCallback) -> None:
        """Drop a result whose task is over, deleting its job message(s) with ``delete``."""
        with self._lock:
            self._held.pop(pending.message_id, None)
            pending.sent = True  # nothing more to send
            handles = [(pending, m, h) for m, h in pending.take_handles()]
        log.warning(
            "the task of %s is over (its execution stopped or timed out): its spooled result "
            "is dropped, its job message deleted",
            pending.spooled.describe() if pending.spooled else pending.result.job_id,
        )
        delete(handles)
        if self.spool is not None:
            self.spool.remove(pending.message_id)
        self._all_sent("no result is spooled any more")

    def keep_handles(self) -> None:
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

    def to_retry(self) -> list[Pending]:
        """The spooled results to send again, once :meth:`chores` says a retry is due."""
        with self._lock:
            return [p for p in self._held.values() if not p.sent and not p.closed]

    def retried(self, failed: bool) -> None:
        """After a retry: wait twice as long before the next if any result failed again."""
        if not failed:
            self._all_sent()
            return
        with self._lock:
            self._backoff_s = min(SPOOL_RETRY_MAX_S, self._backoff_s * 2)
            self._retry_at = self.clock() + self._backoff_s

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

    def prune_markers(self) -> None:
        """Forget, now and then, the sent markers whose job message never came back."""
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

    # --- results sent --------------------------------------------------------------------
    def mark_sent(self, sent: list[Pending]) -> tuple[Handles, list[Pending]]:
        """Results on the results queue: mark them sent and take the job messages they answer,
        for the sender to delete. Also returns those of them that were spooled until now (for
        :meth:`settle`, once the messages are deleted)."""
        unspooled = [p for p in sent if p.spooled is not None and not p.sent]
        handles: Handles = []
        with self._lock:
            for p in sent:
                p.sent = True
                handles.extend((p, message_id, h) for message_id, h in p.take_handles())
        return handles, unspooled

    def settle(self, sent: list[Pending], unspooled: list[Pending], deleted: Handles) -> None:
        """After :meth:`mark_sent` and the delete: forget the held results whose job message is
        deleted, and keep a sent marker for those still awaiting it. A result that gets
        through while others are spooled means the queue is back: retry them at once."""
        deleted_ids = {id(p) for p, _, _ in deleted}
        for p in sent:
            if p.spooled is None:
                continue
            with self._lock:
                # Still awaited: no job message was in hand, or a copy arrived meanwhile.
                awaited = id(p) not in deleted_ids or bool(p.receipt_handle or p.copies)
                if not awaited:
                    self._held.pop(p.message_id, None)
            if self.spool is not None:
                if awaited and not p.spooled.sent:
                    self._write_marker(p)
                elif not awaited:
                    self.spool.remove(p.message_id)
        if unspooled:
            self.count("results_unspooled", len(unspooled))
            for p in unspooled:
                log.info("spooled result for job %s sent", p.result.job_id)
            with self._lock:
                if self._retry_at is not None:
                    self._retry_at = self.clock()  # the queue is back: the rest at once
            self._all_sent()
        elif self._condition is not None:
            with self._lock:
                self._retry_at = self.clock()  # a fresh result went out: retry the spool now

    def _write_marker(self, pending: Pending) -> None:
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
