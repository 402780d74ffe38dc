"""The worker's table of active jobs: one entry, and one :class:`JobState`, per received message.

A job's life is one state, moved only by :class:`JobTable`, each move checked against
:data:`TRANSITIONS`::

    received → running → finished | timed out | crashed → sending result → deleting → deleted | left
    received → stale → deleted | left                  (its task was closed before it ran)
    running → cancelled → deleted | left                (its task closed while it ran)
    received → crashed | timed out → ...       (the stale check failed, or outlasted the job)
    received | running | finished | timed out | crashed → released   (drain, stop, a failure)

Two things hold a slot: the job's message, until its state is final or ``deleting``, and the
job's thread, until it returns (Python cannot kill a thread, so a handler that ignores its
cancellation keeps its slot after its message is settled). The slot is freed when both are done,
exactly once. ``deleting`` (the result is on the results queue, the message waits for a batched
delete, :mod:`consumers.deletes`) holds no slot: the job's work is over and its task answered;
the entry stays in the table until the delete, so a redelivery of the message is recognised and
not run again.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bridge.contract import Job
from consumers.context import JobContext

log = logging.getLogger(__name__)


class JobState(enum.Enum):
    RECEIVED = "received"  # in hand; a stale check may run before it starts
    RUNNING = "running"  # the runner has it
    STALE = "stale"  # its task was already closed before it ran: delete, no result
    FINISHED = "finished"  # the runner returned an outcome to report
    TIMED_OUT = "timed out"  # past its deadline: reports Bridge.JobTimeout
    CRASHED = "crashed"  # the worker failed around it: reports Bridge.WorkerError
    CANCELLED = "cancelled"  # its task closed while it ran: delete, no result
    SENDING = "sending result"  # the result is with the sender, which deletes the message after
    DELETING = "deleting"  # the result is sent; the message waits for a batched delete (no slot)
    DELETED = "deleted"  # final: the message is gone from the jobs queue
    LEFT = "left in queue"  # final: not deleted (a send or delete failed); it will reappear
    RELEASED = "released"  # final: handed back to the queue (visibility 0) for another worker


#: Open states: nobody has taken charge of the message yet (see :meth:`JobTable.claim`).
OPEN = frozenset({JobState.RECEIVED, JobState.RUNNING})
FINAL = frozenset({JobState.DELETED, JobState.LEFT, JobState.RELEASED})
_CONCLUDED = (JobState.FINISHED, JobState.TIMED_OUT, JobState.CRASHED)
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.RECEIVED: frozenset(
        {JobState.RUNNING, JobState.STALE, JobState.CRASHED, JobState.TIMED_OUT, JobState.RELEASED}
    ),
    JobState.RUNNING: frozenset({*_CONCLUDED, JobState.CANCELLED, JobState.RELEASED}),
    JobState.STALE: frozenset({JobState.DELETED, JobState.LEFT}),
    JobState.CANCELLED: frozenset({JobState.DELETED, JobState.LEFT}),
    **{state: frozenset({JobState.SENDING, JobState.RELEASED}) for state in _CONCLUDED},
    JobState.SENDING: frozenset({JobState.DELETING, JobState.DELETED, JobState.LEFT}),
    JobState.DELETING: frozenset({JobState.DELETED, JobState.LEFT}),
    **{state: frozenset() for state in FINAL},
}


class IllegalTransition(RuntimeError):
    """A job was moved in a way its life does not allow: a bug in the worker."""


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
    #: Moved only by :class:`JobTable`.
    state: JobState = JobState.RECEIVED
    started_at: float | None = field(default=None)


class JobTable:
    """Thread-safe. ``on_slot_freed`` is called (outside the lock) whenever a slot frees up."""

    def __init__(self, on_slot_freed: Callable[[], None] | None = None) -> None:
        self._jobs: dict[str, ActiveJob] = {}
        #: Jobs whose thread has not returned yet.
        self._threads: set[str] = set()
        self._lock = threading.Lock()
        self._on_slot_freed = on_slot_freed
        #: Jobs whose result was sent and message deleted.
        self.completed = 0

    def add(self, active: ActiveJob) -> None:
        """Take a received job; its thread is about to start."""
        with self._lock:
            if active.message_id in self._jobs:
                raise IllegalTransition(f"job message {active.message_id} is already in the table")
            self._jobs[active.message_id] = active
            self._threads.add(active.message_id)

    def get(self, message_id: str) -> ActiveJob | None:
        with self._lock:
            return self._jobs.get(message_id)

    def snapshot(self) -> list[ActiveJob]:
        with self._lock:
            return list(self._jobs.values())

    def open_jobs(self) -> list[ActiveJob]:
        """Jobs nobody has taken charge of yet (received or running)."""
        with self._lock:
            return [a for a in self._jobs.values() if a.state in OPEN]

    @property
    def busy(self) -> int:
        """Slots in use: jobs whose thread runs or whose message is not settled yet (a message
        only awaiting its batched delete is settled enough: ``deleting`` holds no slot)."""
        with self._lock:
            return sum(1 for a in self._jobs.values() if self._holds_slot(a))

    @property
    def running(self) -> int:
        """Jobs whose thread has not returned."""
        with self._lock:
            return len(self._threads)

    def thread_running(self, message_id: str) -> bool:
        with self._lock:
            return message_id in self._threads

    # --- moving a job's state: the only code that does ------------------------------------
    def start(self, message_id: str, now: float) -> bool:
        """Received → running; False if the job was taken meanwhile (released by a drain)."""
        with self._lock:
            active = self._jobs.get(message_id)
            if active is None or active.state is not JobState.RECEIVED:
                return False
            self._set(active, JobState.RUNNING)
            active.started_at = now
            return True

    def claim(self, message_id: str, to: JobState) -> ActiveJob | None:
        """Take charge of an open job, exactly once: a finishing job, a cancellation, a timeout
        and a drain race for it; the one that gets the job back acts, the others get None."""
        with self._lock:
            active = self._jobs.get(message_id)
            if active is None or active.state not in OPEN:
                return None
            held = self._holds_slot(active)
            self._set(active, to)
            freed = self._settle(active, held)
        if freed:
            self._freed()
        return active

    def move(self, message_id: str, to: JobState) -> None:
        """The next step of a job its caller has claimed; an illegal one raises."""
        freed = False
        with self._lock:
            active = self._jobs.get(message_id)
            if active is None:
                raise IllegalTransition(f"job message {message_id} is not in the table ({to})")
            held = self._holds_slot(active)
            self._set(active, to)
            freed = self._settle(active, held)
        if freed:
            self._freed()

    def thread_done(self, message_id: str) -> None:
        """The job's thread returned (called once, by that thread)."""
        with self._lock:
            if message_id not in self._threads:
                raise IllegalTransition(f"job message {message_id}: its thread ended twice")
            active = self._jobs[message_id]
            held = self._holds_slot(active)
            self._threads.discard(message_id)
            freed = self._settle(active, held)
        if freed:
            self._freed()

    def _set(self, active: ActiveJob, to: JobState) -> None:
        """Called with the lock held."""
        if to not in TRANSITIONS[active.state]:
            log.error("job %s: illegal move %s → %s", active.job.job_id, active.state, to)
            raise IllegalTransition(
                f"job {active.job.job_id}: {active.state.value} → {to.value} is not allowed"
            )
        if active.state in (JobState.SENDING, JobState.DELETING) and to is JobState.DELETED:
            self.completed += 1
        active.state = to

    def _holds_slot(self, active: ActiveJob) -> bool:
        """Called with the lock held: whether the job counts against the worker's slots."""
        settled = active.state in FINAL or active.state is JobState.DELETING
        return not settled or active.message_id in self._threads

    def _settle(self, active: ActiveJob, held: bool) -> bool:
        """Called with the lock held, after a step: drop the job once its message is final and
        its thread returned. True when this step freed its slot (``held``: before the step)."""
        if active.state in FINAL and active.message_id not in self._threads:
            del self._jobs[active.message_id]
        return held and not self._holds_slot(active)

    def _freed(self) -> None:
        if self._on_slot_freed:
            self._on_slot_freed()
