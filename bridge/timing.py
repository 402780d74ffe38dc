"""The timing model: every clock in the bridge, and the inequalities that keep a job alive.

One module, one set of rules, used by the worker (its flags and the queue's attributes), the
state machine renderer (``HeartbeatSeconds`` / ``TimeoutSeconds``), ``local up`` and the demo;
Terraform mirrors the same inequalities in variable validation. ``docs/timing.md`` explains each
rule with a worked example.

The design choice: **liveness comes from SQS**, not from the task heartbeat. A running job's
message stays hidden because its worker keeps extending the visibility timeout; if the worker
dies, the message reappears within one visibility timeout, runs again, and after
``maxReceiveCount`` receives moves to the DLQ, whose handler fails the task with
``Bridge.DeadLettered``. The Step Functions ``HeartbeatSeconds`` clock starts when the job
message is *sent*, so queue wait counts against it; a backlog longer than ``HeartbeatSeconds``
would fail jobs nobody has seen yet. It is therefore **off by default**, and where a team sets
it, it must outlast the longest queue wait plus a crashed worker's redelivery.

Heartbeats are still sent (``heartbeat_interval_s``): they are how a worker learns that a task
was stopped or timed out, and so bound how long a cancelled job keeps running. They go **per
execution**, not per job: cancellation is per execution (stop, timeout, failure), so a worker
running k jobs of one execution sends one heartbeat per interval for them (a rotating
representative) and probes the others only when that one answers "task closed". Where
``HeartbeatSeconds`` is set, every task is heartbeated on its own, at ``heartbeat_every_s``.

The defaults come from arithmetic on requests, not taste (``docs/timing.md`` shows it). Keep-alive
requests per running job and hour, for a worker running n jobs of which k share an execution::

    R(n, k) = (3600 / (V/3)) * ceil(n/10) / n  +  (3600 / h) * ceil(n/k) / n

(:func:`keepalive_requests_per_job_hour`). Targets: R(4, 1) <= 15 (default ``--concurrency 4``,
one job per execution), R(>=10, >=10) <= 5, and a region with 100,000 jobs in flight, one per
execution, keeps SendTaskHeartbeat at <= 80 % of its 500/s refill: 100,000 / h <= 400, so
h >= 250 s. V = 600 s (extension every 200 s: 4.5 requests per job-hour at n = 4) and h = 360 s
(10 per job-hour; 278/s at 100,000 jobs, 56 % of the refill) give R(4, 1) = 14.5 and
R(10, 10) = 2.8. The price is cancellation latency (:attr:`TimingModel.cancellation_bound_s`:
6.8 min at defaults; ``--heartbeat-interval`` tightens it) and crash redelivery (a dead worker's
job reappears after V = 10 min, was 5).

Each field may be ``None`` where the component validating it does not know it (the worker does
not know the state machine's ``TimeoutSeconds``); rules that need an unknown value are skipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

#: SQS keeps a received message hidden at most 12 hours from its receipt, extensions included.
SQS_VISIBILITY_CAP_S = 43_200
#: A STANDARD execution lives at most one year.
MAX_EXECUTION_S = 31_536_000
#: An EC2 Auto Scaling lifecycle action lasts at most 48 hours, or 100 x its heartbeat timeout.
LIFECYCLE_GLOBAL_CAP_S = 172_800
LIFECYCLE_HEARTBEAT_MAX_S = 7_200
#: Time for a finished job's result to be sent and its message deleted, and for a released
#: message to be handed back: the margin every deadline keeps.
RESULT_SLACK_S = 60
#: The spot interruption notice (best effort) comes this long before the instance stops.
SPOT_NOTICE_S = 120

DEFAULT_VISIBILITY_TIMEOUT_S = 600
#: A failed visibility extension round is tried again this soon, not at the next round.
EXTEND_RETRY_S = 15.0
DEFAULT_HEARTBEAT_INTERVAL_S = 360.0
#: Heartbeat schedules are spread by +/- this fraction so a fleet does not beat in step.
HEARTBEAT_JITTER = 0.1
#: The keep-alive thread wakes this often to see what is due.
KEEPALIVE_TICK_S = 0.25
#: A task whose TimeoutSeconds deadline the worker knows is probed this long after it.
DEADLINE_PROBE_DELAY_S = 5.0
#: SendTaskHeartbeat's token bucket (bucket size, refill per second) per region class: the
#: large regions (us-east-1, us-west-2, eu-west-1) and all others. SendTaskSuccess and
#: SendTaskFailure have buckets of their own, of the same size.
HEARTBEAT_QUOTA = {"large": (3000, 500.0), "other": (1500, 300.0)}
#: The share of a refill rate the defaults may use (room for jitter, retries, other clients).
QUOTA_HEADROOM = 0.8
DEFAULT_MAX_QUEUE_WAIT_S = 1_800
DEFAULT_CANCEL_GRACE_S = 10.0
DEFAULT_DRAIN_TIMEOUT_S = 1_800
DEFAULT_LIFECYCLE_HOOK_TIMEOUT_S = 600
DEFAULT_STALE_CHECK_AGE_S = 30.0
DEFAULT_MAX_RECEIVE_COUNT = 5
DEFAULT_TASK_TIMEOUT_S = 86_400


def longest_job_s(visibility_cap_s: int = SQS_VISIBILITY_CAP_S) -> int:
    """The longest per-job timeout the cap allows: a job must be killed, reported and deleted
    before SQS makes its message visible again."""
    return int(visibility_cap_s - DEFAULT_CANCEL_GRACE_S - RESULT_SLACK_S)


DEFAULT_JOB_TIMEOUT_S = 12 * 3600 - 600  # 11 h 50 min: inside the 12-hour cap with margin


class TimingError(ValueError):
    """An impossible timing combination; ``setting`` names what to change."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


