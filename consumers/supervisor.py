"""The supervisor: enforces job deadlines, and stops a worker without losing or repeating work.

* **First stop** (SIGTERM, Ctrl-C, an Auto Scaling termination, a spot notice): no more receives;
  running jobs finish and report, up to ``drain_timeout_s`` (a spot notice shortens it to what
  the notice leaves). At the deadline the remaining jobs are cancelled (their process groups
  killed) and their messages released (visibility 0) so another worker runs them now.
* **Second stop**, at any moment: every unsettled message is released and every job cancelled at
  once; results already finished are still sent (for at most a few seconds); the worker returns
  within 5 s.
* **Failure** (:meth:`Supervisor.fail`: an internal thread died, see :mod:`consumers.threads`):
  the same as a second stop, and :attr:`Supervisor.failure` says why, for the health endpoint
  and the exit code. A worker missing a thread must not look alive.

Signal handlers only call :meth:`Supervisor.signal`, which bumps an integer: no lock is taken in a
signal handler (a handler runs between two bytecodes of the main thread, which may itself hold
the lock). The supervisor loop notices within one tick.

The same loop enforces job deadlines: a job past its timeout is cancelled (``Bridge.JobTimeout``);
a Python handler running in a thread that ignores the cancellation gets its failure reported
anyway after the grace period, but keeps its slot until its thread returns (threads cannot be
killed; use ``--isolation process`` for handlers that may hang).

The supervisor sees the worker only through what it acts on: the :class:`JobTable`, a
``release`` callable (hand messages back to the queue) and a ``report_hung`` callable (fail a
job whose thread ignores its timeout), so it can be driven alone with a fake clock.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bridge.timing import TimingModel
from consumers.jobs import ActiveJob, JobTable

log = logging.getLogger(__name__)

TICK_S = 0.1
#: After a second stop, how long results already finished may take to go out.
ABANDON_FLUSH_S = 3.0
#: After the drain deadline cancelled the jobs, how long to wait for their threads.
KILL_WAIT_MARGIN_S = 2.0

#: Hand these jobs' messages back to the queue; returns how many it took charge of.
Release = Callable[[list[ActiveJob]], int]
#: Fail a job that ran past its deadline and ignored its cancellation (``elapsed_s`` run).
ReportHung = Callable[[ActiveJob, float], bool]


class Supervisor:
    def __init__(
        self,
        table: JobTable,
        timing: TimingModel,
        clock: Callable[[], float],
        release: Release,
        report_hung: ReportHung,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table, self.timing, self.clock = table, timing, clock
        self._release, self._report_hung, self._sleep = release, report_hung, sleep
        self._signals = 0
        #: Extra drain requests from instance watchers: (deadline, reason); appended only.
        self._requests: list[tuple[float | None, str]] = []
        self.deadline: float | None = None
        self.reason: str | None = None
        self._abandoned = False
        #: Why the worker must stop at once (an internal thread died); first reason wins.
        self.failure: str | None = None
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

    def fail(self, reason: str) -> None:
        """Stop now, as a second signal does, because the worker is broken (``reason``).
        Thread-safe and lock-free: one attribute is set; the loop acts within one tick."""
        if self.failure is None:
            self.failure = reason

    @property
    def stopping(self) -> bool:
        return (
            self._signals > 0
            or bool(self._requests)
            or self.deadline is not None
            or self.failure is not None
        )

    @property
    def abandoned(self) -> bool:
        return self._abandoned or self._signals > 1 or self.failure is not None

    # --- the loop ------------------------------------------------------------------------
    def supervise_until_stopped(self) -> None:
        while not self.tick():
            self._sleep(TICK_S)

    def tick(self) -> bool:
        """Enforce deadlines, run the tick hooks, advance a drain; True when the worker may
        return."""
        self._enforce_deadlines()
        for hook in list(self.on_tick):
            try:
                hook()
            except Exception:
                log.exception("supervisor hook failed")
        return self._step()

    def _step(self) -> bool:
        if self._signals > 1 or self._abandoned or self.failure is not None:
            self._abandon()
            return True
        self._take_requests()
        if self.deadline is None:
            return False
        table = self.table
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
                self.table.busy,
                deadline - self.clock(),
            )

    def _abandon(self) -> None:
        why = f" ({self.failure})" if self.failure else ""
        log.warning("stopping now%s: releasing %d jobs to the queue", why, self.table.busy)
        self._abandoned = True
        self.cancel_and_release()

    def _release_remaining(self) -> None:
        released = self.cancel_and_release()
        log.warning("drain timeout: released %d running jobs to the queue", released)

    def cancel_and_release(self) -> int:
        """Stop every job nobody has taken charge of and hand its message back."""
        actives = self.table.open_jobs()
        for active in actives:
            active.context.cancel("shutdown")
        return self._release(actives)

    # --- job deadlines -------------------------------------------------------------------
    def _enforce_deadlines(self) -> None:
        now = self.clock()
        grace = (self.timing.cancel_grace_s or 0) + KILL_WAIT_MARGIN_S
        for active in self.table.open_jobs():
            context = active.context
            if context.deadline is None or now < context.deadline:
                continue
            if context.cancel("timeout"):
                log.warning("job %s timed out; cancelling it", active.job.job_id)
            elif context.reason == "timeout" and now >= context.deadline + grace:
                # A thread that ignores cancellation: report the timeout without it.
                self._report_hung(active, now - (active.started_at or active.received_at))
