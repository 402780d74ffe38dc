"""The ``steady`` workload: the jobs the bridge exists for, time-compressed.

**Durations** are lognormal with median :attr:`Workload.median_s` (10 minutes) and shape
:attr:`Workload.sigma` (1.0: the mean is e^(σ²/2) = 1.65 times the median, 1 job in 20 runs over
52 minutes), clipped to [:attr:`Workload.min_s`, :attr:`Workload.cap_s`] (30 s, 1 hour).
**Arrivals**: :attr:`Workload.executions` executions of :attr:`Workload.jobs_per_execution` jobs
each, started at uniformly random times over :attr:`Workload.arrival_span_s` (the first at 0),
run by :attr:`Workload.workers` worker processes at the worker's default ``--concurrency``.
Everything is drawn from one seeded generator, so a run is repeatable.

**Compression**: every duration, arrival time and window is divided by
:attr:`Workload.compress` (:mod:`benchmarks.compressed_worker` scales the worker's windows; the
harness scales the mapping's), so an hour runs in a minute at 60 without making batches look
fuller than they would at the real completion rate. Rates are reported per uncompressed second
and hour: counts over compressed job-seconds times the factor.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from benchmarks.compressed_worker import Compression
from consumers.settings import DEFAULT_CONCURRENCY

KEEPALIVE_APIS = (
    "sqs:ChangeMessageVisibilityBatch",
    "sqs:ChangeMessageVisibility",
    "states:SendTaskHeartbeat",
)
EXTENSION_APIS = ("sqs:ChangeMessageVisibilityBatch", "sqs:ChangeMessageVisibility")


@dataclass(frozen=True)
class Workload:
    """The steady scenario's jobs, in uncompressed seconds (see the module's docstring)."""

    executions: int = 8
    jobs_per_execution: int = 5
    median_s: float = 600.0
    sigma: float = 1.0
    min_s: float = 30.0
    cap_s: float = 3600.0
    arrival_span_s: float = 1800.0
    workers: int = 3
    concurrency: int = DEFAULT_CONCURRENCY
    compress: int = 120
    seed: int = 7

    def __post_init__(self) -> None:
        if self.executions < 1 or self.jobs_per_execution < 1 or self.workers < 1:
            raise ValueError("executions, jobs_per_execution and workers must be at least 1")
        if not 0 < self.min_s <= self.median_s <= self.cap_s:
            raise ValueError("durations need 0 < min_s <= median_s <= cap_s")
        if self.sigma < 0 or self.arrival_span_s < 0:
            raise ValueError("sigma and arrival_span_s must be 0 or more")
        Compression(self.compress)  # validates the factor

    @property
    def compression(self) -> Compression:
        return Compression(self.compress)

    @property
    def jobs(self) -> int:
        return self.executions * self.jobs_per_execution

    def plan(self) -> list[tuple[float, list[float]]]:
        """Each execution's start and its jobs' durations, uncompressed seconds, by start."""
        rng = random.Random(self.seed)
        starts = sorted([0.0] + [rng.uniform(0, self.arrival_span_s)
                                 for _ in range(self.executions - 1)])  # fmt: skip
        return [(start, durations_s(self.jobs_per_execution, self, rng)) for start in starts]

    def items(self, durations: list[float], execution: int) -> list[dict[str, Any]]:
        """One execution's job inputs for the demo handler, compressed."""
        return [
            {"type": "demo", "n": execution * 1000 + i,
             "sleep_ms": round(d / self.compress * 1000)}
            for i, d in enumerate(durations)
        ]  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {
            "distribution": f"lognormal, median {self.median_s:g} s, sigma {self.sigma:g}, "
            f"clipped to [{self.min_s:g}, {self.cap_s:g}] s",
            "executions": self.executions,
            "jobs_per_execution": self.jobs_per_execution,
            "arrival_span_s": self.arrival_span_s,
            "workers": self.workers,
            "concurrency": self.concurrency,
            "compress": self.compress,
            "seed": self.seed,
        }


def durations_s(n: int, workload: Workload, rng: random.Random) -> list[float]:
    """``n`` lognormal durations (median, sigma, clipped) drawn from ``rng``."""
    mu = math.log(workload.median_s)
    return [
        min(workload.cap_s, max(workload.min_s, rng.lognormvariate(mu, workload.sigma)))
        for _ in range(n)
    ]


