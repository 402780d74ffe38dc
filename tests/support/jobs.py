"""Active jobs and a settable clock, for tests of the worker's job table and supervisor."""

from __future__ import annotations

from consumers.context import JobContext
from consumers.jobs import ActiveJob
from tests.support.messages import make_job


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def active_job(message_id: str = "m-1", clock: Clock | None = None) -> ActiveJob:
    """A received job (state RECEIVED) whose message id is ``message_id``."""
    job = make_job(job_id=f"job-{message_id}")
    clock = clock or Clock()
    return ActiveJob(
        message_id=message_id,
        receipt_handle=f"rh-{message_id}",
        job=job,
        context=JobContext(job, clock=clock),
        received_at=clock(),
        enqueued_at=None,
        receive_count=1,
    )
