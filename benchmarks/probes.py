"""Keep-alive probes: long jobs held for a measured window, their keep-alive calls counted.

A probe gives the steady-state keep-alive of jobs that run far longer than the window, which
the ``steady`` run's short-lived jobs (a job of d seconds gets floor(d / interval) calls, not
d / interval) cannot. Each probe has a jobs queue and a state machine of its own (the stack's
template) so what it leaves behind touches nothing else; it runs its jobs until the window's
warm-up is over (one and a half heartbeat intervals, compressed), counts
ChangeMessageVisibility(Batch) calls on its queue and SendTaskHeartbeat calls over a whole
number of heartbeat intervals that is also (nearly) a whole number of extension rounds
(:func:`window_intervals`), and reports them per uncompressed job-hour
(:func:`benchmarks.steady.keepalive_per_job_hour`).

* ``one_job_per_execution``: ``Workload.workers`` bridge workers at the default concurrency,
  one execution per slot (the issue's ``keepalive_requests_per_job_hour``);
* ``fanout``: one bridge worker with ``--concurrency 10`` running the ten jobs of one
  execution (``keepalive_requests_per_job_hour_fanout``);
* the naive consumer's: ``Workload.workers`` processes of ``Workload.concurrency`` threads,
  one execution per thread (its visibility changes; it sends no heartbeats).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

from benchmarks.keepalive_model import requests_per_job_hour
from benchmarks.ledger import queue_name
from benchmarks.naive_run import naive_command, naive_queue
from benchmarks.scenarios import Bench, stop
from benchmarks.steady import KEEPALIVE_APIS, Workload, keepalive_per_job_hour
from benchmarks.steady_run import spawn, start_execution, worker_command
from bridge.local_stack.resources import LOCAL_ROLE_ARN
from bridge.state_machine import render_definition
from bridge.timing import DEFAULT_HEARTBEAT_INTERVAL_S

#: The fewest and most heartbeat intervals a probe counts over.
WINDOWS = (4, 8)


def window_intervals(heartbeat_s: float, extend_every_s: float) -> int:
    """How many heartbeat intervals to count over: the number in :data:`WINDOWS` that holds
    the closest to a whole number of extension rounds too, so neither count depends on where
    the window falls in its period (360 s beats, 200 s rounds: 5, which is 9 rounds)."""

    def misfit(n: int) -> float:
        rounds = n * heartbeat_s / extend_every_s
        return abs(rounds - round(rounds))

    return min(range(WINDOWS[0], WINDOWS[1] + 1), key=lambda n: (round(misfit(n), 3), n))


def probe(
    bench: Bench,
    workload: Workload,
    name: str,
    jobs_url: str,
    command: list[str],
    loops: int,
    workers: int,
    executions: int,
    jobs_per_execution: int,
    visibility_factor: float | None = None,
) -> dict[str, Any]:
    """Run ``executions`` x ``jobs_per_execution`` long jobs through ``workers`` processes of
    ``command`` on ``jobs_url`` and count their keep-alive over the window."""
    stack, compression = bench.stack, workload.compression
    sfn, sqs = bench.clients.sfn, bench.clients.sqs
    machine = sfn.create_state_machine(
        name=queue_name(jobs_url),
        definition=render_definition(stack.settings.state_machine_params(jobs_url)),
        roleArn=LOCAL_ROLE_ARN,
    )["stateMachineArn"]
    jobs_q = queue_name(jobs_url)
    beat_s = DEFAULT_HEARTBEAT_INTERVAL_S / compression.factor
    extend_s = compression.visibility_s / 3
    # Half an interval past the first beat (jittered +/- 10 %): beats fall mid-window, not on
    # its edges, and every job has had its first extension.
    warm_s = max(beat_s * 1.5, extend_s * 1.5)
    window_s = window_intervals(beat_s, extend_s) * beat_s
    sleep_ms = int((warm_s + window_s + 60) * 1000)
    total = executions * jobs_per_execution
    processes = spawn(bench, command, workers, f"probe-{name}", jobs_q, loops)
    arns: list[str] = []
    try:
        items = [{"type": "demo", "n": n, "sleep_ms": sleep_ms} for n in range(jobs_per_execution)]
        arns = [start_execution(sfn, machine, items, "bench-probe") for _ in range(executions)]
        _wait_running(sqs, jobs_url, total)
        time.sleep(warm_s)
        before, entries0 = bench.ledger.snapshot(), bench.ledger.entries()
        t0 = time.monotonic()
        time.sleep(window_s)
        measured_s = time.monotonic() - t0
        after, entries1 = bench.ledger.snapshot(), bench.ledger.entries()
    finally:
        stop(processes, 2)
        for arn in arns:
            with contextlib.suppress(Exception):  # already over: nothing to stop
                sfn.stop_execution(executionArn=arn)

    def key(api: str) -> tuple[str, str]:
        return (api, jobs_q if api.startswith("sqs:") else "")

    counts = {api: after[key(api)] - before[key(api)] for api in KEEPALIVE_APIS}
    batch = key("sqs:ChangeMessageVisibilityBatch")
    return {
        "jobs": total,
        "jobs_per_execution": jobs_per_execution,
        "workers": workers,
        "window_s_as_run": round(measured_s, 2),
        "window_s_uncompressed": round(measured_s * compression.factor, 1),
        "calls": counts,
        "extension_entries": entries1[batch] - entries0[batch]
        + counts["sqs:ChangeMessageVisibility"],
        "per_job_hour": keepalive_per_job_hour(
            counts, total * measured_s, compression, visibility_factor
        ),
    }  # fmt: skip


def _wait_running(sqs: Any, url: str, total: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        if int(attrs["ApproximateNumberOfMessagesNotVisible"]) >= total:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"keep-alive probe: {total} jobs did not all start in {timeout_s} s")
        time.sleep(0.2)


def _bridge_probe(
    bench: Bench, workload: Workload, name: str, workers: int, concurrency: int,
    executions: int, jobs_per_execution: int,
) -> dict[str, Any]:  # fmt: skip
    compression = workload.compression
    url = bench.clients.sqs.create_queue(
        QueueName=f"bench-probe-{name}-{uuid.uuid4().hex[:6]}",
        Attributes={"VisibilityTimeout": str(compression.visibility_s)},
    )["QueueUrl"]
    command = worker_command(bench, compression, concurrency, url)
    out = probe(bench, workload, name, url, command, workers, workers, executions,
                jobs_per_execution)  # fmt: skip
    per_worker = min(concurrency, out["jobs"] // workers)
    out["concurrency"] = concurrency
    out["model_per_job_hour"] = round(requests_per_job_hour(per_worker, jobs_per_execution), 2)
    return out


def bridge_probes(bench: Bench, workload: Workload) -> dict[str, dict[str, Any]]:
    """The bridge's two probes: one job per execution at the default concurrency, and ten
    jobs of one execution on one worker."""
    slots = workload.workers * workload.concurrency
    return {
        "one_job_per_execution": _bridge_probe(
            bench, workload, "single", workload.workers, workload.concurrency, slots, 1
        ),
        "fanout": _bridge_probe(bench, workload, "fanout", 1, 10, 1, 10),
    }


def naive_probe(bench: Bench, workload: Workload) -> dict[str, Any]:
    """The honest naive consumer holding one job per thread."""
    compression = workload.compression
    url = naive_queue(bench.clients.sqs, f"bench-probe-naive-{uuid.uuid4().hex[:6]}", compression)
    command = naive_command(bench, compression, workload.concurrency, url)
    slots = workload.workers * workload.concurrency
    out = probe(bench, workload, "naive", url, command, slots, workload.workers, slots, 1,
                visibility_factor=compression.factor)  # fmt: skip
    out["concurrency"] = workload.concurrency
    return out
