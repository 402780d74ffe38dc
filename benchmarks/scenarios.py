"""The scenarios, one after another on **one** embedded stack, so ratios hold on a noisy
machine:

* ``bridge``: the stack as configured (its completion mapping) and real ``callback-bridge
  worker`` processes with their default flags except ``--concurrency``; short jobs, one
  execution, consumers started first (jobs trickle in as the Map queues them);
* ``burst``: the same with every job queued (DISTRIBUTED Map) before the consumers start and
  jobs of one length, so receives, result batches, deletes and mapping batches fill;
* ``steady`` and ``naive``: long-tailed jobs from several executions over time, compressed
  (:mod:`benchmarks.steady`, :mod:`benchmarks.steady_run`): the bridge's workers, and the
  honest naive consumer (SendTaskSuccess itself, one visibility change per job a third of the
  timeout, no heartbeats); ``steady`` also runs the keep-alive probes;
* ``naive-results-queue``: the same state machine template on a second pair of queues,
  consumers that receive 1 / run / send 1 result (contract v1) / delete 1
  (:mod:`benchmarks.naive_consumer`, ``results-queue`` mode), and a second local event source
  mapping of the same completion handler with batch size 1 (not the common sample: the
  bridge's results queue given to a naive consumer);
* ``polling``: :mod:`benchmarks.polling`'s state machine, a work queue and an S3 status bucket.

Requests are charged to a scenario when they touch its queues or bucket, or name no resource
(Step Functions), during its run (:mod:`benchmarks.ledger`); the DLQ pollers of the stack's
dead-letter handler are charged to none (a fixed cost per queue, not per job).
"""

from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from benchmarks import measure, polling
from benchmarks.ledger import RequestLedger, queue_name, window
from benchmarks.measure import HandlerMeter, Observers, ResultTimes
from benchmarks.steady import Workload
from bridge import completion
from bridge.limits import PAYLOAD_BYTES, MapMode, effective_concurrency, payload_bytes
from bridge.local_stack import LocalStack, StackSettings
from bridge.local_stack.demo import DEMO_HANDLER
from bridge.local_stack.event_source import LocalEventSourceMapping
from bridge.local_stack.resources import LOCAL_ROLE_ARN
from bridge.ops.fanout import start_from_items, wait_for_execution
from bridge.state_machine import render_definition

log = logging.getLogger(__name__)

SCENARIOS = ("bridge", "burst", "steady", "naive", "naive-results-queue", "polling")
#: Calls the harness makes (start, progress, history): the same in every pattern, not per job.
HARNESS_APIS = frozenset(
    {"states:StartExecution", "states:DescribeExecution", "states:GetExecutionHistory"}
)
Progress = Callable[[str, int, int], None]
#: A backlog whose queueing stalls this long is as deep as the Map goes before jobs finish.
BACKLOG_STALL_S = 20.0


