"""The demo: the whole pipeline on the embedded stack, with real consumer processes.

One execution fans out N jobs; C ``callback-bridge worker`` processes run them; the embedded
event source feeds results to the real completion handler. The summary compares every job's
outcome with what the demo asked for.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.contract import ContractError, parse_result
from bridge.limits import (
    DATA_LIMIT_ERROR,
    PAYLOAD_BYTES,
    FanOutPlan,
    LimitError,
    json_bytes,
    plan_fan_out,
)
from bridge.local_stack import LocalStack, StackSettings
from bridge.ops import fanout

DEMO_HANDLER = "consumers.demo_handler:work"
DEMO_ERROR = "DemoFailure"
TIMEOUT_ERRORS = ("States.Timeout", "States.HeartbeatTimeout")
#: Calls the demo harness makes itself (progress polling); not part of a job's cost.
HARNESS_APIS = frozenset({"states:DescribeExecution"})
#: ``map_mode`` that lets the demo pick the mode AWS would accept for the size asked.
AUTO = "AUTO"
#: The whole run's timeout when none is given: 300 s, or 0.1 s a job for larger runs.
DEFAULT_TIMEOUT_S = 300.0
#: Allowance for a failed job's Map output entry ({status, error, cause}; the cause carries the
#: handler's exception and traceback summary, clipped by the worker).
FAILED_ENTRY_BYTES = 1024


@dataclass(frozen=True)
class DemoPlan:
    jobs: int = 20
    consumers: int = 2
    concurrency: int = 4
    fail_rate: float = 0.0
    job_ms: tuple[int, int] = (50, 400)
    #: INLINE, DISTRIBUTED, or AUTO (the mode AWS would accept for ``jobs``).
    map_mode: str = AUTO
    seed: int = 7
    #: None: :data:`DEFAULT_TIMEOUT_S`, or 0.1 s a job for larger runs.
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.jobs < 1 or self.consumers < 1 or self.concurrency < 1:
            raise ValueError("jobs, consumers and concurrency must each be at least 1")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail rate must be between 0 and 1, got {self.fail_rate}")
        if self.map_mode not in (AUTO, "INLINE", "DISTRIBUTED"):
            raise ValueError(f"map mode must be INLINE, DISTRIBUTED or AUTO, not {self.map_mode}")

    @property
    def deadline_s(self) -> float:
        """How long the demo waits for the execution."""
        if self.timeout_s is not None:
            return self.timeout_s
        return max(DEFAULT_TIMEOUT_S, 0.1 * self.jobs)

    def fan_out(self) -> FanOutPlan:
        """The mode AWS would accept for this run, and whether its jobs must come from S3;
        raises :class:`bridge.limits.LimitError` (one line: which limit, which mode to use)
        when the mode asked for would fail on AWS."""
        requested = None if self.map_mode == AUTO else self.map_mode
        fan = plan_fan_out(self.items(), requested)  # type: ignore[arg-type]
        output = self.output_bytes()
        if output <= PAYLOAD_BYTES or fan.needs_item_file:
            return fan
        if requested == "INLINE":
            raise LimitError(
                "state-output",
                DATA_LIMIT_ERROR,
                f"an INLINE run of {self.jobs:,} demo jobs returns about {output:,} bytes; a "
                f"state's output may be at most {PAYLOAD_BYTES:,} (256 KiB): use "
                "--map-mode DISTRIBUTED (its results go to S3)",
            )
        # Only a Distributed Map with a ResultWriter keeps its results out of the output.
        return FanOutPlan("DISTRIBUTED", needs_item_file=True)

    def output_bytes(self) -> int:
        """Estimated size of the Map's output (one entry per job) for this run."""
        success = json_bytes(
            {
                "status": "SUCCEEDED",
                "output": {
                    "n": self.jobs,
                    "job_id": f"demo-{uuid.UUID(int=0)}/RunJob/{self.jobs}/0",
                    "type": "demo",
                    "worker_pid": 4_194_304,
                },
            }
        )
        failing = round(self.jobs * self.fail_rate)
        return (self.jobs - failing) * (success + 1) + failing * FAILED_ENTRY_BYTES

    def items(self) -> list[dict[str, Any]]:
        """The execution's jobs; exactly round(jobs * fail_rate) of them are asked to fail."""
        rng = random.Random(self.seed)
        failing = set(rng.sample(range(self.jobs), round(self.jobs * self.fail_rate)))
        return [
            {"type": "demo", "n": n, "sleep_ms": rng.randint(*self.job_ms), "fail": n in failing}
            for n in range(self.jobs)
        ]


