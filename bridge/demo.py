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
from bridge.local_stack import LocalStack, StackSettings

DEMO_HANDLER = "consumers.demo_handler:work"
DEMO_ERROR = "DemoFailure"
TIMEOUT_ERRORS = ("States.Timeout", "States.HeartbeatTimeout")
#: Calls the demo harness makes itself (progress polling); not part of a job's cost.
HARNESS_APIS = frozenset({"states:DescribeExecution"})


@dataclass(frozen=True)
class DemoPlan:
    jobs: int = 20
    consumers: int = 2
    concurrency: int = 4
    fail_rate: float = 0.0
    job_ms: tuple[int, int] = (50, 400)
    map_mode: str = "INLINE"
    seed: int = 7
    timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.jobs < 1 or self.consumers < 1 or self.concurrency < 1:
            raise ValueError("jobs, consumers and concurrency must each be at least 1")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError(f"fail rate must be between 0 and 1, got {self.fail_rate}")

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
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, record: dict[str, Any], acknowledged: bool) -> None:
        if not acknowledged:
            return
        try:
            result = parse_result(record["body"])
        except ContractError:
            return
        with self.lock:
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
    # No HeartbeatSeconds: a large demo's backlog outlives any short one (docs/timing.md).
    settings = StackSettings(
        map_mode=plan.map_mode, timeout_seconds=600, max_queue_wait_s=300, job_timeout_s=120
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
            baseline = stack.request_counts()
            started = time.monotonic()
            execution = stack.clients.sfn.start_execution(
                stateMachineArn=stack.config.state_machine_arn,
                name=f"demo-{uuid.uuid4()}",
                input=json.dumps({"jobs": items}),
            )["executionArn"]
            described = wait_for_execution(
                stack.clients.sfn, execution, plan.timeout_s, on_poll=report
            )
            elapsed = time.monotonic() - started
            counts = stack.request_counts()
        finally:
            exit_codes = stop_consumers(consumers)
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
    )
    summary["work_dir"] = str(work_dir)  # worker and completion-handler logs
    return summary


def wait_for_execution(
    sfn: Any,
    execution_arn: str,
    timeout_s: float,
    on_poll: Callable[[], None] | None = None,
    every_s: float = 0.2,
) -> dict[str, Any]:
    """describe_execution once it is no longer RUNNING (or the last answer at the timeout);
    ``on_poll`` runs after each answer (the demo's progress bar)."""
    deadline = time.monotonic() + timeout_s
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if on_poll:
            on_poll()
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(every_s)


def summarise(
    plan: DemoPlan,
    items: list[dict[str, Any]],
    described: dict[str, Any],
    observed: Observed,
    elapsed: float,
    requests: dict[str, int],
    dlq: dict[str, int],
    exit_codes: list[int],
) -> dict[str, Any]:
    output = json.loads(described.get("output") or "null")
    entries = output if isinstance(output, list) else [None] * plan.jobs
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
        "dlq_messages": dlq,
        "consumer_exit_codes": exit_codes,
        "as_intended": described["status"] == "SUCCEEDED"
        and not wrong
        and len(outcomes) == plan.jobs
        and all(code == 0 for code in exit_codes),
        "unexpected_jobs": wrong[:20],
    }