class Watch(Protocol):
    """Instruments a scenario's measured window: from its consumers' start (after the backlog
    is queued, with ``plan.backlog``) until its execution closed (:mod:`benchmarks.profiling`)."""

    def start(self, consumers: list[subprocess.Popen[bytes]]) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class BenchPlan:
    jobs: int = 1000
    consumers: int = 2
    #: Slots per consumer process (bridge: --concurrency; naive and polling: threads). 10 lets
    #: the bridge fill its batches of 10.
    concurrency: int = 10
    job_ms: tuple[int, int] = (100, 300)
    interval: polling.PollingInterval = field(default_factory=polling.PollingInterval)
    scenarios: tuple[str, ...] = SCENARIOS
    timeout_s: float = 600
    seed: int = 7
    #: Queue every job before the consumers start (full batches), instead of starting them first;
    #: an INLINE Map queues at most 40 at once (bridge.limits), so then 40.
    backlog: bool = False
    #: The Map's mode: INLINE (one execution) or DISTRIBUTED (child executions; big backlogs).
    map_mode: MapMode = "INLINE"
    #: The ``burst`` scenario's jobs (each sleeps ``BURST_JOB_MS``), all queued first.
    burst_jobs: int = 500
    #: The ``steady`` and ``naive`` scenarios' workload.
    steady: Workload = field(default_factory=Workload)

    def __post_init__(self) -> None:
        if self.jobs < 1 or self.consumers < 1 or self.concurrency < 1:
            raise ValueError("jobs, consumers and concurrency must each be at least 1")
        if self.map_mode not in ("INLINE", "DISTRIBUTED"):
            raise ValueError(f"map_mode must be INLINE or DISTRIBUTED, not {self.map_mode!r}")
        unknown = set(self.scenarios) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")

    def total(self, scenario: str) -> int:
        """Jobs ``scenario`` runs (for progress)."""
        if scenario in ("steady", "naive"):
            return self.steady.jobs
        return self.burst_jobs if scenario == "burst" else self.jobs

    def items(self) -> list[dict[str, Any]]:
        rng = random.Random(self.seed)
        return [
            {"type": "demo", "n": n, "sleep_ms": rng.randint(*self.job_ms)}
            for n in range(self.jobs)
        ]


#: Every burst job sleeps this long, so the ten a worker receives together finish together.
BURST_JOB_MS = 200
#: Small enough for under 5 minutes on 2 cores.
QUICK = BenchPlan(jobs=100, interval=polling.PollingInterval(scale=30), burst_jobs=500)


@dataclass
class Measured:
    """One scenario's raw measurements (:mod:`benchmarks.report` turns them into figures)."""

    name: str
    jobs: int
    elapsed_s: float
    status: str
    requests: dict[str, int]
    transitions: int
    added_ms: list[float]
    queued_ms: list[float]
    lambda_invocations: int = 0
    completion_wall_s: float = 0.0
    completion_cpu_s: float = 0.0
    consumer_cpu_s: float = 0.0
    consumer_peak_rss: int = 0
    polls: int = 0
    #: Polling: the added latency at the default interval (measure.at_default_interval).
    added_default_ms: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failure: str = ""
    #: Callback scenarios: finished → the completion handler's callback answered.
    callback_ms: list[float] = field(default_factory=list)
    #: With ``plan.backlog``: jobs on the queue when the consumers started.
    queued_at_start: int = 0
    #: Scenario-specific figures, reported as they are (steady, naive: benchmarks.steady_run).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Run:
    """What one scenario hands :meth:`Bench.execute`."""

    name: str
    machine_arn: str
    payload: dict[str, Any]
    #: Queues and buckets whose requests are this scenario's.
    resources: set[str]
    jobs_queue: str
    #: Jobs finished so far (progress, and the wait for the last deletes).
    done: Callable[[], int]
    #: One consumer process; ``processes`` of them with ``loops`` receive loops in all.
    command: list[str]
    loops: int
    #: SIGTERMs to stop a consumer (bridge workers: 2, release at once; no job runs by then).
    stop_signals: int = 1
    #: A bucket to feed the jobs from when the input is over Step Functions' 256 KiB (the
    #: template's S3-fed DISTRIBUTED Map, bridge.ops.fanout); its S3 requests are not charged.
    items_bucket: str | None = None


@dataclass
class Outcome:
    status: str
    elapsed_s: float
    requests: dict[str, int]
    events: list[dict[str, Any]]
    consumer_cpu_s: float
    consumer_peak_rss: int
    #: The execution's error and cause when it did not succeed.
    failure: str = ""
    #: With ``plan.backlog``: jobs on the queue when the consumers started.
    queued_at_start: int = 0


