"""One thread for every running job's deadline: a heap of due times that cancels each job's
context with ``"timeout"`` when its time comes.

Why not a :class:`threading.Timer` per job: each timer is a thread that sleeps for the job's
whole life, so a worker running 1,000 in-thread handlers held 2,000 threads (issue 21), and
systemd's default ``TasksMax`` is 15 % of ``pid_max``. One scheduler keeps the worker at one
thread per running job (the job's own) plus a constant.

A cancelled entry (the job ended first) is dropped lazily when it reaches the top, and the heap
is rebuilt when more than half of it is dead, so a worker running many short jobs with long
default deadlines (11 h 50 min) does not accumulate them.

The clock is an argument, and :meth:`DeadlineScheduler.fire_due` is public, so tests fire
deadlines on a fake clock without the thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from consumers.context import JobContext

log = logging.getLogger(__name__)

#: The thread wakes at least this often, so a clock that jumps is noticed.
MAX_SLEEP_S = 60.0


@dataclass(order=True)
class Deadline:
    """One scheduled deadline; :meth:`DeadlineScheduler.cancel` takes it back."""

    due: float
    seq: int
    context: JobContext = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class DeadlineScheduler:
    def __init__(self, clock: Callable[[], float] = time.monotonic, start: bool = True) -> None:
        """``start``: run the thread (started on the first deadline); False for tests that call
        :meth:`fire_due` themselves."""
        self.clock = clock
        self._heap: list[Deadline] = []
        self._dead = 0
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._start = start
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        """Deadlines still pending (cancelled ones excluded)."""
        with self._wake:
            return len(self._heap) - self._dead

    def schedule(self, context: JobContext) -> Deadline | None:
        """Cancel ``context`` with ``"timeout"`` once its deadline passes; None when it has no
        deadline or is already cancelled."""
        remaining = context.remaining()
        if remaining is None or context.is_cancelled:
            return None
        entry = Deadline(self.clock() + remaining, next(self._seq), context)
        with self._wake:
            heapq.heappush(self._heap, entry)
            self._ensure_thread()
            self._wake.notify()
        return entry

    def cancel(self, entry: Deadline | None) -> None:
        """The job ended first: its deadline will not fire."""
        if entry is None:
            return
        with self._wake:
            if entry.cancelled:
                return
            entry.cancelled = True
            self._dead += 1
            if self._dead > len(self._heap) // 2:
                self._heap = [e for e in self._heap if not e.cancelled]
                heapq.heapify(self._heap)
                self._dead = 0

    def fire_due(self) -> float | None:
        """Cancel every context whose deadline has passed; seconds until the next one (None:
        nothing pending)."""
        due: list[JobContext] = []
        with self._wake:
            now = self.clock()
            while self._heap and (self._heap[0].cancelled or self._heap[0].due <= now):
                entry = heapq.heappop(self._heap)
                if entry.cancelled:
                    self._dead -= 1
                    continue
                entry.cancelled = True  # fired: a later cancel() is a no-op
                due.append(entry.context)
            wait = self._heap[0].due - now if self._heap else None
        for context in due:
            context.cancel("timeout")
        return wait

    # --- thread --------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._start and (self._thread is None or not self._thread.is_alive()):
            self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.fire_due()
            except Exception:  # never leave deadlines unwatched for a bug in one round
                log.exception("firing job deadlines failed; retrying")
            with self._wake:  # the next due time is read under the lock schedule() takes
                wait = self._heap[0].due - self.clock() if self._heap else MAX_SLEEP_S
                if wait > 0:
                    self._wake.wait(min(wait, MAX_SLEEP_S))


#: The worker process's scheduler (started on first use).
DEADLINES = DeadlineScheduler()
