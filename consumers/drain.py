"""Stopping a worker without losing or repeating work: the supervisor's loop.

* **First stop** (SIGTERM, Ctrl-C, an Auto Scaling termination, a spot notice): no more receives;
  running jobs finish and report, up to ``drain_timeout_s`` (a spot notice shortens it to what
  the notice leaves). At the deadline the remaining jobs are cancelled (their process groups
  killed) and their messages released (visibility 0) so another worker runs them now.
* **Second stop**, at any moment: every unsettled message is released and every job cancelled at
  once; results already finished are still sent (for at most a few seconds); the worker returns
  within 5 s.

Signal handlers only call :meth:`Drain.signal`, which bumps an integer: no lock is taken in a
signal handler (a handler runs between two bytecodes of the main thread, which may itself hold
the lock). The supervisor loop notices within one tick.

The same loop enforces job deadlines: a job past its timeout is cancelled (``Bridge.JobTimeout``);
a Python handler running in a thread that ignores the cancellation gets its failure reported
anyway after the grace period, but keeps its slot until its thread returns (threads cannot be
killed; use ``--isolation process`` for handlers that may hang).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bridge.contract import ERROR_JOB_TIMEOUT
from bridge.timing import TimingModel
from consumers.runner import Outcome

if TYPE_CHECKING:
    from consumers.worker import Worker

log = logging.getLogger(__name__)

TICK_S = 0.1
#: After a second stop, how long results already finished may take to go out.
ABANDON_FLUSH_S = 3.0
#: After the drain deadline cancelled the jobs, how long to wait for their threads.
KILL_WAIT_MARGIN_S = 2.0


class Drain:
    def __init__(self, worker: Worker, timing: TimingModel, clock: Callable[[], float]) -> None:
        self.worker = worker
        self.timing = timing
        self.clock = clock
        self._signals = 0
        #: Extra drain requests from instance watchers: (deadline, reason); appended only.
        self._requests: list[tuple[float | None, str]] = []
        self.deadline: float | None = None
        self.reason: str | None = None
        self._abandoned = False
        self._released_at: float | None = None
        #: Called every tick while running (scale-in protection, lifecycle heartbeats, ...).
        self.on_tick: list[Callable[[], None]] = []

    # --- requests ------------------------------------------------------------------------
    def signal(self) -> None:
        """Signal-handler safe: only an integer changes."""
        self._signals += 1

    def request(self, within_s: float | None = None, reason: str = "requested") -> None:
        """Drain now, finishing within ``within_s`` (None: the drain timeout). Thread-safe."""
        self._requests.append((None if within_s is None else self.clock() + within_s, reason))

    @property
    def stopping(self) -> bool:
        return self._signals > 0 or bool(self._requests) or self.deadline is not None

    @property
    def abandoned(self) -> bool:
        return self._abandoned or self._signals > 1

    # --- the loop ------------------------------------------------------------------------
    def supervise_until_stopped(self) -> None:
        while True:
            self._enforce_deadlines()
            for hook in list(self.on_tick):
                try:
                    hook()
                except Exception:
                    log.exception("supervisor hook failed")
            if self._step():
                return
            time.sleep(TICK_S)

    def _step(self) -> bool:
        """One tick; True when the worker may return."""
        if self._signals > 1 or self._abandoned:
            self._abandon()
            return True
        self._take_requests()
        if self.deadline is None:
            return False
        table = self.worker.table
        if table.busy == 0:
            log.info("drained (%s)", self.reason)
            return True
        now = self.clock()
        if self._released_at is None and now >= self.deadline:
            self._release_remaining()
            self._released_at = now
        if self._released_at is not None:
            waited = now - self._released_at
            return table.running == 0 or waited >= (self.timing.cancel_grace_s or 0) + (
                KILL_WAIT_MARGIN_S
            )
        return False

    def _take_requests(self) -> None:
        now = self.clock()
        if self._signals and self.deadline is None:
            self._begin(now + (self.timing.drain_timeout_s or 0), "stop signal")
        while self._requests:
            deadline, reason = self._requests.pop(0)
            self._begin(deadline or now + (self.timing.drain_timeout_s or 0), reason)

    def _begin(self, deadline: float, reason: str) -> None:
        if self.deadline is None or deadline < self.deadline:
            first = self.deadline is None
            self.deadline, self.reason = deadline, reason
            log.info(
                "%s (%s): no new jobs; %d running get %.0f s to finish",
                "draining" if first else "drain shortened",
                reason,
                self.worker.table.busy,
                deadline - self.clock(),
            )

    def _release_remaining(self) -> None:
        actives = [a for a in self.worker.table.snapshot() if not a.claimed]
        for active in actives:
            active.context.cancel("shutdown")
        released = self.worker.release(actives)
        log.warning("drain timeout: released %d running jobs to the queue", released)

    def _abandon(self) -> None:
        log.warning("stopping now: releasing %d jobs to the queue", self.worker.table.busy)
        self._abandoned = True
        actives = [a for a in self.worker.table.snapshot() if not a.claimed]
        for active in actives:
            active.context.cancel("shutdown")
        self.worker.release(actives)

    # --- job deadlines -------------------------------------------------------------------
    def _enforce_deadlines(self) -> None:
        now = self.clock()
        grace = (self.timing.cancel_grace_s or 0) + KILL_WAIT_MARGIN_S
        for active in self.worker.table.snapshot():
            context = active.context
            if active.thread_done or context.deadline is None or now < context.deadline:
                continue
            if context.cancel("timeout"):
                log.warning("job %s timed out; cancelling it", active.job.job_id)
            elif (
                context.reason == "timeout"
                and now >= context.deadline + grace
                and not active.claimed
            ):
                # A thread that ignores cancellation: report the timeout without it.
                elapsed = now - (active.started_at or active.received_at)
                self.worker.submit(
                    active,
                    Outcome.failure(
                        ERROR_JOB_TIMEOUT,
                        f"the job ran past its timeout ({elapsed:.0f} s) and its handler did "
                        "not stop when cancelled; its thread keeps a slot until it returns",
                    ),
                )
