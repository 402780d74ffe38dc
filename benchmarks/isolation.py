"""What running a job in a process of its own costs, per job, against running it in a thread.

    .venv/bin/python -m benchmarks.isolation --jobs 40 --output isolation.json

The worker runs a first delivery of a ``--handler`` job in a thread and any later delivery (one
that may follow a crash) in a fresh interpreter (:class:`~consumers.isolated.IsolatedPythonRunner`);
``--isolation process`` and ``--command`` run every job in a process. This measures the runners
themselves, without queues: each mode runs ``--jobs`` jobs of a handler that returns at once,
one at a time and then ``--concurrency`` at a time, and reports per job the wall time (p50, p95),
the CPU time of the worker's process and of its children, and the children's peak resident
memory. The handler's own work is nil, so every figure is the overhead the mode adds.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.report import machine
from bridge.contract import Job
from consumers.command import CommandRunner
from consumers.context import JobContext
from consumers.isolated import IsolatedPythonRunner
from consumers.runner import PythonRunner, Runner

#: A handler that does nothing: what is measured is the mode's cost.
HANDLER = "consumers.demo_handler:work"


def runners() -> dict[str, Runner]:
    return {
        "thread": PythonRunner.from_spec(HANDLER),
        "process": IsolatedPythonRunner(HANDLER),
        "command": CommandRunner("cat"),
    }


def job(n: int) -> Job:
    return Job(
        version=1,
        token=f"isolation-benchmark-token-{n:06d}",
        job_id=f"isolation/RunJob/{n}/0",
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:bench:isolation",
        map_index=n,
        attempt=0,
        type="default",
        input={"n": n, "sleep_ms": 0},
    )


def _cpu() -> tuple[float, float, int]:
    """(own CPU s, children's CPU s, children's peak RSS in kB so far)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime, children.ru_maxrss


def measure(runner: Runner, jobs: int, concurrency: int) -> dict[str, Any]:
    """Run ``jobs`` jobs ``concurrency`` at a time; per-job figures."""
    durations: list[float] = []

    def one(n: int) -> None:
        began = time.perf_counter()
        outcome = runner.run(job(n), JobContext(job(n)))
        durations.append(time.perf_counter() - began)
        if not outcome.succeeded:
            raise RuntimeError(f"job {n} failed: {outcome.error}: {outcome.cause}")

    own0, children0, _ = _cpu()
    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(jobs)))
    wall = time.perf_counter() - began
    own1, children1, peak_kb = _cpu()
    ordered = sorted(durations)
    return {
        "jobs": jobs,
        "concurrency": concurrency,
        "jobs_per_s": round(jobs / wall, 1),
        "wall_ms_p50": round(1000 * statistics.median(ordered), 1),
        "wall_ms_p95": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 1),
        "worker_cpu_ms_per_job": round(1000 * (own1 - own0) / jobs, 1),
        "children_cpu_ms_per_job": round(1000 * (children1 - children0) / jobs, 1),
        "children_peak_rss_mb": round(peak_kb / 1024, 1),
    }


def run(jobs: int, concurrency: int, modes: list[str]) -> dict[str, Any]:
    built = runners()
    rows = []
    for mode in modes:
        measure(built[mode], 2, 1)  # warm-up: imports, page cache
        for parallel in sorted({1, concurrency}):
            rows.append({"mode": mode, **measure(built[mode], jobs, parallel)})
    return {"machine": machine(), "handler": HANDLER, "results": rows}


def table(report: dict[str, Any]) -> str:
    header = (
        "| mode | at once | jobs/s | wall p50 ms | wall p95 ms | worker CPU ms/job "
        "| children CPU ms/job |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        lines.append(
            f"| {r['mode']} | {r['concurrency']} | {r['jobs_per_s']} | {r['wall_ms_p50']} "
            f"| {r['wall_ms_p95']} | {r['worker_cpu_ms_per_job']} "
            f"| {r['children_cpu_ms_per_job']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--modes", default="thread,process,command")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(runners())
    if unknown or args.jobs < 1 or args.concurrency < 1:
        parser.error(f"--modes: thread, process, command (got {sorted(unknown)}); jobs >= 1")
    report = run(args.jobs, args.concurrency, modes)
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    out(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