@dataclass(frozen=True)
class TimingModel:
    """Every duration in seconds. See ``docs/timing.md`` for the picture."""

    #: The jobs queue's VisibilityTimeout; each extension buys this much again.
    visibility_timeout_s: int | None = DEFAULT_VISIBILITY_TIMEOUT_S
    #: How often a worker sends SendTaskHeartbeat for each execution it runs jobs of
    #: (cancellation latency); for each task where ``task_heartbeat_s`` is set.
    heartbeat_interval_s: float | None = DEFAULT_HEARTBEAT_INTERVAL_S
    #: The task's HeartbeatSeconds; None (the default) turns it off.
    task_heartbeat_s: int | None = None
    #: The task's TimeoutSeconds: queue wait + run + reporting, all retries by redelivery.
    task_timeout_s: int | None = DEFAULT_TASK_TIMEOUT_S
    #: The longest a job may wait in the queue (the scaling policy's acceptable backlog).
    max_queue_wait_s: int | None = DEFAULT_MAX_QUEUE_WAIT_S
    #: The longest any job may run on a worker (the largest per-type override included).
    job_timeout_s: int | None = DEFAULT_JOB_TIMEOUT_S
    #: After a timeout or cancellation, SIGTERM then SIGKILL after this grace.
    cancel_grace_s: float | None = DEFAULT_CANCEL_GRACE_S
    #: How long a stopping worker waits for running jobs before releasing them.
    drain_timeout_s: int | None = DEFAULT_DRAIN_TIMEOUT_S
    #: The termination lifecycle hook's HeartbeatTimeout (None: no hook).
    lifecycle_hook_timeout_s: int | None = DEFAULT_LIFECYCLE_HOOK_TIMEOUT_S
    #: A message older than this is heartbeated before it runs, to catch stale jobs.
    stale_check_age_s: float | None = DEFAULT_STALE_CHECK_AGE_S
    #: The jobs queue's maxReceiveCount (crashes and releases each cost one receive).
    max_receive_count: int | None = DEFAULT_MAX_RECEIVE_COUNT
    #: SQS's 12-hour cap; a setting only so tests can shrink it.
    visibility_cap_s: int = SQS_VISIBILITY_CAP_S

    # --- derived values ------------------------------------------------------------------
    @property
    def extend_every_s(self) -> float:
        """Extend at half the visibility timeout. A round whose call fails is tried again every
        :data:`EXTEND_RETRY_S` (the keep-alive does), so the other half (300 s at defaults)
        holds about twenty tries, where a third with retries only at the next round held one.
        A timeout too short for the half to hold two retries (under 60 s: tests, or a team's
        choice) keeps the third, whose margin is two whole rounds."""
        visibility = self.visibility_timeout_s or DEFAULT_VISIBILITY_TIMEOUT_S
        half = visibility / 2
        return max(1.0, half if half >= 2 * EXTEND_RETRY_S else visibility / 3)

    @property
    def heartbeat_every_s(self) -> float:
        """The heartbeat period: the interval, but at most a third of ``HeartbeatSeconds`` where
        it is set, so two lost heartbeats still keep the task."""
        interval = self.heartbeat_interval_s or DEFAULT_HEARTBEAT_INTERVAL_S
        if self.task_heartbeat_s is None:
            return float(interval)
        return float(max(1.0, min(interval, self.task_heartbeat_s / 3)))

    @property
    def per_task_heartbeats(self) -> bool:
        """Whether every task needs its own heartbeats (``HeartbeatSeconds`` is set): then one
        heartbeat per execution would let the others' HeartbeatSeconds run out."""
        return self.task_heartbeat_s is not None

    @property
    def lifecycle_heartbeat_every_s(self) -> float:
        """Heartbeat a held lifecycle action at a third of the hook's timeout, as visibility is
        extended: two missed heartbeats still keep the instance (``consumers.ec2`` uses this)."""
        return max(1.0, (self.lifecycle_hook_timeout_s or DEFAULT_LIFECYCLE_HOOK_TIMEOUT_S) / 3)

    @property
    def stop_timeout_s(self) -> int:
        """systemd's TimeoutStopSec: drain, then kill with grace, then hand messages back."""
        drain = self.drain_timeout_s or 0
        return int(drain + (self.cancel_grace_s or 0) + RESULT_SLACK_S)

    @property
    def lifecycle_global_timeout_s(self) -> int:
        hook = self.lifecycle_hook_timeout_s or 0
        return min(LIFECYCLE_GLOBAL_CAP_S, 100 * hook)

    @property
    def min_task_heartbeat_s(self) -> int:
        """The smallest safe HeartbeatSeconds: a job may wait the longest queue wait, or be
        redelivered after its worker died just after a heartbeat (one interval, then one
        visibility timeout, then a queue wait again), and must still be heartbeated in time."""
        return int(
            (self.max_queue_wait_s or 0)
            + (self.visibility_timeout_s or 0)
            + (self.heartbeat_interval_s or 0)
            + RESULT_SLACK_S
        )

    @property
    def min_task_timeout_s(self) -> int:
        """The smallest safe TimeoutSeconds: the longest wait plus the longest run, reported."""
        return int(
            (self.max_queue_wait_s or 0)
            + (self.job_timeout_s or 0)
            + (self.cancel_grace_s or 0)
            + RESULT_SLACK_S
        )

    @property
    def cancellation_bound_s(self) -> float:
        """How late a worker notices, at the latest, that its job's execution was stopped, timed
        out or failed, and has stopped the job: the longest gap between two heartbeats of the
        execution (the interval plus jitter, one keep-alive tick late), plus the kill grace.
        Add the heartbeat call's own time (under a second unless Step Functions throttles)."""
        gap = self.heartbeat_every_s * (1 + HEARTBEAT_JITTER) + KEEPALIVE_TICK_S
        return gap + (self.cancel_grace_s or 0)

    # --- rules ---------------------------------------------------------------------------
    def violations(self) -> list[TimingError]:
        """Every broken rule, each naming the setting to change."""
        found: list[TimingError] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value <= 0 and f.name != "stale_check_age_s":
                found.append(TimingError(f.name, f"must be positive, got {value}"))
        if self.stale_check_age_s is not None and self.stale_check_age_s < 0:
            found.append(TimingError("stale_check_age_s", "must be 0 or more"))
        if found:
            return found
        found += self._sqs_rules() + self._task_rules() + self._shutdown_rules()
        return found

    def _sqs_rules(self) -> list[TimingError]:
        found = []
        cap = self.visibility_cap_s
        if self.visibility_timeout_s is not None and self.visibility_timeout_s > cap:
            found.append(
                TimingError("visibility_timeout_s", f"SQS allows at most {cap} s (12 hours)")
            )
        if self.job_timeout_s is not None and self.job_timeout_s > longest_job_s(cap):
            found.append(
                TimingError(
                    "job_timeout_s",
                    f"{self.job_timeout_s} s is past what SQS can keep a message hidden "
                    f"({cap} s from receipt, minus {int(DEFAULT_CANCEL_GRACE_S) + RESULT_SLACK_S}"
                    f" s to kill and report): at most {longest_job_s(cap)} s; split longer "
                    "work into several jobs",
                )
            )
        if self.max_receive_count is not None and self.max_receive_count < 1:
            found.append(TimingError("max_receive_count", "must be at least 1"))
        return found

    def _task_rules(self) -> list[TimingError]:
        found = []
        if self.task_heartbeat_s is not None and self.task_heartbeat_s < self.min_task_heartbeat_s:
            found.append(
                TimingError(
                    "task_heartbeat_s",
                    f"HeartbeatSeconds {self.task_heartbeat_s} is shorter than the longest "
                    f"queue wait ({self.max_queue_wait_s} s) + a redelivery "
                    f"({self.visibility_timeout_s} s) + the heartbeat interval "
                    f"({self.heartbeat_interval_s} s) + {RESULT_SLACK_S} s: jobs would time out "
                    f"in the queue. Use at least {self.min_task_heartbeat_s}, or leave it "
                    "unset (liveness then comes from SQS)",
                )
            )
        if self.task_timeout_s is not None:
            if self.task_timeout_s > MAX_EXECUTION_S:
                found.append(TimingError("task_timeout_s", "at most one year (31536000 s)"))
            elif self.task_timeout_s < self.min_task_timeout_s:
                found.append(
                    TimingError(
                        "task_timeout_s",
                        f"TimeoutSeconds {self.task_timeout_s} is shorter than the longest queue "
                        f"wait ({self.max_queue_wait_s} s) + the job timeout "
                        f"({self.job_timeout_s} s) + {int(self.cancel_grace_s or 0)} + "
                        f"{RESULT_SLACK_S} s: use at least {self.min_task_timeout_s}",
                    )
                )
            if self.task_heartbeat_s is not None and self.task_heartbeat_s >= self.task_timeout_s:
                found.append(TimingError("task_heartbeat_s", "must be shorter than task_timeout_s"))
        return found

    def _shutdown_rules(self) -> list[TimingError]:
        found = []
        hook = self.lifecycle_hook_timeout_s
        if hook is not None:
            if hook > LIFECYCLE_HEARTBEAT_MAX_S or hook < 30:
                found.append(
                    TimingError("lifecycle_hook_timeout_s", "AWS allows 30 to 7200 seconds")
                )
            elif self.drain_timeout_s is not None and (
                self.stop_timeout_s > self.lifecycle_global_timeout_s
            ):
                found.append(
                    TimingError(
                        "drain_timeout_s",
                        f"drain + kill + hand-back ({self.stop_timeout_s} s) outlasts the "
                        f"lifecycle action's global timeout ({self.lifecycle_global_timeout_s} s"
                        " = min(48 h, 100 x the hook's heartbeat timeout))",
                    )
                )
        return found

    def validate(self) -> TimingModel:
        """Raise the first violation (each names its setting); return self when consistent."""
        problems = self.violations()
        if problems:
            raise problems[0]
        return self

    def with_values(self, **values: Any) -> TimingModel:
        """A copy with ``values`` replaced; ``None`` values are ignored (not given)."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


# --- request arithmetic (docs/timing.md; the benchmark's fleet model calls these) -----------
def keepalive_requests_per_job_hour(
    jobs_per_worker: int, jobs_per_execution: int = 1, timing: TimingModel | None = None
) -> float:
    """Keep-alive requests (ChangeMessageVisibilityBatch + SendTaskHeartbeat) per running job
    per hour, for a worker running ``jobs_per_worker`` jobs, ``jobs_per_execution`` of each
    execution (capped at ``jobs_per_worker``)::

        (3600 / (V/2)) * ceil(n/10) / n  +  (3600 / h) * ceil(n/k) / n

    Extensions go in batches of ten per round for the whole worker; heartbeats go one per
    execution per interval (one per task where ``HeartbeatSeconds`` is set: k = 1)."""
    if jobs_per_worker < 1 or jobs_per_execution < 1:
        raise ValueError("jobs_per_worker and jobs_per_execution must be at least 1")
    model = timing or TimingModel()
    n = jobs_per_worker
    k = 1 if model.per_task_heartbeats else min(jobs_per_execution, n)
    extensions = 3600 / model.extend_every_s * math.ceil(n / 10)
    heartbeats = 3600 / model.heartbeat_every_s * math.ceil(n / k)
    return (extensions + heartbeats) / n


def heartbeats_per_second(
    jobs_in_flight: float, jobs_per_execution: int = 1, timing: TimingModel | None = None
) -> float:
    """SendTaskHeartbeat calls per second a fleet sends with ``jobs_in_flight`` running jobs,
    ``jobs_per_execution`` of each execution on the same worker (the account-wide quota
    counts them all)."""
    model = timing or TimingModel()
    k = 1 if model.per_task_heartbeats else max(1, jobs_per_execution)
    return jobs_in_flight / k / model.heartbeat_every_s


def max_jobs_in_flight_for_heartbeats(
    region: str = "large", jobs_per_execution: int = 1, timing: TimingModel | None = None
) -> int:
    """The most jobs in flight whose heartbeats stay within ``QUOTA_HEADROOM`` of the region
    class's SendTaskHeartbeat refill rate (``region``: ``"large"`` or ``"other"``)."""
    refill = HEARTBEAT_QUOTA[region][1]
    per_job = heartbeats_per_second(1, jobs_per_execution, timing)
    return int(QUOTA_HEADROOM * refill / per_job)


def min_heartbeat_interval_s(
    jobs_in_flight: float, region: str = "large", jobs_per_execution: int = 1
) -> float:
    """The shortest heartbeat interval that keeps ``jobs_in_flight`` within the headroom of
    the region's refill rate: what ``--heartbeat-interval`` may be tightened to."""
    refill = HEARTBEAT_QUOTA[region][1]
    return jobs_in_flight / max(1, jobs_per_execution) / (QUOTA_HEADROOM * refill)
