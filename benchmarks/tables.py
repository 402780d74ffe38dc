"""Markdown tables of a ``callback-bridge bench --output report.json`` run, as
docs/benchmarks.md shows them (one table per scenario, the probes, the fleet model, the
targets), so the docs are regenerated, not retyped.

    .venv/bin/python -m benchmarks.tables report.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks.report import LIMITS


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    return "\n".join([_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)])


def _spread(x: dict[str, float]) -> str:
    return f"{x['p50']:,.0f} / {x['p95']:,.0f} / {x['p99']:,.0f}"


def scenario_table(name: str, s: dict[str, Any]) -> str:
    """One scenario's per-job figures (all requests by API, then the scenario's own)."""
    rows: list[list[Any]] = [
        ["jobs / status", f"{s['jobs']} / {s['status']}"],
        ["requests per job, all APIs", s["requests_per_job"]["total"]],
    ]
    rows += [
        [f"&nbsp;&nbsp;{api}", n] for api, n in s["requests_per_job"].items() if api != "total"
    ]
    rows.append(
        ["beyond the floor (SendMessage + SendTaskSuccess), all", s["bridge_requests_per_job"]]
    )
    if "per_job_by_api" in s:
        rows.append(["beyond the floor, keep-alive and idle receives out (by API below, "
                     "the floor's two included)",
                     s["requests_per_job_beyond_floor_without_keepalive"]])  # fmt: skip
        rows += [[f"&nbsp;&nbsp;{api}", n] for api, n in s["per_job_by_api"].items()]
        rows.append(["keep-alive per job-hour (this run's jobs)",
                     s["keepalive_requests_per_job_hour"]["total"]])  # fmt: skip
        idle = s["empty_receives"]
        rows.append(["empty receives: consumers / mapping (left out above)",
                     f"{idle.get('consumers', 0)} / {idle.get('mapping', '-')}"])  # fmt: skip
        rows.append(["empty receives per consumer process-hour at 20 s long polls",
                     idle["per_consumer_process_hour_at_20s_long_poll"]])  # fmt: skip
        rates = s["sfn_calls_per_s_per_1000_in_flight"]
        rows += [[f"Step Functions calls/s per 1,000 jobs in flight, {api}", n]
                 for api, n in rates.items()]  # fmt: skip
    if s.get("latency_samples"):
        rows.append(["added latency p50 / p95 / p99, ms", _spread(s["latency_ms"])])
    if "latency_ms_as_run" in s:
        rows.append(["&nbsp;&nbsp;as run (windows compressed)", _spread(s["latency_ms_as_run"])])
    worker = s.get("worker") or {}
    if worker:
        rows.append(["worker threads per running job, median / max",
                     f"{worker['threads_per_running_job_median']} / "
                     f"{worker['threads_per_running_job_max']}"])  # fmt: skip
        rows.append(["worker RSS per running job, KB, median / max",
                     f"{worker['rss_kb_per_running_job_median']} / "
                     f"{worker['rss_kb_per_running_job_max']}"])  # fmt: skip
    rows.append(["state transitions per job", s["state_transitions_per_job"]])
    rows.append(["Lambda invocations per job", s["lambda_invocations_per_job"]])
    notes = "".join(f"\n\n* {note}" for note in s.get("notes", []))
    return f"#### {name}\n\n" + _table(["per job", name], rows) + notes


def probes_table(scenarios: dict[str, Any]) -> str:
    rows = []
    for name, s in scenarios.items():
        for probe, p in (s.get("keepalive_probes") or {}).items():
            per = p["per_job_hour"]
            rows.append([
                f"{name}: {probe}", p["jobs"], p["jobs_per_execution"], p["workers"],
                p.get("concurrency", "-"), p["window_s_uncompressed"],
                per["sqs:ChangeMessageVisibilityBatch"] + per["sqs:ChangeMessageVisibility"],
                per["states:SendTaskHeartbeat"], per["total"], p.get("model_per_job_hour", "-"),
            ])  # fmt: skip
    return _table(
        ["probe", "jobs", "per execution", "processes", "concurrency", "window, s (uncompressed)",
         "visibility calls/job-h", "heartbeats/job-h", "total/job-h", "model"],
        rows,
    )  # fmt: skip


def fleet_table(fleet: dict[str, Any]) -> str:
    rows = []
    for case, f in fleet["cases"].items():
        inputs = f["inputs"]
        for region in ("large", "other"):
            r = f[region]
            rows.append([
                case, region, inputs["heartbeats_per_job_hour"], inputs["duration_s"],
                f"{r['max_jobs_in_flight']:,}", r["completions_per_s"], r["throttles_first"],
                ", ".join(f"{a.split(':')[1]} {v:.0%}" for a, v in r["share_of_refill"].items()),
                r["completions_per_s_ceiling"], r["jobs_queues_needed"],
            ])  # fmt: skip
    return _table(
        ["case", "regions", "heartbeats/job-h (measured)", "job s", "max jobs in flight",
         "completions/s", "throttles first", "share of refill at the max",
         "completions/s ceiling", "jobs queues"],
        rows,
    )  # fmt: skip


def targets_table(targets: dict[str, Any]) -> str:
    rows = []
    for key, value in targets.items():
        if key in LIMITS:
            op, limit = LIMITS[key]
            met = value is not None and (value <= limit if op == "<=" else value >= limit)
            goal = f"{op} {limit:,g}"
        else:
            goal, met = "reported", None
        if key == "requests_per_1h_job":
            naive = targets.get("naive_requests_per_1h_job")
            half = naive is not None and value is not None and value * 2 <= naive
            goal += " and <= half of naive"
            met = met and half
        rows.append([f"`{key}`", value, goal, "-" if met is None else ("met" if met else "missed")])
    return _table(["target", "this run", "goal", ""], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path)
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text())
    parts = [scenario_table(n, s) for n, s in report["scenarios"].items()]
    parts.append(probes_table(report["scenarios"]))
    if report.get("fleet"):
        parts.append(fleet_table(report["fleet"]))
    parts.append(targets_table(report["targets"]))
    print("\n\n".join(parts))


if __name__ == "__main__":
    main()