# --- turning counts into figures ----------------------------------------------------------
def split_requests(
    requests: dict[str, int], empty_receives: int = 0, stale_probes: int = 0
) -> tuple[dict[str, int], dict[str, int]]:
    """(keep-alive calls, per-job calls) of a run's requests by API. Keep-alive: visibility
    changes and heartbeats but the stale check's (``stale_probes``, one before a job that
    waited runs: a per-job call). Receives that came back empty (``empty_receives``: idle long
    polls, a cost per idle consumer-hour, not per job, and one a compressed run cannot
    reproduce below SQS's whole-second wait) are left out of both."""
    if empty_receives < 0 or stale_probes < 0:
        raise ValueError("counts must be 0 or more")
    keep = {a: n for a, n in requests.items() if a in KEEPALIVE_APIS}
    per_job = {a: n for a, n in requests.items() if a not in KEEPALIVE_APIS}
    beats = keep.get("states:SendTaskHeartbeat", 0)
    probes = min(stale_probes, beats)
    if probes:
        keep["states:SendTaskHeartbeat"] = beats - probes
        per_job["states:SendTaskHeartbeat"] = probes
    if "sqs:ReceiveMessage" in per_job:
        per_job["sqs:ReceiveMessage"] -= min(empty_receives, per_job["sqs:ReceiveMessage"])
    return keep, per_job


def job_seconds(spans: list[tuple[datetime, datetime]]) -> float:
    """Running time summed over jobs (compressed seconds)."""
    return sum(max(0.0, (end - start).total_seconds()) for start, end in spans)


def keepalive_per_job_hour(
    counts: dict[str, int],
    run_job_s: float,
    compression: Compression,
    visibility_factor: float | None = None,
) -> dict[str, float]:
    """Keep-alive calls per uncompressed job-hour, by API and in all: the run's counts over its
    job-seconds times the compression; extensions corrected where the visibility timeout was
    shortened by ``visibility_factor`` (default: the worker's, rounded to whole seconds)
    rather than exactly the compression (extensions are linear in it)."""
    hours = run_job_s * compression.factor / 3600
    if hours <= 0:
        return {api: 0.0 for api in (*KEEPALIVE_APIS, "total")}
    fix = compression.factor / (visibility_factor or compression.visibility_factor)
    out = {
        api: round(counts.get(api, 0) * (fix if api in EXTENSION_APIS else 1.0) / hours, 2)
        for api in KEEPALIVE_APIS
    }
    out["total"] = round(sum(out[a] for a in KEEPALIVE_APIS), 2)
    return out


def sfn_per_s_per_1000(
    counts: dict[str, int], run_job_s: float, compression: Compression
) -> dict[str, float]:
    """Step Functions calls per uncompressed second per 1,000 jobs in flight, by API: calls
    over (job-seconds x compression) x 1,000. Jobs in flight = jobs running on a worker."""
    seconds = run_job_s * compression.factor
    if seconds <= 0:
        return {}
    return {
        api: round(n / seconds * 1000, 3)
        for api, n in sorted(counts.items())
        if api.startswith("states:") and n
    }


def running_at(spans: list[tuple[datetime, datetime]], when: datetime) -> int:
    return sum(1 for start, end in spans if start <= when < end)


def per_running_job(
    samples: list[tuple[datetime, int, int, int]],
    baseline: dict[int, tuple[int, int]],
    spans_by_pid: dict[int, list[tuple[datetime, datetime]]],
) -> dict[str, float]:
    """Worker threads and resident KB per running job: for each sample (time, pid, threads,
    RSS KB) of a worker running jobs, (value - the worker's idle value) / jobs running on it;
    the median and the largest over samples."""
    threads, rss = [], []
    for when, pid, n_threads, rss_kb in samples:
        running = running_at(spans_by_pid.get(pid, []), when)
        if running <= 0 or pid not in baseline:
            continue
        idle_threads, idle_rss = baseline[pid]
        threads.append((n_threads - idle_threads) / running)
        rss.append((rss_kb - idle_rss) / running)
    if not threads:
        return {}
    return {
        "threads_per_running_job_median": round(_median(threads), 2),
        "threads_per_running_job_max": round(max(threads), 2),
        "rss_kb_per_running_job_median": round(_median(rss), 1),
        "rss_kb_per_running_job_max": round(max(rss), 1),
        "samples": len(threads),
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
