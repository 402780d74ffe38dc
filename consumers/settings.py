"""The worker's settings: every flag's value (:class:`ServiceSettings`) and what the loop needs
of them (:class:`WorkerSettings`), checked in one place.

A bad setting is refused with one line naming the flag to change (``--concurrency must be
1..1000, got 0``): the CLI prints it and exits with code 2, before anything is received.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bridge.timing import (
    DEFAULT_CANCEL_GRACE_S,
    DEFAULT_DRAIN_TIMEOUT_S,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_JOB_TIMEOUT_S,
    DEFAULT_LIFECYCLE_HOOK_TIMEOUT_S,
    DEFAULT_STALE_CHECK_AGE_S,
    SQS_VISIBILITY_CAP_S,
    TimingError,
    TimingModel,
)
from consumers.deletes import DELETE_WINDOW_S
from consumers.intake import Intake

#: Timing model field -> the flag a user sets, for error messages.
FLAG_OF = {
    "visibility_timeout_s": "--visibility-timeout (the jobs queue's VisibilityTimeout)",
    "heartbeat_interval_s": "--heartbeat-interval",
    "task_heartbeat_s": "--task-heartbeat-seconds",
    "task_timeout_s": "--task-timeout-seconds",
    "max_queue_wait_s": "--max-queue-wait",
    "job_timeout_s": "--job-timeout",
    "cancel_grace_s": "--cancel-grace",
    "drain_timeout_s": "--drain-timeout",
    "lifecycle_hook_timeout_s": "--lifecycle-hook-timeout",
    "stale_check_age_s": "--stale-check-age",
    "max_receive_count": "the jobs queue's maxReceiveCount",
}
#: More threads than this per worker is a mistake (run more workers instead).
MAX_CONCURRENCY = 1000
#: SQS's longest long poll.
MAX_WAIT_SECONDS = 20
#: The longest --delete-window: full batches of ten need no more at any useful completion rate,
#: and a longer wait only keeps more answered messages in flight.
MAX_DELETE_WINDOW_S = 60.0
#: Jobs a worker runs at once unless told (--concurrency); the timing model's costs assume it.
DEFAULT_CONCURRENCY = 4
#: Deliveries of one job that may end in a crash before its task fails Bridge.HandlerCrashed.
DEFAULT_CRASH_LIMIT = 3


def parse_job_timeouts(text: str | None) -> dict[str, int]:
    """``render=7200,thumb=60`` -> {"render": 7200, "thumb": 60}."""
    overrides: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        job_type, sep, seconds = item.partition("=")
        if not sep or not job_type.strip() or not seconds.strip().isdigit():
            raise ValueError(f"--job-timeouts entry {item!r} must look like TYPE=SECONDS")
        overrides[job_type.strip()] = int(seconds)
    return overrides


def check_timing(timing: TimingModel, setting: str | None = None) -> None:
    """Raise the model's first broken rule as a :class:`TimingError` naming the flag to change
    (``setting`` instead, when given: a per-type override)."""
    problems = timing.violations()
    if problems:
        problem = problems[0]
        raise TimingError(setting or FLAG_OF.get(problem.setting, problem.setting), problem.message)


@dataclass(frozen=True)
class WorkerSettings:
    """What the loop (:class:`consumers.worker.Worker`) needs; checked when built."""

    jobs_queue_url: str
    results_queue_url: str
    jobs_dlq_url: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    wait_seconds: int = 20
    timing: TimingModel = field(default_factory=TimingModel)
    #: Per job type: a job timeout other than ``timing.job_timeout_s``.
    job_timeouts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    intake: Intake = field(default_factory=Intake)
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    instance_id: str | None = None
    #: See :attr:`ServiceSettings.crash_limit`.
    crash_limit: int = DEFAULT_CRASH_LIMIT
    #: How long an answered job message may wait to share a DeleteMessageBatch
    #: (:mod:`consumers.deletes`; 0: deleted with its result's batch).
    delete_window_s: float = DELETE_WINDOW_S

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"--concurrency must be 1..{MAX_CONCURRENCY}, got {self.concurrency}")
        if not 0 <= self.wait_seconds <= MAX_WAIT_SECONDS:
            raise ValueError(
                f"--wait-seconds must be 0..{MAX_WAIT_SECONDS} (SQS long poll), "
                f"got {self.wait_seconds}"
            )
        if not 0 <= self.delete_window_s <= MAX_DELETE_WINDOW_S:
            raise ValueError(
                f"--delete-window must be 0..{MAX_DELETE_WINDOW_S:.0f} seconds, "
                f"got {self.delete_window_s}"
            )
        check_timing(self.timing)
        self._check_crash_limit()
        for job_type, seconds in self.job_timeouts.items():
            if not job_type:
                raise ValueError("--job-timeouts: a job timeout override needs a job type")
            check_timing(
                self.timing.with_values(job_timeout_s=seconds), f"--job-timeouts {job_type}"
            )

    def _check_crash_limit(self) -> None:
        if self.crash_limit < 1:
            raise ValueError(f"--crash-limit must be 1 or more, got {self.crash_limit}")

    @property
    def effective_crash_limit(self) -> int:
        """The crash limit, lowered below the jobs queue's maxReceiveCount when it is not
        (:func:`consumers.compose.warn_about` says so at start): the limit must be reached
        before the queue's redrive dead-letters the job, so a crashing job fails with its exit
        signal, never ``Bridge.DeadLettered``."""
        receives = self.timing.max_receive_count
        if receives is None or self.crash_limit < receives:
            return self.crash_limit
        return max(1, receives - 1)

    def job_timeout_s(self, job_type: str) -> float | None:
        return self.job_timeouts.get(job_type, self.timing.job_timeout_s)


@dataclass(frozen=True)
class ServiceSettings:
    """Every ``callback-bridge worker`` flag's value, by the flag's name; the CLI fills it from
    flags and environment variables, :func:`consumers.compose.build_service` builds from it.
    Where the queues are (URLs, the group, the hook) comes separately, in the
    :class:`~bridge.config.BridgeConfig` that also builds the clients."""

    handler: str | None = None
    command: str | None = None
    isolation: str = "thread"
    concurrency: int = DEFAULT_CONCURRENCY
    wait_seconds: int = 20
    #: See :attr:`WorkerSettings.delete_window_s`.
    delete_window: float = DELETE_WINDOW_S
    #: None: the jobs queue's own VisibilityTimeout.
    visibility_timeout: int | None = None
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL_S
    job_timeout: int = DEFAULT_JOB_TIMEOUT_S
    #: ``render=7200,thumb=60``, as given.
    job_timeouts: str | None = None
    cancel_grace: float = DEFAULT_CANCEL_GRACE_S
    drain_timeout: int = DEFAULT_DRAIN_TIMEOUT_S
    stale_check_age: float = DEFAULT_STALE_CHECK_AGE_S
    max_queue_wait: int | None = None
    task_heartbeat_seconds: int | None = None
    #: The state machine's TimeoutSeconds, if the worker is told: a job is probed just after
    #: its task's deadline (``task_started_at`` + this) instead of at its execution's next
    #: heartbeat. None: unknown.
    task_timeout_seconds: int | None = None
    visibility_cap: int = SQS_VISIBILITY_CAP_S
    token_path: str | None = None
    input_path: str = "$"
    default_job_type: str = "default"
    claim_check_threshold: int | None = None
    claim_check_kms_key: str | None = None
    health_port: int | None = None
    #: ``stdout``, ``off`` or a file path.
    metrics: str = "off"
    instance_handling: str = "auto"
    scale_in_protection: bool = False
    protection_idle: float = 30.0
    lifecycle_hook_timeout: int = DEFAULT_LIFECYCLE_HOOK_TIMEOUT_S
    #: Where the worker keeps what must survive a restart (the result spool); None: the
    #: systemd ``$STATE_DIRECTORY``, else ``~/.local/state/callback-bridge``
    #: (:func:`consumers.spool.resolve_state_dir` decides).
    state_dir: str | None = None
    #: A job whose process crashed on this many deliveries fails ``Bridge.HandlerCrashed``.
    crash_limit: int = DEFAULT_CRASH_LIMIT
    #: Run job processes as this user (needs root, or CAP_SETUID and CAP_SETGID).
    run_as: str | None = None
    #: Comma-separated names of worker environment variables jobs also get.
    pass_env: str | None = None
    #: Hand the task token to job code (``job.token``); off: job code never sees it.
    expose_token: bool = False

    def timing(
        self,
        queue_visibility_s: int | None = None,
        max_receive_count: int | None = None,
        lifecycle_hook: bool = True,
    ) -> TimingModel:
        """The timing model of these flags; the queue's values where the flags leave them
        (``None``: not known yet, its rules are skipped). ``lifecycle_hook``: whether instance
        handling runs, so the hook's timeout matters."""
        return TimingModel(
            visibility_timeout_s=self.visibility_timeout or queue_visibility_s,
            heartbeat_interval_s=self.heartbeat_interval,
            task_heartbeat_s=self.task_heartbeat_seconds,
            task_timeout_s=self.task_timeout_seconds,
            max_queue_wait_s=self.max_queue_wait,
            job_timeout_s=self.job_timeout,
            cancel_grace_s=self.cancel_grace,
            drain_timeout_s=self.drain_timeout,
            lifecycle_hook_timeout_s=self.lifecycle_hook_timeout if lifecycle_hook else None,
            stale_check_age_s=self.stale_check_age,
            max_receive_count=max_receive_count,
            visibility_cap_s=self.visibility_cap,
        )
