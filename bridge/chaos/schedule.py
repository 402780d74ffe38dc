"""The campaign's plan and its seeded fault schedule.

Everything random about a campaign is drawn here from ``random.Random(seed)`` before anything
runs: which jobs fail or hang, when each execution starts, which consumer is killed when and
restarted how much later, the outage windows, which executions are stopped, when each poison
message goes in. The same seed gives the same schedule (timing on a shared machine still varies,
so outcomes are compared by invariants, not by value).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from bridge.chaos.proxy import FaultRates
from bridge.timing import DEFAULT_CANCEL_GRACE_S, RESULT_SLACK_S

#: The job type whose per-type job timeout is short (jobs that hang past it).
HANG_TYPE = "hang"
JOB_TYPE = "chaos"
#: How crashing jobs crash, in turn: the worker must name the signal or the exit status.
CRASH_STYLES = ("sigkill", "exit", "segv")
#: What a job may ask for (``bridge.chaos.work``); ``bridge.chaos.reconcile`` knows how each
#: must end.
MODES = ("ok", "fail", "hang", "crash", "nan", "daemon")


@dataclass(frozen=True)
class ChaosPlan:
    """What a campaign runs. Defaults: the full campaign (1,000 jobs)."""

    jobs: int = 1000
    #: INLINE Map iterations per execution (the embedded stack caps inline concurrency at 40).
    jobs_per_execution: int = 20
    consumers: int = 4
    concurrency: int = 8
    #: The last this many consumers run every job in a process of its own (``--isolation
    #: process``); the others run first deliveries in their own threads.
    isolated_consumers: int = 1
    seed: int = 1
    #: Seconds over which executions start and faults are injected.
    duration_s: float = 120.0
    job_ms: tuple[int, int] = (100, 1500)
    fail_rate: float = 0.05
    hang_rate: float = 0.02
    #: Crashing jobs beside healthy ones: each kills the process that runs it on every delivery
    #: (SIGKILL, ``os._exit`` or SIGSEGV in turn, see :data:`CRASH_STYLES`). The first delivery
    #: runs in its consumer's process and takes the healthy jobs there down with it; redeliveries
    #: run isolated, and the crash limit fails the task ``Bridge.HandlerCrashed``.
    crash_jobs: int = 3
    #: Jobs that return NaN or +-Infinity in their output: they must fail Bridge.InvalidOutput.
    nan_jobs: int = 10
    #: Jobs that start a daemon escaping their process group and session, then succeed: the
    #: daemon must be gone once the job has ended (0 turns the fault off).
    daemon_jobs: int = 4
    stopped_executions: int = 3
    kills: int = 10
    terms: int = 4
    #: Consumers stopped with SIGSTOP past the jobs visibility timeout, then continued.
    sigstops: int = 2
    #: Seconds past the visibility timeout a stopped consumer stays stopped.
    sigstop_extra_s: tuple[float, float] = (2.0, 6.0)
    restart_delay_s: tuple[float, float] = (0.5, 3.0)
    outage_s: float = 5.0
    #: The results queue answers "does not exist" to the workers for this long (0: never).
    results_missing_s: float = 60.0
    duplicate_job_rate: float = 0.05
    duplicate_result_rate: float = 0.05
    poison: int = 90
    rates: FaultRates = field(default_factory=FaultRates)
    #: Worker and queue clocks, short so redeliveries happen within the run (bridge.timing).
    visibility_timeout_s: int = 6
    heartbeat_interval_s: float = 1.0
    job_timeout_s: int = 20
    hang_timeout_s: int = 3
    stale_check_age_s: float = 1.0
    drain_timeout_s: int = 4
    max_receive_count: int = 6
    max_queue_wait_s: int = 120
    #: How long to wait for the executions after the last fault before calling jobs lost.
    settle_s: float = 240.0

    def __post_init__(self) -> None:
        if not 0 <= self.isolated_consumers < self.consumers:
            raise ValueError("isolated_consumers must leave at least one consumer in threads")
        if self.jobs < 1 or self.consumers < 2 or self.concurrency < 1:
            raise ValueError(
                "jobs >= 1, consumers >= 2 (one is the EC2 instance), concurrency >= 1"
            )
        if not 1 <= self.jobs_per_execution <= 40:
            raise ValueError("jobs_per_execution must be 1..40 (inline Map concurrency)")
        special = self.crash_jobs + self.nan_jobs + self.daemon_jobs
        if special + round(self.jobs * (self.fail_rate + self.hang_rate)) + 2 > self.jobs:
            raise ValueError(f"{self.jobs} jobs are too few for the plan's special jobs")
        if self.stopped_executions >= self.executions:
            raise ValueError(
                f"{self.jobs} jobs make {self.executions} executions of up to "
                f"{self.jobs_per_execution}; {self.stopped_executions} of them are stopped, so "
                f"at least {(self.stopped_executions + 1) * self.jobs_per_execution - 19} jobs "
                "are needed"
            )

    @property
    def executions(self) -> int:
        return -(-self.jobs // self.jobs_per_execution)

    @property
    def task_timeout_s(self) -> int:
        """TimeoutSeconds: the timing model's minimum for the plan's queue wait and jobs."""
        return int(
            self.max_queue_wait_s + self.job_timeout_s + DEFAULT_CANCEL_GRACE_S + RESULT_SLACK_S
        )


#: The CI campaign: 200 jobs, under 3 minutes on 2 cores.
QUICK = ChaosPlan(
    jobs=200,
    consumers=3,
    concurrency=6,
    duration_s=35.0,
    job_ms=(100, 1000),
    stopped_executions=1,
    crash_jobs=2,
    nan_jobs=3,
    daemon_jobs=2,
    kills=3,
    terms=2,
    sigstops=1,
    poison=48,
    outage_s=4.0,
    results_missing_s=30.0,
    max_queue_wait_s=60,
    settle_s=100.0,
)


@dataclass(frozen=True, order=True)
class Event:
    """One scheduled action: ``kind`` at ``at_s`` seconds into the run."""

    at_s: float
    kind: str
    target: Any = None
    #: kill/term: restart after this many seconds; outage: its length.
    seconds: float = 0.0


@dataclass
class Schedule:
    items: list[list[dict[str, Any]]]
    events: list[Event]
    #: Streams for the reactive faults (copies of jobs and results as they appear).
    duplicates: random.Random
    proxy: random.Random
    fuzz_seed: int

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e.kind == kind)


def job_items(plan: ChaosPlan, rng: random.Random) -> list[list[dict[str, Any]]]:
    """Each execution's jobs: exactly round(jobs * rate) fail and hang (at least one each),
    ``crash_jobs`` crash, ``nan_jobs`` return NaN, ``daemon_jobs`` leave a daemon behind, the
    rest succeed. Special jobs are spread over the executions, beside healthy ones."""
    fails = max(1, round(plan.jobs * plan.fail_rate)) if plan.fail_rate else 0
    hangs = max(1, round(plan.jobs * plan.hang_rate)) if plan.hang_rate else 0
    counts = [("fail", fails), ("hang", hangs), ("crash", plan.crash_jobs),
              ("nan", plan.nan_jobs), ("daemon", plan.daemon_jobs)]  # fmt: skip
    chosen = rng.sample(range(plan.jobs), min(plan.jobs, sum(n for _m, n in counts)))
    modes: dict[int, str] = {}
    for mode, count in counts:
        modes |= {n: mode for n in chosen[len(modes) : len(modes) + count]}
    crashes = 0
    out: list[list[dict[str, Any]]] = []
    for n in range(plan.jobs):
        mode = modes.get(n, "ok")
        item = {
            "type": HANG_TYPE if mode == "hang" else JOB_TYPE,
            "n": n,
            "sleep_ms": rng.randint(*plan.job_ms),
            "mode": mode,
        }
        if mode == "crash":
            item["crash"] = CRASH_STYLES[crashes % len(CRASH_STYLES)]
            crashes += 1
        elif mode == "nan":
            item["nan"] = rng.choice(["nan", "inf", "-inf"])
        if n % plan.jobs_per_execution == 0:
            out.append([])
        out[-1].append(item)
    return out


def build(plan: ChaosPlan) -> Schedule:
    """The whole seeded schedule of ``plan``."""
    rng = random.Random(plan.seed)
    items = job_items(plan, rng)
    d = plan.duration_s
    events: list[Event] = []
    starts = [0.5 + i * (0.6 * d) / max(1, len(items) - 1) for i in range(len(items))]
    events += [Event(round(t, 2), "start_execution", i) for i, t in enumerate(starts)]
    for i in rng.sample(range(len(items)), plan.stopped_executions):
        events.append(Event(round(starts[i] + rng.uniform(2.0, 4.0), 2), "stop_execution", i))
    # Consumer 0 is the EC2 instance (termination notice); the others take kills and SIGTERMs.
    others = list(range(1, plan.consumers))
    for kind, count in (("kill", plan.kills), ("term", plan.terms)):
        for _ in range(count):
            events.append(
                Event(
                    round(rng.uniform(2.0, 0.8 * d), 2),  # while there is work to interrupt
                    kind,
                    rng.choice(others),
                    round(rng.uniform(*plan.restart_delay_s), 2),
                )
            )
    events.append(Event(round(rng.uniform(0.3 * d, 0.6 * d), 2), "announce_terminate", 0, 2.0))
    sfn_at = rng.uniform(0.2 * d, 0.5 * d)
    events.append(Event(round(sfn_at, 2), "outage", "sfn", plan.outage_s))
    events.append(
        Event(round(rng.uniform(0.55 * d, 0.85 * d), 2), "outage", "results", plan.outage_s)
    )
    events += [Event(round(rng.uniform(1.0, 0.85 * d), 2), "poison", n) for n in range(plan.poison)]
    events.append(Event(round(0.5 * d, 2), "check_listeners"))
    events.append(Event(round(rng.uniform(0.3 * d, 0.7 * d), 2), "foreign_result"))
    for _ in range(plan.sigstops):  # SIGSTOP, then SIGCONT past the visibility timeout
        stopped_s = plan.visibility_timeout_s + rng.uniform(*plan.sigstop_extra_s)
        events.append(
            Event(
                round(rng.uniform(2.0, 0.7 * d), 2), "stop", rng.choice(others), round(stopped_s, 2)
            )
        )
    if plan.results_missing_s > 0:
        events.append(
            Event(
                round(rng.uniform(0.2 * d, 0.4 * d), 2),
                "results_missing",
                "results",
                plan.results_missing_s,
            )
        )
    return Schedule(
        items,
        sorted(events),
        duplicates=random.Random(rng.getrandbits(64)),
        proxy=random.Random(rng.getrandbits(64)),
        fuzz_seed=rng.getrandbits(32),
    )