@dataclass
class Bench:
    """The stack and the instruments every scenario shares."""

    plan: BenchPlan
    stack: LocalStack
    ledger: RequestLedger
    observers: Observers
    work_dir: Path
    progress: Progress
    watch: Watch | None = None

    @property
    def clients(self) -> Any:
        assert self.stack.clients is not None
        return self.stack.clients

    def spawn(self, run: Run) -> list[subprocess.Popen[bytes]]:
        """Start the consumers; they are up once ``run.loops`` receives reached their queue."""
        base = self.ledger.count("sqs:ReceiveMessage", run.jobs_queue)
        processes = [
            subprocess.Popen(
                run.command,
                stdout=subprocess.DEVNULL,
                stderr=(self.work_dir / f"{run.name}-consumer-{i}.log").open("wb"),
            )
            for i in range(self.plan.consumers)
        ]
        if not self.ledger.wait_for(
            "sqs:ReceiveMessage", run.jobs_queue, base + run.loops, timeout_s=60
        ):
            stop(processes)
            raise RuntimeError(f"{run.name}: consumers did not start within 60 s")
        return processes

    def _await_backlog(self, run: Run, execution_arn: str, base: int, target: int) -> int:
        """Until ``target`` jobs are queued, the execution ended (a failed one queues no more),
        or the Map stopped queueing for :data:`BACKLOG_STALL_S` (the embedded stack runs at most
        1,000 DISTRIBUTED children at once: the rest queue as jobs finish). Returns how many
        were queued."""
        deadline = time.monotonic() + self.plan.timeout_s
        last, grew = 0, time.monotonic()
        while time.monotonic() < deadline:
            if self.ledger.wait_for("sqs:SendMessage", run.jobs_queue, base + target, 1):
                return target
            queued = self.ledger.count("sqs:SendMessage", run.jobs_queue) - base
            if queued > last:
                last, grew = queued, time.monotonic()
            elif queued and time.monotonic() - grew > BACKLOG_STALL_S:
                log.warning("%s: the Map queued %d of %d jobs, no more", run.name, queued, target)
                return queued
            self.progress(run.name, 0, self.plan.jobs)
            status = self.clients.sfn.describe_execution(executionArn=execution_arn)["status"]
            if status != "RUNNING":
                return queued
        raise RuntimeError(f"{run.name}: the jobs were not all queued in time")

    def _start(self, run: Run) -> str:
        name, document = f"bench-{run.name}-{uuid.uuid4().hex[:8]}", json.dumps(run.payload)
        if run.items_bucket and payload_bytes(document) > PAYLOAD_BYTES:
            return start_from_items(
                self.clients.sfn, self.clients.s3, run.machine_arn, run.items_bucket,
                run.payload["jobs"], name=name,
            )  # fmt: skip
        arn: str = self.clients.sfn.start_execution(
            stateMachineArn=run.machine_arn, name=name, input=document
        )["executionArn"]
        return arn

    def execute(self, run: Run) -> Outcome:
        """Start one execution (consumers first, or after every job is queued with
        ``plan.backlog``), wait for it, and measure."""
        sfn, jobs = self.clients.sfn, self.plan.jobs
        consumers: list[subprocess.Popen[bytes]] = []
        queued_at_start = 0
        try:
            if not self.plan.backlog:
                consumers = self.spawn(run)
            before = self.ledger.snapshot()
            started = time.monotonic()
            arn = self._start(run)
            if self.plan.backlog:
                # An INLINE Map queues at most 40 at once (AWS's limit, which the embedded stack
                # enforces): the backlog is what the Map runs at once; DISTRIBUTED for more.
                mode: MapMode = "INLINE" if run.name == "polling" else self.plan.map_mode
                base = before[("sqs:SendMessage", run.jobs_queue)]
                target = min(jobs, effective_concurrency(0, mode))
                queued_at_start = self._await_backlog(run, arn, base, target)
                consumers = self.spawn(run)
                started = time.monotonic()
            if self.watch is not None:
                self.watch.start(consumers)
            described = wait_for_execution(
                sfn,
                arn,
                self.plan.timeout_s,
                on_poll=lambda: self.progress(run.name, run.done(), jobs),
                every_s=0.2,
            )
            elapsed = time.monotonic() - started
            settle = time.monotonic() + 5  # the last deletes follow the last callback
            while run.done() < jobs and time.monotonic() < settle:
                time.sleep(0.05)
            time.sleep(0.3)
            self.progress(run.name, run.done(), jobs)
            if self.watch is not None:
                self.watch.stop()
            requests = window(before, self.ledger.snapshot(), run.resources)
            cpu, rss = consumer_stats(consumers)
        finally:
            stop(consumers, run.stop_signals)
        if described["status"] != "SUCCEEDED":
            log.warning(
                "%s: execution %s: %s %s",
                run.name,
                described["status"],
                described.get("error", ""),
                str(described.get("cause", ""))[:2000],
            )
        events = measure.history(sfn, arn)
        return Outcome(
            described["status"],
            elapsed,
            {a: n for a, n in requests.items() if a not in HARNESS_APIS},
            events,
            cpu,
            rss,
            failure=measure.first_failure(events) if described["status"] != "SUCCEEDED" else "",
            queued_at_start=queued_at_start,
        )


