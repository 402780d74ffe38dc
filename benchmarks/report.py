"""Measurements → the report: per-job figures, dollars per million jobs, the targets."""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import asdict
from typing import Any

from benchmarks import cost
from benchmarks.measure import spread
from benchmarks.scenarios import BenchPlan, Measured

#: The floor every callback pattern pays per job: the state machine's one SendMessage and the
#: one SendTaskSuccess/SendTaskFailure.
FLOOR_APIS = ("sqs:SendMessage", "states:SendTaskSuccess|states:SendTaskFailure")


def bridge_requests(requests: dict[str, int], jobs: int) -> float:
    """Requests per job beyond the floor (each floor API is subtracted at most once per job:
    the polling pattern has no callback to subtract)."""
    total = sum(requests.values())
    for apis in FLOOR_APIS:
        total -= min(jobs, sum(requests.get(api, 0) for api in apis.split("|")))
    return round(total / jobs, 3)


def per_job(m: Measured) -> cost.PerJob:
    return cost.PerJob(
        requests={api: n / m.jobs for api, n in m.requests.items()},
        transitions=m.transitions / m.jobs,
        lambda_invocations=0 if m.name == "polling" else m.lambda_invocations / m.jobs,
        lambda_seconds=m.completion_wall_s / m.jobs,
        polls=m.polls / m.jobs,
    )


def scenario(m: Measured, plan: BenchPlan) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "jobs": m.jobs,
        "status": m.status,
        "elapsed_s": round(m.elapsed_s, 2),
        "jobs_per_s": round(m.jobs / m.elapsed_s, 2) if m.elapsed_s else 0.0,
        "latency_ms": spread(m.added_default_ms if m.name == "polling" else m.added_ms),
        "latency_samples": len(m.added_ms),
        # Finished → the completion handler's SendTaskSuccess answered (callback scenarios):
        # the bridge's own part, without moto's interpreter recording the close.
        "callback_ms": spread(m.callback_ms),
        "queueing_ms": spread(m.queued_ms),
        "requests_per_job": {
            "total": round(sum(m.requests.values()) / m.jobs, 3),
            **{api: round(n / m.jobs, 3) for api, n in sorted(m.requests.items())},
        },
        "bridge_requests_per_job": bridge_requests(m.requests, m.jobs),
        "state_transitions_per_job": round(m.transitions / m.jobs, 2),
        "lambda_invocations_per_job": round(m.lambda_invocations / m.jobs, 3),
        "completion_s_per_job": {
            "wall": round(m.completion_wall_s / m.jobs, 5),
            "cpu": round(m.completion_cpu_s / m.jobs, 5),
        },
        "consumer_cpu_s_per_job": round(m.consumer_cpu_s / m.jobs, 5),
        "consumer_peak_rss_mb": round(m.consumer_peak_rss / 2**20, 1),
        "usd_per_million_jobs": cost.per_million(
            m.name, per_job(m), interval_s=plan.interval.default_s
        ),
    }
    if m.name == "polling":
        figures["latency_ms_measured"] = spread(m.added_ms)
        figures["interval_s"] = {"run": plan.interval.run_s, "reported": plan.interval.default_s}
    notes = list(m.notes)
    if not m.added_ms and m.name != "polling" and plan.map_mode == "DISTRIBUTED":
        notes.append(
            "DISTRIBUTED Map: added latency, state transitions and so dollars are not measured "
            "(they are in the child executions' histories, which the embedded stack cannot list)"
        )
    if notes:
        figures["notes"] = notes
    if m.failure:
        figures["failure"] = m.failure
    return figures


def targets(s: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets, each with the figures it compares (None where a scenario is
    missing)."""
    out: dict[str, Any] = {}
    bridge, naive, poll = s.get("bridge"), s.get("naive"), s.get("polling")
    # Without latency samples or transitions (a DISTRIBUTED run) those targets are not judged.
    timed = [x for x in (bridge, naive, poll) if x and x["latency_samples"]]
    if bridge:
        out["bridge_requests_per_job<=0.6"] = bridge["bridge_requests_per_job"] <= 0.6
    if bridge in timed:
        out["added_latency_p95<1s"] = bridge["latency_ms"]["p95"] < 1000
    if bridge and naive:
        ours, theirs = bridge["bridge_requests_per_job"], naive["bridge_requests_per_job"]
        out["requests_5x_below_naive"] = ours * 5 <= theirs
        out["requests_ratio_naive/bridge"] = round(theirs / ours, 1) if ours else None
    if bridge in timed and poll in timed and bridge and poll:
        ours_ms, theirs_ms = bridge["latency_ms"]["p95"], poll["latency_ms"]["p95"]
        out["latency_10x_below_polling"] = ours_ms * 10 <= theirs_ms
        out["latency_ratio_polling/bridge"] = round(theirs_ms / ours_ms, 1) if ours_ms else None
        usd, usd_poll = (x["usd_per_million_jobs"]["10 min"] for x in (bridge, poll))
        out["usd_10min_20x_below_polling"] = usd * 20 <= usd_poll
        out["usd_ratio_polling/bridge_10min"] = round(usd_poll / usd, 1) if usd else None
    return out


def machine() -> dict[str, Any]:
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def build(measured: list[Measured], plan: BenchPlan) -> dict[str, Any]:
    """The whole report; its ``scenarios`` key is what ``--json`` prints."""
    scenarios = {m.name: scenario(m, plan) for m in measured}
    bridge = next((m for m in measured if m.name == "bridge"), None)
    activities = (
        {label: round(cost.usd_per_job("activities", per_job(bridge), s) * 1e6, 2)
         for label, s in cost.DURATIONS.items()}
        if bridge else {}
    )  # fmt: skip
    return {
        "scenarios": scenarios,
        "targets": targets(scenarios),
        "activities_usd_per_million_jobs": activities,
        "keepalive_per_job_hour": cost.keepalive_per_job_hour(plan.concurrency),
        "prices": {"as_of": cost.PRICES_AS_OF, "region": cost.REGION, **cost.PRICES},
        "plan": {
            "jobs": plan.jobs,
            "consumers": plan.consumers,
            "concurrency": plan.concurrency,
            "job_ms": list(plan.job_ms),
            "backlog": plan.backlog,
            "map_mode": plan.map_mode,
        },
        "machine": machine(),
        # For benchmarks.plots: the raw added latencies and the cost model's inputs.
        "samples": {m.name: _samples(m) for m in measured},
        "per_job": {m.name: asdict(per_job(m)) for m in measured},
        "interval_s": plan.interval.default_s,
    }


def _samples(m: Measured) -> list[float]:
    values = m.added_default_ms if m.name == "polling" else m.added_ms
    return [round(v, 1) for v in values]
