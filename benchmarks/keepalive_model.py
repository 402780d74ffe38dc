"""Keep-alive requests per job-hour on paper, for the plot and to check the probes against.

The arithmetic is the timing model's (``bridge.timing.keepalive_requests_per_job_hour``: one
extension call per ten jobs of a worker every half of the visibility timeout, one heartbeat
per execution a worker runs jobs of, every heartbeat interval); this module only fixes the
parameters the plot varies (jobs per worker, jobs per execution, heartbeat interval).
"""

from __future__ import annotations

import math

from bridge import timing


def requests_per_job_hour(
    jobs_per_worker: int,
    jobs_per_execution: int = 1,
    heartbeat_interval_s: float | None = None,
    visibility_timeout_s: int | None = None,
) -> float:
    """ChangeMessageVisibilityBatch + SendTaskHeartbeat calls per running job per hour, at the
    defaults unless an interval is given."""
    model = timing.TimingModel().with_values(
        heartbeat_interval_s=heartbeat_interval_s, visibility_timeout_s=visibility_timeout_s
    )
    per_execution = getattr(timing, "keepalive_requests_per_job_hour", None)
    if per_execution is not None:
        return float(per_execution(jobs_per_worker, jobs_per_execution, model))
    # Before heartbeats went per execution: one per job per interval.
    n = jobs_per_worker
    extensions = 3600 / model.extend_every_s * math.ceil(n / 10)
    return (extensions + n * 3600 / (model.heartbeat_interval_s or 60)) / n