def consumer_stats(processes: list[subprocess.Popen[bytes]]) -> tuple[float, int]:
    stats = [measure.process_stats(p.pid) for p in processes]
    return sum(c for c, _ in stats), max((r for _, r in stats), default=0)


def stop(processes: list[subprocess.Popen[bytes]], signals: int = 1) -> None:
    """SIGTERM (``signals`` times, 0.3 s apart), then wait; kill what is left after 15 s."""
    for n in range(signals):
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        if n + 1 < signals:
            time.sleep(0.3)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _with_failure(out: Outcome, measured: Measured, results: ResultTimes | None = None) -> Measured:
    measured.failure = out.failure
    measured.queued_at_start = out.queued_at_start
    if results is not None:
        measured.callback_ms = results.callback_ms()
    return measured


def _consumer_command(
    endpoint: str, queue_url: str, mode: str, target: str, threads: int
) -> list[str]:
    return [
        sys.executable, "-m", "benchmarks.naive_consumer", "--endpoint-url", endpoint,
        "--jobs-queue-url", queue_url, "--mode", mode, "--target", target,
        "--threads", str(threads),
    ]  # fmt: skip


def run_bridge(bench: Bench, name: str = "bridge", machine_arn: str | None = None) -> Measured:
    stack, plan = bench.stack, bench.plan
    assert stack.config and stack.event_source and stack.state_file
    results = ResultTimes()
    bench.observers.current = results
    meter = stack.event_source.handler
    assert isinstance(meter, HandlerMeter)
    jobs_q = queue_name(stack.config.jobs_queue_url or "")
    results_q = queue_name(stack.config.results_queue_url or "")
    command = [sys.executable, "-m", "bridge.cli.main", "worker", "--state-file"]
    command += [str(stack.state_file), "--handler", DEMO_HANDLER]
    command += ["--concurrency", str(plan.concurrency), "--log-level", "WARNING"]
    inv0, _, wall0, cpu0 = meter.snapshot()
    out = bench.execute(
        Run(
            name, machine_arn or stack.config.state_machine_arn or "", {"jobs": plan.items()},
            {jobs_q, results_q}, jobs_q, lambda: results.done, command,
            loops=plan.consumers, stop_signals=2,
            items_bucket=stack.config.fanout_bucket if plan.map_mode == "DISTRIBUTED" else None,
        )
    )  # fmt: skip
    inv1, _, wall1, cpu1 = meter.snapshot()
    added, queued = measure.latencies(measure.callback_closes(out.events), results.jobs)
    return _with_failure(out, Measured(
        name, plan.jobs, out.elapsed_s, out.status, out.requests,
        measure.state_transitions(out.events), added, queued, inv1 - inv0, wall1 - wall0,
        cpu1 - cpu0, out.consumer_cpu_s, out.consumer_peak_rss,
    ), results)  # fmt: skip


