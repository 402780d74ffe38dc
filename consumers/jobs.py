"""The worker's table of active jobs: one entry per received message, until it is settled.

A job holds its slot from receipt until *both* its thread has returned and its message is
settled (result sent and message deleted, deleted as stale or cancelled, or released back to
the queue). Every path through the worker ends in :meth:`JobTable.thread_done` and
:meth:`JobTable.settle`, so a slot can never leak; the table is the single place that counts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bridge.contract import Job
from consumers.context import JobContext


@dataclass
class ActiveJob:
    message_id: str
    receipt_handle: str
    job: Job
    context: JobContext
    #: time.monotonic() at receipt: SQS's 12-hour visibility cap counts from here.
    received_at: float
    enqueued_at: datetime | None
    receive_count: int
    #: The job's thread has returned (the runner is done with it).
    thread_done: bool = False
    #: One path (result, discard or release) has taken charge of the message; see claim().
    claimed: bool = False
    #: The message is settled: nothing more will be sent or changed for it.
    settled: bool = False
    #: A result was handed to the sender (possibly before the thread returned, for a Python
    #: handler that ignored its timeout).
    result_submitted: bool = False
    #: The message was handed back to the queue (visibility 0).
    released: bool = False
    started_at: float | None = field(default=None)


class JobTable:
    """Thread-safe. ``on_change`` is called (outside the lock) whenever a slot frees up."""

    def __init__(self, on_slot_freed: Callable[[], None] | None = None) -> None:
        self._jobs: dict[str, ActiveJob] = {}
        self._lock = threading.Lock()
        self._on_slot_freed = on_slot_freed
        self.completed = 0

    def add(self, active: ActiveJob) -> None:
        with self._lock:
            self._jobs[active.message_id] = active

    def get(self, message_id: str) -> ActiveJob | None:
        with self._lock:
            return self._jobs.get(message_id)

    def snapshot(self) -> list[ActiveJob]:
        with self._lock:
            return list(self._jobs.values())

    @property
    def busy(self) -> int:
        """Slots in use: jobs whose thread runs or whose message is not settled yet."""
        with self._lock:
            return len(self._jobs)

    @property
    def running(self) -> int:
        with self._lock:
            return sum(1 for job in self._jobs.values() if not job.thread_done)

    def thread_done(self, message_id: str) -> None:
        self._update(message_id, thread_done=True)

    def claim(self, message_id: str) -> ActiveJob | None:
        """Take charge of a message exactly once: a finishing job, a cancellation and a drain
        release can race for it; the one that gets the job back acts, the others do nothing."""
        with self._lock:
            active = self._jobs.get(message_id)
            if active is None or active.claimed:
                return None
            active.claimed = True
            return active

    def settle(self, message_id: str, delivered: bool = False) -> None:
        """The claimed message is done with (sent and deleted, deleted, or released)."""
        with self._lock:
            active = self._jobs.get(message_id)
            if active is None or active.settled:
                return
            active.settled = True
            self.completed += delivered
        self._update(message_id)

    def _update(self, message_id: str, thread_done: bool = False) -> None:
        freed = False
        with self._lock:
            active = self._jobs.get(message_id)
            if active is None:
                return
            if thread_done:
                active.thread_done = True
            if active.thread_done and active.settled:
                del self._jobs[message_id]
                freed = True
        if freed and self._on_slot_freed:
            self._on_slot_freed()