@dataclass
class Observed:
    """What the embedded event source saw of each result (filled from its thread)."""

    latencies_ms: dict[str, float] = field(default_factory=dict)
    completed: int = 0
    #: Results for a job id already seen: a job that ran twice.
    duplicates: int = 0
    seen: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, record: dict[str, Any], acknowledged: bool) -> None:
        if not acknowledged:
            return
        try:
            result = parse_result(record["body"])
        except ContractError:
            return
        with self.lock:
            if result.job_id in self.seen:
                self.duplicates += 1
                return
            self.seen.add(result.job_id)
            self.completed += 1
            if result.timing and result.timing.enqueued_at:
                delta = datetime.now(UTC) - result.timing.enqueued_at
                self.latencies_ms[result.job_id] = delta.total_seconds() * 1000


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def error_of(entry: Any) -> str:
    """The error name of one Map output entry ('' when it has none or is missing)."""
    return str(entry.get("error") or "") if isinstance(entry, dict) else ""


def classify(entry: Any) -> str:
    if isinstance(entry, dict) and entry.get("status") == "SUCCEEDED":
        return "succeeded"
    error = error_of(entry)
    if error in TIMEOUT_ERRORS:
        return "timed_out"
    if error == "Bridge.DeadLettered":
        return "dead_lettered"
    return "failed"


def start_consumers(
    plan: DemoPlan, state_file: Path, log_dir: Path
) -> list[subprocess.Popen[bytes]]:
    command = [
        sys.executable,
        "-m",
        "bridge.cli.main",
        "worker",
        "--state-file",
        str(state_file),
        "--handler",
        DEMO_HANDLER,
        "--concurrency",
        str(plan.concurrency),
        "--wait-seconds",
        "2",
        "--heartbeat-interval",
        "30",
    ]
    return [
        subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=(log_dir / f"worker-{i}.log").open("wb")
        )
        for i in range(plan.consumers)
    ]


#: What a worker logs once its receiver starts (bridge.cli.worker): it is then polling.
POLLING_LINE = " polling "


def wait_until_polling(
    processes: list[subprocess.Popen[bytes]], log_dir: Path, timeout_s: float = 60
) -> None:
    """Return once every consumer logs that it is polling, as an Auto Scaling group's would be
    before work arrives: the run's clock then times the pipeline, not Python start-ups. A
    consumer that exits first fails the demo at once, naming its log."""
    waiting = dict(enumerate(processes))
    deadline = time.monotonic() + timeout_s
    while waiting:
        for i, process in list(waiting.items()):
            log = log_dir / f"worker-{i}.log"
            if POLLING_LINE in log.read_text(errors="replace"):
                del waiting[i]
            elif process.poll() is not None:
                raise RuntimeError(f"consumer {i} exited with {process.returncode}: see {log}")
        if waiting and time.monotonic() > deadline:
            raise RuntimeError(f"consumers {sorted(waiting)} not polling after {timeout_s:.0f} s")
        time.sleep(0.05)


def stop_consumers(processes: list[subprocess.Popen[bytes]], grace_s: float = 30) -> list[int]:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=grace_s))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait())
    return codes


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def run_demo(
    plan: DemoPlan, progress: Callable[[int, int], None] | None = None, work_dir: Path | None = None
) -> dict[str, Any]:
    """Run the demo and return its summary (see README for the keys)."""
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="callback-bridge-demo-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    state_file = work_dir / "local.json"
    observed = Observed()

    def report() -> None:
        if progress is not None:
            progress(observed.completed, plan.jobs)

    items = plan.items()
    fan = plan.fan_out()
    # No HeartbeatSeconds: a large demo's backlog outlives any short one (docs/timing.md).
    settings = StackSettings(
        map_mode=fan.mode, timeout_seconds=600, max_queue_wait_s=300, job_timeout_s=120
    )
    with (
        (work_dir / "completion.log").open("w") as handler_log,
        LocalStack(
            settings, state_file=state_file, observer=observed, handler_log=handler_log
        ) as stack,
    ):
        assert stack.clients and stack.config
        consumers = start_consumers(plan, state_file, work_dir)
        try:
            wait_until_polling(consumers, work_dir)
            baseline = stack.request_counts()
            started = time.monotonic()
            execution = start(stack, items, fan)
            described = fanout.wait_for_execution(
                stack.clients.sfn,
                execution,
                plan.deadline_s,
                on_poll=report,
                every_s=0.2,
                likely_done=lambda: observed.completed >= plan.jobs,
            )
            elapsed = time.monotonic() - started
            counts = stack.request_counts()
        finally:
            exit_codes = stop_consumers(consumers)
        entries = outcomes_of(stack, execution, described, fan)
        sqs, config = stack.clients.sqs, stack.config
        dlq = {  # dead letters wait in the DLQ until handled, then stay in the archive
            side: sum(queue_depth(sqs, url) for url in urls if url)
            for side, urls in (
                ("jobs", (config.jobs_dlq_url, config.jobs_archive_url)),
                ("results", (config.results_dlq_url, config.results_archive_url)),
            )
        }
    summary = summarise(
        plan,
        items,
        described,
        observed,
        elapsed,
        {k: v - baseline.get(k, 0) for k, v in counts.items()},
        dlq,
        exit_codes,
        entries,
    )
    summary["map_mode"] = fan.mode
    summary["item_file"] = fan.needs_item_file
    summary["work_dir"] = str(work_dir)  # worker and completion-handler logs
    return summary


