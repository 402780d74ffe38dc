"""Keep-alive of many jobs in flight on one consumer, measured: requests per job-hour and the
consumer's memory.

    .venv/bin/python -m benchmarks.inflight --jobs 1000 --output inflight.json

One ``callback-bridge worker`` with ``--concurrency`` = the job count takes every job of a
DISTRIBUTED Map (an INLINE Map runs at most 40 at once on AWS) queued first; each job sleeps far
longer than the run. Once every job runs, the requests its keep-alive makes over ``--window``
seconds (after one interval's warm-up) are counted at the server (:mod:`benchmarks.ledger`:
ChangeMessageVisibility calls and their entries, SendTaskHeartbeat), with the worker's CPU and
resident memory.

A short visibility timeout and heartbeat interval make extensions and heartbeats frequent in a
short run. Both are linear in their interval, so the counts are reported per job-hour as run,
and scaled to the defaults (visibility 300 s: an extension every 100 s; heartbeat every 60 s) by
the ratio of the intervals: per job-hour at the defaults = measured per job-hour * run interval
/ default interval.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks import cost
from benchmarks.ledger import RequestLedger, queue_name
from benchmarks.measure import process_stats
from benchmarks.report import machine
from benchmarks.scenarios import stop
from bridge.local_stack import LocalStack, StackSettings
from bridge.local_stack.demo import DEMO_HANDLER
from bridge.timing import DEFAULT_HEARTBEAT_INTERVAL_S, DEFAULT_VISIBILITY_TIMEOUT_S

KEEPALIVE_APIS = (
    "sqs:ChangeMessageVisibilityBatch",
    "sqs:ChangeMessageVisibility",
    "states:SendTaskHeartbeat",
)


def _rss_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) in kB, and the thread count, from /proc (empty without)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return out


def per_job_hour(count: float, jobs: int, window_s: float) -> float:
    """``count`` requests by ``jobs`` jobs over ``window_s`` seconds → requests per job-hour."""
    return count / jobs / window_s * 3600 if jobs and window_s else 0.0


def scaled(measured: dict[str, float], visibility_s: int, heartbeat_s: float) -> dict[str, float]:
    """Per job-hour at the run's intervals → at the defaults (each linear in its interval)."""
    factor = {
        "sqs:ChangeMessageVisibilityBatch": visibility_s / DEFAULT_VISIBILITY_TIMEOUT_S,
        "sqs:ChangeMessageVisibility": visibility_s / DEFAULT_VISIBILITY_TIMEOUT_S,
        "extensions": visibility_s / DEFAULT_VISIBILITY_TIMEOUT_S,
        "states:SendTaskHeartbeat": heartbeat_s / DEFAULT_HEARTBEAT_INTERVAL_S,
    }
    return {k: round(v * factor.get(k, 1.0), 2) for k, v in measured.items()}


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {timeout_s:.0f} s")
        time.sleep(0.5)


