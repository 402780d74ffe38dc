"""The ``steady`` scenario on the bench's stack, and what the ``naive`` one shares with it.

* ``steady``: :class:`benchmarks.steady.Workload`'s executions started over time against the
  stack's state machine, run by ``Workload.workers`` ``callback-bridge worker`` processes
  (default flags, compressed: :mod:`benchmarks.compressed_worker`), completed by the stack's
  mapping with its batching window divided by the same factor. While jobs run, each worker's
  ``/proc/<pid>/status`` (Threads, VmRSS) is sampled every 0.5 s.
* ``naive`` (:mod:`benchmarks.naive_run`) runs the same workload with the honest naive
  consumer, through the helpers here.
* :mod:`benchmarks.suite` follows each with keep-alive probes (:mod:`benchmarks.probes`).

Receives that come back empty and the stale check's heartbeats are counted in the consumers
(``BENCH_WORKER_STATS``, ``--stats-file``) and the mapping (:class:`MappingReceives`), since
the server cannot tell them apart (:func:`benchmarks.steady.split_requests`).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from benchmarks import measure
from benchmarks.compressed_worker import STATS_ENV, Compression, window_defaults
from benchmarks.ledger import queue_name, window
from benchmarks.measure import JobTimes, ResultTimes
from benchmarks.report import bridge_requests
from benchmarks.scenarios import HARNESS_APIS, Bench, Measured, stop
from benchmarks.steady import (
    Workload,
    job_seconds,
    keepalive_per_job_hour,
    per_running_job,
    sfn_per_s_per_1000,
    split_requests,
)
from bridge.local_stack.demo import DEMO_HANDLER

#: The long poll the samples and the worker use, 20 s, compressed (whole seconds, at least 1).
LONG_POLL_S = 20
NAIVE = "benchmarks.naive_consumer"


def _proc(pid: int) -> tuple[int, int] | None:
    """(Threads, VmRSS kB) of a live process, from /proc; None without."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("Threads", "VmRSS"):
                    found[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return (found["Threads"], found["VmRSS"]) if len(found) == 2 else None


class Sampler:
    """Samples every worker's threads and RSS every ``every_s`` on a thread of its own."""

    def __init__(self, pids: list[int], every_s: float = 0.5) -> None:
        self.pids, self.every_s = pids, every_s
        self.samples: list[tuple[datetime, int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def snapshot(self) -> dict[int, tuple[int, int]]:
        return {pid: got for pid in self.pids if (got := _proc(pid)) is not None}

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            now = datetime.now(UTC)
            for pid, (threads, rss) in self.snapshot().items():
                self.samples.append((now, pid, threads, rss))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def worker_command(
    bench: Bench, compression: Compression, concurrency: int, jobs_url: str | None = None
) -> list[str]:
    stack = bench.stack
    assert stack.state_file
    return [
        sys.executable, "-m", "benchmarks.compressed_worker", "--compress",
        str(compression.factor), "--", "--state-file", str(stack.state_file), "--handler",
        DEMO_HANDLER, "--concurrency", str(concurrency), "--log-level", "WARNING",
        "--wait-seconds", str(long_poll_s(compression)), *compression.worker_flags(),
        *(["--jobs-queue-url", jobs_url] if jobs_url else []),
    ]  # fmt: skip


def long_poll_s(compression: Compression) -> int:
    return max(1, round(LONG_POLL_S / compression.factor))


def spawn(
    bench: Bench,
    command: list[str],
    n: int,
    name: str,
    queue: str,
    loops: int,
    stats: bool = False,
) -> list[subprocess.Popen[bytes]]:
    """``n`` consumers, up once ``loops`` receives reached ``queue``; with ``stats``, each
    keeps its counters in ``<work dir>/<name>-<i>.stats.json`` (:func:`read_stats`)."""
    base = bench.ledger.count("sqs:ReceiveMessage", queue)
    processes = []
    for i in range(n):
        env = dict(os.environ)
        path = bench.work_dir / f"{name}-{i}.stats.json"
        path.unlink(missing_ok=True)
        if stats:
            env[STATS_ENV] = str(path)
        argv = [*command, "--stats-file", str(path)] if stats and NAIVE in command else command
        processes.append(
            subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, env=env,
                stderr=(bench.work_dir / f"{name}-{i}.log").open("wb"),
            )
        )  # fmt: skip
    if not bench.ledger.wait_for("sqs:ReceiveMessage", queue, base + loops, timeout_s=60):
        stop(processes)
        raise RuntimeError(f"{name}: consumers did not start within 60 s")
    return processes


def read_stats(bench: Bench, name: str, n: int) -> dict[str, int]:
    """The counters ``n`` consumers started as ``name`` kept, summed."""
    total: dict[str, int] = {}
    for i in range(n):
        try:
            counts = json.loads((bench.work_dir / f"{name}-{i}.stats.json").read_text())
        except (OSError, ValueError):
            continue
        for key, value in counts.items():
            total[key] = total.get(key, 0) + int(value)
    return total


class MappingReceives:
    """Counts the embedded mapping's receives that came back empty (its idle long polls), by
    wrapping the mapping's receive for the length of a ``with``."""

    def __init__(self, mapping: Any) -> None:
        self.mapping, self.empty, self.calls = mapping, 0, 0
        self._lock = threading.Lock()

    def __enter__(self) -> MappingReceives:
        receive = self.mapping._receive

        def counted(max_messages: int, wait_s: int) -> list[dict[str, Any]]:
            records: list[dict[str, Any]] = receive(max_messages, wait_s)
            with self._lock:
                self.calls += 1
                self.empty += int(not records)
            return records

        self.mapping._receive = counted
        return self

    def __exit__(self, *_: object) -> None:
        del self.mapping._receive  # the class's method again


def start_execution(sfn: Any, machine: str, items: list[dict[str, Any]], prefix: str) -> str:
    arn: str = sfn.start_execution(
        stateMachineArn=machine,
        name=f"{prefix}-{uuid.uuid4().hex[:8]}",
        input=json.dumps({"jobs": items}),
    )["executionArn"]
    return arn


def run_workload(
    bench: Bench, workload: Workload, machine: str, name: str, done: Any
) -> tuple[list[str], dict[str, str], float]:
    """Start the executions at their (compressed) times, wait for all; (arns, status by arn,
    elapsed s)."""
    sfn, total = bench.clients.sfn, workload.jobs
    plan = workload.plan()
    arns: list[str] = []
    started = time.monotonic()
    deadline = started + bench.plan.timeout_s
    for n, (at, durations) in enumerate(plan):
        while time.monotonic() - started < at / workload.compress:
            bench.progress(name, done(), total)
            time.sleep(0.1)
        arns.append(start_execution(sfn, machine, workload.items(durations, n), f"bench-{name}"))
    statuses: dict[str, str] = {}
    while len(statuses) < len(arns) and time.monotonic() < deadline:
        for arn in arns:
            if arn not in statuses:
                status = sfn.describe_execution(executionArn=arn)["status"]
                if status != "RUNNING":
                    statuses[arn] = status
        bench.progress(name, done(), total)
        time.sleep(0.3)
    elapsed = time.monotonic() - started
    for arn in arns:
        statuses.setdefault(arn, "TIMED_OUT_IN_BENCH")
    return arns, statuses, elapsed


def overall(statuses: dict[str, str]) -> str:
    bad = [s for s in statuses.values() if s != "SUCCEEDED"]
    return bad[0] if bad else "SUCCEEDED"


def events_of(bench: Bench, arns: list[str]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for arn in arns:
        events.extend(measure.history(bench.clients.sfn, arn))
    return events


def _pids_by_job(events: list[dict[str, Any]]) -> dict[str, int]:
    """job id → the worker pid the demo handler's output names."""
    out: dict[str, int] = {}
    for event in events:
        if event["type"] != "TaskSucceeded":
            continue
        try:
            output = json.loads(event["taskSucceededEventDetails"].get("output") or "null")
        except (ValueError, KeyError):
            continue
        if isinstance(output, dict) and isinstance(output.get("worker_pid"), int):
            out[str(output.get("job_id"))] = output["worker_pid"]
    return out


def _spans(times: dict[str, JobTimes]) -> list[tuple[datetime, datetime]]:
    return [(t.started_at, t.finished_at) for t in times.values()]


def figures(
    workload: Workload,
    requests: dict[str, int],
    times: dict[str, JobTimes],
    executions: int,
    idle: dict[str, int],
    elapsed_s: float,
    stale_probes: int = 0,
    visibility_factor: float | None = None,
) -> dict[str, Any]:
    """What steady and naive report beyond the common figures. ``idle``: empty receives by
    consumer kind (``workers`` of them polled for ``elapsed_s``); ``visibility_factor``: how
    much shorter the run's visibility timeout was than the one reported, if not the worker
    default's."""
    compression = workload.compression
    run_s = job_seconds(_spans(times))
    empty = sum(idle.values())
    keep, per_job = split_requests(requests, empty, stale_probes)
    sfn_counts = {**requests, "states:StartExecution": executions}
    jobs = max(1, len(times))
    stretch = long_poll_s(compression) * compression.factor / LONG_POLL_S
    worker_hours = workload.workers * elapsed_s * compression.factor / 3600
    return {
        "workload": workload.describe(),
        "job_hours": round(run_s * compression.factor / 3600, 2),
        "requests_per_job_beyond_floor_without_keepalive": bridge_requests(per_job, jobs),
        "per_job_by_api": {a: round(n / jobs, 3) for a, n in sorted(per_job.items())},
        "empty_receives": {
            **idle,
            "per_consumer_process_hour_at_20s_long_poll": round(
                idle.get("consumers", 0) * stretch / worker_hours, 1
            )
            if worker_hours
            else 0.0,
        },
        "keepalive_requests_per_job_hour": keepalive_per_job_hour(
            keep, run_s, compression, visibility_factor
        ),
        "sfn_calls_per_s_per_1000_in_flight": sfn_per_s_per_1000(sfn_counts, run_s, compression),
    }


def _window_on_result_path(bench: Bench) -> float:
    """The windows between a job's end and its SendTaskSuccess at their defaults: the
    result linger and the mapping's batching window (seconds)."""
    linger = window_defaults().get("consumers.results.LINGER_S", 0.0)
    assert bench.stack.event_source is not None
    return linger + bench.stack.event_source.settings.maximum_batching_window_s


def run_steady(bench: Bench) -> Measured:
    stack, workload = bench.stack, bench.plan.steady
    assert stack.config and stack.event_source
    compression = workload.compression
    results = ResultTimes()
    bench.observers.current = results
    jobs_q = queue_name(stack.config.jobs_queue_url or "")
    results_q = queue_name(stack.config.results_queue_url or "")
    mapping = stack.event_source
    original = mapping.settings
    scaled = copy.copy(original)  # the dataclass's checks are for real windows, not scaled ones
    object.__setattr__(
        scaled, "maximum_batching_window_s", original.maximum_batching_window_s / workload.compress
    )
    on_path_s = _window_on_result_path(bench)
    command = worker_command(bench, compression, workload.concurrency)
    meter = mapping.handler
    inv0, _, wall0, cpu0 = meter.snapshot()  # type: ignore[attr-defined]
    workers = spawn(
        bench, command, workload.workers, "steady", jobs_q, workload.workers, stats=True
    )
    try:
        mapping.settings = scaled
        sampler = Sampler([p.pid for p in workers])
        baseline = sampler.snapshot()
        before = bench.ledger.snapshot()
        stats0 = read_stats(bench, "steady", workload.workers)
        with sampler, MappingReceives(mapping) as mapping_receives:
            arns, statuses, elapsed = run_workload(
                bench, workload, stack.config.state_machine_arn or "", "steady",
                lambda: results.done,
            )  # fmt: skip
            time.sleep(1.0)  # the last deletes follow the last callback (window compressed)
            requests = window(before, bench.ledger.snapshot(), {jobs_q, results_q})
            stats = read_stats(bench, "steady", workload.workers)
        cpu, rss = consumer_stats(workers)
    finally:
        mapping.settings = original
        stop(workers, 2)
    idle = {
        "consumers": stats.get("empty_receives", 0) - stats0.get("empty_receives", 0),
        "mapping": mapping_receives.empty,
    }
    inv1, _, wall1, cpu1 = meter.snapshot()  # type: ignore[attr-defined]
    requests = {a: n for a, n in requests.items() if a not in HARNESS_APIS}
    events = events_of(bench, arns)
    added, queued = measure.latencies(measure.callback_closes(events), results.jobs)
    correction_ms = on_path_s * (1 - 1 / workload.compress) * 1000
    pids = _pids_by_job(events)
    spans_by_pid: dict[int, list[tuple[datetime, datetime]]] = {}
    for job_id, t in results.jobs.items():
        if job_id in pids:
            spans_by_pid.setdefault(pids[job_id], []).append((t.started_at, t.finished_at))
    extra = figures(
        workload, requests, results.jobs, len(arns), idle, elapsed,
        stale_probes=stats.get("stale_probes", 0) - stats0.get("stale_probes", 0),
    )  # fmt: skip
    extra["latency_ms_as_run"] = measure.spread(added)
    extra["worker"] = per_running_job(sampler.samples, baseline, spans_by_pid)
    extra["windows_on_result_path_s"] = round(on_path_s, 3)
    return Measured(
        "steady", workload.jobs, elapsed, overall(statuses), requests,
        measure.state_transitions(events), [a + correction_ms for a in added], queued,
        inv1 - inv0, wall1 - wall0, cpu1 - cpu0, cpu, rss,
        notes=[
            f"time compressed {workload.compress}x (every window too); latency_ms adds back "
            f"the result linger and mapping window at their defaults ({on_path_s:g} s, minus "
            "their compressed part): an upper bound at the uncompressed rate; "
            "latency_ms_as_run is as measured",
        ],
        callback_ms=results.callback_ms(), extra=extra,
    )  # fmt: skip


def consumer_stats(processes: list[subprocess.Popen[bytes]]) -> tuple[float, int]:
    stats = [measure.process_stats(p.pid) for p in processes]
    return sum(c for c, _ in stats), max((r for _, r in stats), default=0)