def start(stack: LocalStack, items: list[dict[str, Any]], fan: FanOutPlan) -> str:
    """Start the execution: jobs in its input, or, when that input would exceed 256 KiB, in an
    item file on S3 (the template's S3-fed Distributed Map, as on AWS)."""
    assert stack.clients and stack.config and stack.config.state_machine_arn
    name = f"demo-{uuid.uuid4()}"
    if fan.needs_item_file:
        assert stack.clients.s3 is not None and stack.config.fanout_bucket
        return fanout.start_from_items(
            stack.clients.sfn,
            stack.clients.s3,
            stack.config.state_machine_arn,
            stack.config.fanout_bucket,
            items,
            name=name,
        )
    return str(
        stack.clients.sfn.start_execution(
            stateMachineArn=stack.config.state_machine_arn,
            name=name,
            input=json.dumps({"jobs": items}, separators=(",", ":")),  # as plan_fan_out sizes it
        )["executionArn"]
    )


def outcomes_of(
    stack: LocalStack, execution: str, described: dict[str, Any], fan: FanOutPlan
) -> list[Any] | None:
    """One Map output entry per job ({status, output} or {status, error, cause}) in job order:
    the execution's output, or, for an S3-fed run, its result files. None when unknown."""
    if not fan.needs_item_file:
        output = json.loads(described.get("output") or "null")
        return output if isinstance(output, list) else None
    assert stack.clients and stack.clients.s3 is not None
    if described["status"] == "RUNNING":
        return None
    results = fanout.read_results(stack.clients.sfn, stack.clients.s3, execution)
    return [job.as_dict() for job in results.jobs] if results.jobs else None


def summarise(
    plan: DemoPlan,
    items: list[dict[str, Any]],
    described: dict[str, Any],
    observed: Observed,
    elapsed: float,
    requests: dict[str, int],
    dlq: dict[str, int],
    exit_codes: list[int],
    entries: list[Any] | None = None,
) -> dict[str, Any]:
    """The demo's summary. ``entries``: one Map output entry per job (default: the
    execution's output)."""
    if entries is None:
        output = json.loads(described.get("output") or "null")
        entries = output if isinstance(output, list) else None
    entries = entries if entries is not None else [None] * plan.jobs
    outcomes = [classify(entry) for entry in entries]
    intended = ["failed" if item["fail"] else "succeeded" for item in items]
    wrong = [
        n
        for n, (got, want) in enumerate(zip(outcomes, intended, strict=False))
        if got != want or (got == "failed" and error_of(entries[n]) != DEMO_ERROR)
    ]
    latencies = list(observed.latencies_ms.values())
    return {
        "jobs": plan.jobs,
        "succeeded": outcomes.count("succeeded"),
        "failed": outcomes.count("failed"),
        "timed_out": outcomes.count("timed_out"),
        "dead_lettered": outcomes.count("dead_lettered"),
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 1),
            "p95": round(percentile(latencies, 95), 1),
            "max": round(max(latencies, default=0.0), 1),
        },
        "elapsed_s": round(elapsed, 2),
        "requests_per_job": {
            api: round(n / plan.jobs, 2)
            for api, n in sorted(requests.items())
            if n and api not in HARNESS_APIS
        },
        "execution_status": described["status"],
        **{key: described[key] for key in ("error", "cause") if described.get(key)},
        "dlq_messages": dlq,
        "consumer_exit_codes": exit_codes,
        "ran_twice": observed.duplicates,
        "as_intended": described["status"] == "SUCCEEDED"
        and not wrong
        and len(outcomes) == plan.jobs
        and not observed.duplicates
        and all(code == 0 for code in exit_codes),
        "unexpected_jobs": wrong[:20],
    }