def run_inflight(
    jobs: int = 1000,
    visibility_s: int = 30,
    heartbeat_s: float = 20.0,
    window_s: float = 120.0,
    work_dir: Path | None = None,
    fill_timeout_s: float = 900,
) -> dict[str, Any]:
    """``jobs`` sleeping jobs on one worker; the keep-alive requests over ``window_s``."""
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="callback-bridge-inflight-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    sleep_ms = int((fill_timeout_s * 2 + window_s + 600) * 1000)  # outlives the run
    settings = StackSettings(
        jobs_visibility_timeout_s=visibility_s, timeout_seconds=7300, max_queue_wait_s=1800,
        job_timeout_s=5400, instance_group=False, map_mode="DISTRIBUTED",
    )  # fmt: skip
    with (
        (work_dir / "completion.log").open("w") as handler_log,
        LocalStack(settings, state_file=work_dir / "local.json", handler_log=handler_log) as stack,
    ):
        assert stack.config and stack.clients and stack.state_file
        ledger = RequestLedger.install(stack)
        jobs_url = stack.config.jobs_queue_url or ""
        jobs_q = queue_name(jobs_url)
        items = [{"type": "demo", "n": n, "sleep_ms": sleep_ms} for n in range(jobs)]
        stack.clients.sfn.start_execution(
            stateMachineArn=stack.config.state_machine_arn or "",
            name=f"inflight-{uuid.uuid4().hex[:8]}",
            input=json.dumps({"jobs": items}),
        )
        started = time.monotonic()
        _wait(lambda: ledger.count("sqs:SendMessage", jobs_q) >= jobs, fill_timeout_s,
              f"the Map did not queue {jobs} jobs")  # fmt: skip
        queued_s = time.monotonic() - started
        command = [sys.executable, "-m", "bridge.cli.main", "worker", "--state-file"]
        command += [str(stack.state_file), "--handler", DEMO_HANDLER, "--log-level", "WARNING"]
        command += ["--concurrency", str(jobs), "--visibility-timeout", str(visibility_s)]
        command += ["--heartbeat-interval", str(heartbeat_s)]
        worker = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=(work_dir / "worker.log").open("wb")
        )
        try:
            sqs = stack.clients.sqs

            def running() -> bool:
                attrs = sqs.get_queue_attributes(
                    QueueUrl=jobs_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
                )["Attributes"]
                return int(attrs["ApproximateNumberOfMessagesNotVisible"]) >= jobs

            t_spawn = time.monotonic()
            _wait(running, fill_timeout_s, f"the worker did not take all {jobs} jobs")
            fill_s = time.monotonic() - t_spawn
            time.sleep(max(heartbeat_s, visibility_s / 3))  # steady state: every job's first
            # heartbeat and extension are due within this warm-up
            before, entries0 = ledger.snapshot(), ledger.entries()
            cpu0, t0 = process_stats(worker.pid)[0], time.monotonic()
            rss_start = _rss_kb(worker.pid)
            time.sleep(window_s)
            window = time.monotonic() - t0
            after, entries1 = ledger.snapshot(), ledger.entries()
            cpu1 = process_stats(worker.pid)[0]
            rss = _rss_kb(worker.pid)
            alive = worker.poll() is None
        finally:
            stop([worker], signals=2)
    counts = {api: after[(api, "" if api.startswith("states:") else jobs_q)]
              - before[(api, "" if api.startswith("states:") else jobs_q)]
              for api in KEEPALIVE_APIS}  # fmt: skip
    batch = ("sqs:ChangeMessageVisibilityBatch", jobs_q)
    extensions = entries1[batch] - entries0[batch] + counts["sqs:ChangeMessageVisibility"]
    measured = {api: round(per_job_hour(n, jobs, window), 2) for api, n in counts.items()}
    measured["extensions"] = round(per_job_hour(extensions, jobs, window), 2)
    at_defaults = scaled(measured, visibility_s, heartbeat_s)
    usd = sum(cost.request_usd(api, at_defaults[api]) for api in KEEPALIVE_APIS)
    return {
        "jobs": jobs,
        "visibility_timeout_s": visibility_s,
        "heartbeat_interval_s": heartbeat_s,
        "queued_s": round(queued_s, 1),
        "fill_s": round(fill_s, 1),
        "window_s": round(window, 1),
        "worker_alive": alive,
        "requests_in_window": {**counts, "extensions": extensions},
        "per_job_hour_as_run": measured,
        "per_job_hour_at_defaults": at_defaults,
        "usd_per_million_job_hours_at_defaults": round(usd * 1e6, 2),
        "consumer": {
            "cpu_cores": round((cpu1 - cpu0) / window, 3),
            "rss_mb_at_start_of_window": round(rss_start.get("VmRSS", 0) / 1024, 1),
            "rss_mb": round(rss.get("VmRSS", 0) / 1024, 1),
            "peak_rss_mb": round(rss.get("VmHWM", 0) / 1024, 1),
            "threads": rss.get("Threads", 0),
        },
        "machine": machine(),
        "logs": str(work_dir),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000, help="Jobs in flight (1-1000).")
    parser.add_argument("--visibility", type=int, default=30, help="Visibility timeout, s.")
    parser.add_argument("--heartbeat", type=float, default=20.0, help="Heartbeat interval, s.")
    parser.add_argument("--window", type=float, default=120.0, help="Measured seconds.")
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--output", type=Path, help="Write the result as JSON.")
    args = parser.parse_args(argv)
    if not 1 <= args.jobs <= 1000:
        parser.error("--jobs must be 1-1000 (the worker's --concurrency limit)")
    from bridge.local_stack.stack import quiet_moto_logs

    quiet_moto_logs()
    result = run_inflight(args.jobs, args.visibility, args.heartbeat, args.window, args.work_dir)
    text = json.dumps(result, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