def _naive_queues(sqs: Any, prefix: str) -> tuple[str, str, str]:
    dlq = sqs.create_queue(QueueName=f"{prefix}-results-dlq")["QueueUrl"]
    jobs = sqs.create_queue(QueueName=f"{prefix}-jobs", Attributes={"VisibilityTimeout": "60"})
    results = sqs.create_queue(
        QueueName=f"{prefix}-results", Attributes={"VisibilityTimeout": "30"}
    )
    return jobs["QueueUrl"], results["QueueUrl"], dlq


def run_burst(bench: Bench) -> Measured:
    """``bridge`` with every job queued before the workers start: full batches. The jobs come
    from a DISTRIBUTED Map (an INLINE one queues at most 40 at once): the stack's template
    rendered so, on the stack's jobs queue."""
    stack = bench.stack
    assert stack.config
    params = replace(stack.settings, map_mode="DISTRIBUTED").state_machine_params(
        stack.config.jobs_queue_url or ""
    )
    machine = bench.clients.sfn.create_state_machine(
        name=f"bench-burst-{uuid.uuid4().hex[:6]}",
        definition=render_definition(params),
        roleArn=LOCAL_ROLE_ARN,
    )["stateMachineArn"]
    plan = replace(
        bench.plan, jobs=bench.plan.burst_jobs, backlog=True, map_mode="DISTRIBUTED",
        job_ms=(BURST_JOB_MS, BURST_JOB_MS),
    )  # fmt: skip
    return run_bridge(replace(bench, plan=plan), "burst", machine)


def run_naive_results_queue(bench: Bench) -> Measured:
    stack, plan, clients = bench.stack, bench.plan, bench.clients
    assert stack.config
    jobs_url, results_url, dlq_url = _naive_queues(clients.sqs, "bench-naive")
    definition = render_definition(stack.settings.state_machine_params(jobs_url))
    machine = clients.sfn.create_state_machine(
        name="bench-naive", definition=definition, roleArn=LOCAL_ROLE_ARN
    )["stateMachineArn"]
    settings = replace(stack.event_source_settings, batch_size=1)
    lambda_clients = completion.build_lambda_clients(
        stack.config, pool_size=completion.DEFAULT_WORKERS * settings.maximum_concurrency
    )
    meter = HandlerMeter(
        completion.make_handler(
            completion.Completion(lambda_clients.sfn, lambda_clients.sqs, dlq_url)
        )
    )
    results = ResultTimes()
    mapping = LocalEventSourceMapping(
        clients.sqs, results_url, meter, region="us-east-1", observer=results, settings=settings
    ).start()
    jobs_q, results_q = queue_name(jobs_url), queue_name(results_url)
    command = _consumer_command(
        stack.server.endpoint_url, jobs_url, "results-queue", results_url, plan.concurrency
    )
    try:
        out = bench.execute(
            Run(
                "naive-results-queue", machine, {"jobs": plan.items()}, {jobs_q, results_q},
                jobs_q,
                lambda: results.done, command, loops=plan.consumers * plan.concurrency,
            )
        )  # fmt: skip
    finally:
        mapping.stop()
    invocations, _, wall, cpu_completion = meter.snapshot()
    added, queued = measure.latencies(measure.callback_closes(out.events), results.jobs)
    return _with_failure(out, Measured(
        "naive-results-queue", plan.jobs, out.elapsed_s, out.status, out.requests,
        measure.state_transitions(out.events), added, queued, invocations, wall,
        cpu_completion, out.consumer_cpu_s, out.consumer_peak_rss,
        notes=[
            f"not the common sample: the bridge's results queue and completion handler behind "
            f"a mapping of batch size {settings.batch_size}, same stack",
        ],
    ), results)  # fmt: skip


