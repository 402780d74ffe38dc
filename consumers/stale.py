"""The stale check: before running a job whose message was delivered before or is old, ask Step
Functions whether its task is still open (one heartbeat), so a job whose task is over (a worker
crash, a DLQ redrive, an execution stopped while the job was queued) is deleted, not run.

Fresh first deliveries skip the check, so the steady state costs nothing extra.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from consumers.jobs import ActiveJob
from consumers.keepalive import probe_task

log = logging.getLogger(__name__)

#: Pauses between stale checks Step Functions did not answer (15.5 s in all; then the job runs).
STALE_CHECK_RETRIES_S = (0.5, 1.0, 2.0, 4.0, 8.0)


def age_s(active: ActiveJob) -> float:
    """Seconds since the job's task started when the job says (a DLQ redrive resets SQS's own
    timestamps), else since its message was sent."""
    since = active.job.task_started_at or active.enqueued_at
    return (datetime.now(UTC) - since).total_seconds() if since else 0.0


def needs_check(active: ActiveJob, threshold_s: float | None) -> bool:
    """Redelivered, or older than ``--stale-check-age``."""
    return active.receive_count > 1 or (threshold_s is not None and age_s(active) >= threshold_s)


def closed_task_error(sfn: Any, active: ActiveJob) -> str | None:
    """The closed-task error of the job's token, or None (open, or still unknown after
    :data:`STALE_CHECK_RETRIES_S`). An unanswered heartbeat (throttling, an outage) is asked
    again rather than taken for "open": a chaos campaign found stale jobs run in full because
    their one check fell in a Step Functions outage. The keep-alive holds the message meanwhile;
    a cancellation ends the wait (task closed: stale)."""
    code, answered = probe_task(sfn, active.job.token)
    for delay in STALE_CHECK_RETRIES_S:
        if answered:
            break
        if active.context.wait(delay):
            return "TaskTimedOut" if active.context.reason == "task-closed" else None
        code, answered = probe_task(sfn, active.job.token)
    return code
