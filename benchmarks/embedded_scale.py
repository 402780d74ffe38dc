"""The embedded stack at scale: jobs/s, end-to-end time and peak resident memory.

    .venv/bin/python -m benchmarks.embedded_scale                    # 1,000 and 10,000 jobs
    .venv/bin/python -m benchmarks.embedded_scale --jobs 1000 --map-mode DISTRIBUTED
    .venv/bin/python -m benchmarks.embedded_scale --json > scale.json

Each size is one ``callback-bridge demo`` run (:func:`bridge.local_stack.demo.run_demo`) of
trivial jobs (``sleep_ms`` 0) on a fresh embedded stack in this process, with ``--consumers`` worker
processes of ``--concurrency`` slots. The mode is the one the demo picks for the size (AUTO:
INLINE while it fits AWS's limits, else DISTRIBUTED, with the jobs read from S3 once their
execution input would pass 256 KiB) unless ``--map-mode`` says otherwise.

* **end-to-end**: StartExecution until the execution is no longer RUNNING (the demo's
  ``elapsed_s``); **jobs/s** is jobs divided by that;
* **peak RSS**: the largest resident set of this process (the embedded server, the interpreter,
  the local event source and the completion handler all live in it; the workers are separate
  processes and not counted), sampled every 0.2 s during the run;
* **CPU s**: user + system seconds this process spent, start-up and summary included;
* **run CPU ms/job**: this process's CPU from the first to the last progress poll (the run
  alone), per job: the cost the stack adds to each job, steadier than wall time;
* **worker CPU ms/job**: the worker processes' CPU (start-up included), per job: the stack and
  the workers share the machine's cores, so both count against the end-to-end time;
* **connection errors**: lines of the workers' and completion handler's logs that name a
  refused or timed-out connection to the embedded server (0 expected).

Numbers depend on the machine and its load: compare runs made in the same conditions.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks import report
from bridge.local_stack.demo import AUTO, DemoPlan, run_demo
from bridge.local_stack.stack import quiet_moto_logs

DEFAULT_SIZES = (1000, 10_000)
#: Log lines that mean a client could not reach the embedded server.
CONNECTION_ERROR = re.compile(
    r"ConnectTimeout|ConnectionRefused|Connection refused|EndpointConnectionError|"
    r"Could not connect",
    re.IGNORECASE,
)


class PeakRss:
    """Samples this process's resident set size in a thread; ``peak_mb`` after ``stop``."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.every_s = every_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    @staticmethod
    def current_bytes() -> int:
        """VmRSS from /proc (Linux); 0 where there is none."""
        try:
            with open("/proc/self/statm") as statm:
                return int(statm.read().split()[1]) * resource.getpagesize()
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.current_bytes())
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self.current_bytes())

    @property
    def peak_mb(self) -> float:
        return round(self.peak_bytes / 2**20, 1)


class RunCpu:
    """This process's CPU seconds between the demo's first and last progress poll (every
    0.2 s from StartExecution to the end): the run itself, without the stack's start-up
    (imports, service models) or the summary. Steadier than wall time on a shared machine."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last = 0.0

    def __call__(self, _done: int, _total: int) -> None:
        self.last = cpu_seconds()
        if self.first is None:
            self.first = self.last

    @property
    def seconds(self) -> float:
        return self.last - self.first if self.first is not None else 0.0


def connection_errors(work_dir: Path) -> int:
    """Lines of a run's logs naming a connection the embedded server did not accept."""
    count = 0
    for log in work_dir.glob("*.log"):
        text = log.read_text(errors="replace")
        count += len({text.count("\n", 0, m.start()) for m in CONNECTION_ERROR.finditer(text)})
    return count


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def measure(jobs: int, consumers: int, concurrency: int, map_mode: str) -> dict[str, Any]:
    """One run of ``jobs`` trivial jobs; the row of the table."""
    plan = DemoPlan(
        jobs=jobs,
        consumers=consumers,
        concurrency=concurrency,
        job_ms=(0, 0),
        map_mode=map_mode,
    )
    cpu_before = cpu_seconds()
    workers_before = cpu_seconds(resource.RUSAGE_CHILDREN)
    run_cpu = RunCpu()
    with PeakRss() as rss:
        summary = run_demo(plan, progress=run_cpu)
    elapsed = float(summary["elapsed_s"])
    return {
        "jobs": jobs,
        "map_mode": summary["map_mode"],
        "item_file": summary["item_file"],
        "consumers": consumers,
        "concurrency": concurrency,
        "end_to_end_s": elapsed,
        "jobs_per_s": round(jobs / elapsed, 1) if elapsed else None,
        "peak_rss_mb": rss.peak_mb,
        "cpu_s": round(cpu_seconds() - cpu_before, 1),
        "run_cpu_ms_per_job": round(1000 * run_cpu.seconds / jobs, 2),
        "worker_cpu_ms_per_job": round(
            1000 * (cpu_seconds(resource.RUSAGE_CHILDREN) - workers_before) / jobs, 2
        ),
        "succeeded": summary["succeeded"],
        "failed": summary["failed"],
        "timed_out": summary["timed_out"],
        "ran_twice": summary["ran_twice"],
        "connection_errors": connection_errors(Path(summary["work_dir"])),
        "as_intended": summary["as_intended"],
        "latency_ms": summary["latency_ms"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    header = (
        "| jobs | mode | end-to-end s | jobs/s | peak RSS MB | CPU s | run CPU ms/job | "
        "worker CPU ms/job | succeeded | timed out | ran twice | connection errors |\n"
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [header]
    for r in rows:
        mode = r["map_mode"] + (" (S3)" if r["item_file"] else "")
        lines.append(
            f"| {r['jobs']:,} | {mode} | {r['end_to_end_s']} | {r['jobs_per_s']} | "
            f"{r['peak_rss_mb']} | {r['cpu_s']} | {r['run_cpu_ms_per_job']} | "
            f"{r['worker_cpu_ms_per_job']} | {r['succeeded']:,} | {r['timed_out']} | "
            f"{r['ran_twice']} | {r['connection_errors']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--map-mode", default=AUTO, choices=[AUTO, "INLINE", "DISTRIBUTED"])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    quiet_moto_logs()
    logging.getLogger("bridge").setLevel(logging.WARNING)
    rows = []
    for jobs in args.jobs:  # one at a time: a 10,000-job run must not slow the next
        rows.append(measure(jobs, args.consumers, args.concurrency, args.map_mode))
        print(f"{jobs} jobs: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
        time.sleep(1)
    result = {"machine": report.machine(), "command": " ".join(sys.argv), "runs": rows}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"machine: {json.dumps(result['machine'])}")
        print(table(rows))
    return 0 if all(r["as_intended"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
