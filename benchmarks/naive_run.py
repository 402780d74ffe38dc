"""The ``naive`` scenario: the steady workload (:mod:`benchmarks.steady`) on a queue of its own
(the samples' 300 s visibility, compressed), run by the honest naive consumer
(:mod:`benchmarks.naive_consumer`, ``callback`` mode: SendTaskSuccess itself, one
ChangeMessageVisibility per job every third of the timeout, no heartbeats), ``Workload.workers``
processes of ``Workload.concurrency`` threads: as many slots as the bridge's workers."""

from __future__ import annotations

import json
import math
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks import measure
from benchmarks.compressed_worker import Compression
from benchmarks.ledger import queue_name, window
from benchmarks.measure import JobTimes
from benchmarks.scenarios import HARNESS_APIS, Bench, Measured, stop
from benchmarks.steady_run import (
    NAIVE,
    consumer_stats,
    events_of,
    figures,
    long_poll_s,
    overall,
    read_stats,
    run_workload,
    spawn,
)
from bridge.local_stack.resources import LOCAL_ROLE_ARN
from bridge.state_machine import render_definition


def _naive_times(path: Path) -> dict[str, JobTimes]:
    out: dict[str, JobTimes] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
            enqueued = row.get("enqueued_at")
            out[row["job_id"]] = JobTimes(
                datetime.fromisoformat(enqueued) if enqueued else None,
                datetime.fromisoformat(row["started_at"]),
                datetime.fromisoformat(row["finished_at"]),
            )
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by the consumer's exit
    return out


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def naive_queue(sqs: Any, name: str, compression: Compression) -> str:
    """A jobs queue for the naive consumer: the samples' 300 s visibility, compressed (whole
    seconds, at least 3); the consumer extends every third of the exact compressed value."""
    from benchmarks.naive_consumer import SAMPLE_VISIBILITY_S

    seconds = max(3, math.ceil(SAMPLE_VISIBILITY_S / compression.factor))
    url: str = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(seconds)})[
        "QueueUrl"
    ]
    return url


def naive_command(bench: Bench, compression: Compression, threads: int, jobs_url: str) -> list[str]:
    """One honest naive consumer process (``callback`` mode), compressed."""
    from benchmarks.naive_consumer import SAMPLE_VISIBILITY_S

    return [
        sys.executable, "-m", NAIVE, "--endpoint-url", bench.stack.server.endpoint_url,
        "--jobs-queue-url", jobs_url, "--mode", "callback", "--threads", str(threads),
        "--visibility-timeout", f"{SAMPLE_VISIBILITY_S / compression.factor:.4f}",
        "--wait-seconds", str(long_poll_s(compression)),
    ]  # fmt: skip


def run_naive(bench: Bench) -> Measured:
    """The steady workload, run by the honest naive consumer on a queue of its own."""
    from benchmarks.naive_consumer import SAMPLE_VISIBILITY_S

    stack, workload, clients = bench.stack, bench.plan.steady, bench.clients
    compression = workload.compression
    visibility = SAMPLE_VISIBILITY_S / compression.factor
    jobs_url = naive_queue(clients.sqs, "bench-naive-jobs", compression)
    definition = render_definition(stack.settings.state_machine_params(jobs_url))
    machine = clients.sfn.create_state_machine(
        name="bench-naive", definition=definition, roleArn=LOCAL_ROLE_ARN
    )["stateMachineArn"]
    times_file = bench.work_dir / "naive-times.jsonl"
    times_file.unlink(missing_ok=True)
    command = naive_command(bench, compression, workload.concurrency, jobs_url)
    command += ["--times-file", str(times_file)]
    jobs_q = queue_name(jobs_url)
    workers = spawn(
        bench, command, workload.workers, "naive", jobs_q,
        workload.workers * workload.concurrency, stats=True,
    )  # fmt: skip
    try:
        before = bench.ledger.snapshot()
        stats0 = read_stats(bench, "naive", workload.workers)
        arns, statuses, elapsed = run_workload(
            bench, workload, machine, "naive", lambda: _count_lines(times_file)
        )
        time.sleep(0.5)
        requests = window(before, bench.ledger.snapshot(), {jobs_q})
        stats = read_stats(bench, "naive", workload.workers)
        cpu, rss = consumer_stats(workers)
    finally:
        stop(workers)
    idle = {"consumers": stats.get("empty_receives", 0) - stats0.get("empty_receives", 0)}
    requests = {a: n for a, n in requests.items() if a not in HARNESS_APIS}
    times = _naive_times(times_file)
    events = events_of(bench, arns)
    added, queued = measure.latencies(measure.callback_closes(events), times)
    extra = figures(
        workload, requests, times, len(arns), idle, elapsed, visibility_factor=compression.factor
    )
    extra["visibility_timeout_s"] = {"run": visibility, "reported": SAMPLE_VISIBILITY_S}
    return Measured(
        "naive", workload.jobs, elapsed, overall(statuses), requests,
        measure.state_transitions(events), added, queued, consumer_cpu_s=cpu,
        consumer_peak_rss=rss, extra=extra,
        notes=[
            "the common sample: receive 1, run, SendTaskSuccess/Failure, delete 1; one "
            f"ChangeMessageVisibility per job every {SAMPLE_VISIBILITY_S / 3:g} s (compressed "
            f"{compression.factor}x), no heartbeats; no completion Lambda",
        ],
    )  # fmt: skip
