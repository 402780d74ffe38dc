"""What a running job can learn about itself: whether it should stop, why, and its deadline.

One :class:`JobContext` exists per running job. The worker (or a runner enforcing a deadline)
calls :meth:`JobContext.cancel`; runners and cooperative handlers watch
:attr:`JobContext.cancelled`. Cancellation is advisory for code running in a thread (Python
cannot kill a thread) and enforced for code running in a process (its process group is signalled,
see :mod:`consumers.process`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

from bridge.contract import Job

#: Why a job is asked to stop.
#:
#: * ``"task-closed"``: its Step Functions task is gone (execution stopped, task timed out): nobody
#:   wants the result, so none is sent.
#: * ``"timeout"``: the job ran past its own deadline: the task fails with ``Bridge.JobTimeout``.
#: * ``"shutdown"``: the worker is going away: no result is sent, the message goes back to the
#:   queue for another worker.
CancelReason = Literal["task-closed", "timeout", "shutdown"]
CANCEL_REASONS: tuple[CancelReason, ...] = get_args(CancelReason)


@dataclass(eq=False)
class JobContext:
    """Cancellation state and deadline of one running job; safe to share between threads.

    ``deadline`` is a :func:`time.monotonic` value (``None``: no limit). Nothing here acts on
    the deadline by itself: runners watch it and call ``cancel("timeout")`` when it passes.

    :meth:`seen_as` gives handler code the same context with another view of the job (one
    without its task token): cancellation, reason and deadline stay shared with this one.
    """

    job: Job
    cancelled: threading.Event = field(default_factory=threading.Event)
    reason: CancelReason | None = None
    deadline: float | None = None
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def seen_as(self, job: Job) -> JobContext:
        """This context, with ``job`` as its job: what a handler is given. Cancelling either
        cancels both; the deadline is this one's."""
        if job is self.job:
            return self
        return _JobContextView(self, job)

    @classmethod
    def with_timeout(
        cls, job: Job, timeout_s: float | None, clock: Callable[[], float] = time.monotonic
    ) -> JobContext:
        """A context whose deadline is ``timeout_s`` seconds from now (``None``: no limit)."""
        deadline = None if timeout_s is None else clock() + timeout_s
        return cls(job, deadline=deadline, clock=clock)

    def cancel(self, reason: CancelReason) -> bool:
        """Ask the job to stop. The first reason wins (a job that timed out and whose task then
        closed stays a timeout); returns whether this call was the one that cancelled it."""
        if reason not in CANCEL_REASONS:
            raise ValueError(f"unknown cancel reason {reason!r}; expected one of {CANCEL_REASONS}")
        with self._lock:
            if self.reason is not None:
                return False
            self.reason = reason
        self.cancelled.set()
        return True

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or ``None`` without a deadline."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self.clock())

    @property
    def expired(self) -> bool:
        """The deadline has passed (whether or not anyone has cancelled the job yet)."""
        remaining = self.remaining()
        return remaining is not None and remaining <= 0

    def check_deadline(self) -> bool:
        """Cancel with ``"timeout"`` if the deadline has passed; returns :attr:`is_cancelled`."""
        if self.expired:
            self.cancel("timeout")
        return self.is_cancelled

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep up to ``timeout`` seconds, waking early on cancellation: a cooperative
        handler's replacement for :func:`time.sleep`. Returns :attr:`is_cancelled`."""
        return self.cancelled.wait(timeout)


class _JobContextView(JobContext):
    """A :class:`JobContext` that shows another job but shares its source's state."""

    def __init__(self, source: JobContext, job: Job) -> None:  # no dataclass fields of its own
        self._source = source
        self._job = job

    @property
    def job(self) -> Job:  # type: ignore[override]
        return self._job

    @property
    def cancelled(self) -> threading.Event:  # type: ignore[override]
        return self._source.cancelled

    @property
    def reason(self) -> CancelReason | None:  # type: ignore[override]
        return self._source.reason

    @property
    def deadline(self) -> float | None:  # type: ignore[override]
        return self._source.deadline

    @deadline.setter
    def deadline(self, value: float | None) -> None:
        self._source.deadline = value

    @property
    def clock(self) -> Callable[[], float]:  # type: ignore[override]
        return self._source.clock

    def cancel(self, reason: CancelReason) -> bool:
        return self._source.cancel(reason)

    def seen_as(self, job: Job) -> JobContext:
        return self._source.seen_as(job)

    def __repr__(self) -> str:
        return f"JobContext(job={self._job!r}, reason={self.reason!r}, deadline={self.deadline!r})"