def run_polling(bench: Bench) -> Measured:
    stack, plan, clients = bench.stack, bench.plan, bench.clients
    work_url = clients.sqs.create_queue(
        QueueName="bench-polling-work", Attributes={"VisibilityTimeout": "60"}
    )["QueueUrl"]
    bucket = "bench-polling-status"
    clients.s3.create_bucket(Bucket=bucket)
    machine = clients.sfn.create_state_machine(
        name="bench-polling", definition=polling.render(work_url, bucket), roleArn=LOCAL_ROLE_ARN
    )["stateMachineArn"]
    work_q = queue_name(work_url)
    command = _consumer_command(
        stack.server.endpoint_url, work_url, "status", bucket, plan.concurrency
    )
    out = bench.execute(
        Run(
            "polling", machine,
            {"jobs": plan.items(), "interval_seconds": plan.interval.run_s},
            {work_q, bucket}, work_q, lambda: bench.ledger.count("s3:PutObject", bucket),
            command, loops=plan.consumers * plan.concurrency,
        )
    )  # fmt: skip
    closes, times, checked = measure.polling_closes(out.events)
    added, queued = measure.latencies(closes, times)
    at_default = measure.at_default_interval(
        closes, times, checked, plan.interval.run_s, plan.interval.scale
    )
    checks = out.requests.get("s3:HeadObject", 0)
    return _with_failure(out, Measured(
        "polling", plan.jobs, out.elapsed_s, out.status, out.requests,
        measure.state_transitions(out.events), added, queued, lambda_invocations=checks,
        consumer_cpu_s=out.consumer_cpu_s, consumer_peak_rss=out.consumer_peak_rss,
        polls=checks, added_default_ms=at_default,
        notes=[
            f"interval {plan.interval.run_s} s in the run (default {plan.interval.default_s} s "
            f"scaled down {plan.interval.scale}x); latency_ms: at the default interval (the "
            "wait after each job finished scaled back up), latency_ms_measured: as run",
            "status checks: aws-sdk:s3:headObject standing in for the status Lambda; "
            "lambda_invocations_per_job counts them",
        ],
    ))  # fmt: skip


#: The scenarios of this module; ``steady`` and ``naive`` are added by
#: :mod:`benchmarks.suite`, which the CLI runs.
RUNNERS: dict[str, Callable[[Bench], Measured]] = {
    "bridge": run_bridge,
    "burst": run_burst,
    "naive-results-queue": run_naive_results_queue,
    "polling": run_polling,
}


def run_bench(
    plan: BenchPlan,
    progress: Progress | None = None,
    work_dir: Path | None = None,
    watch: Watch | None = None,
    runners: Mapping[str, Callable[[Bench], Measured]] | None = None,
) -> tuple[list[Measured], Path]:
    """Run ``plan``'s scenarios on one embedded stack; returns the measurements and the
    directory holding the consumers' and completion handler's logs. ``watch`` instruments each
    scenario's measured window (CPU, profiles: :mod:`benchmarks.scale`)."""
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="callback-bridge-bench-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    observers = Observers()
    # As the demo: no HeartbeatSeconds; task timeouts that outlast the run (a big backlog's
    # last job waits most of it).
    queue_wait = max(300, int(plan.timeout_s) - 300)
    settings = StackSettings(
        timeout_seconds=queue_wait + 300,
        max_queue_wait_s=queue_wait,
        job_timeout_s=120,
        instance_group=False,
        map_mode=plan.map_mode,
    )
    measured: list[Measured] = []
    with (
        (work_dir / "completion.log").open("w") as handler_log,
        LocalStack(
            settings,
            state_file=work_dir / "local.json",
            observer=observers,
            handler_log=handler_log,
        ) as stack,
    ):
        assert stack.event_source is not None
        stack.event_source.handler = HandlerMeter(stack.event_source.handler)
        bench = Bench(
            plan, stack, RequestLedger.install(stack), observers, work_dir,
            progress or (lambda _n, _d, _t: None), watch,
        )  # fmt: skip
        for name in plan.scenarios:
            run = (runners or RUNNERS).get(name)
            if run is None:
                raise ValueError(f"scenario {name!r} runs through benchmarks.suite.run_bench")
            measured.append(run(bench))
            observers.current = None
    return measured, work_dir
