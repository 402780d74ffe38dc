"""``callback-bridge bench``: the bridge against the naive callback consumer and the polling
pattern, on one embedded stack; the targets of issue 21 and the fleet model
(benchmarks/; docs/benchmarks.md)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bridge.cli.display import progress_bar
from bridge.cli.options import fail


def bench(
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="burst (500 jobs), steady and naive (40 jobs each, 120x compressed) and the "
            "keep-alive probes: every target, in under 5 minutes.",
        ),
    ] = False,
    jobs: Annotated[
        int | None, typer.Option(min=1, max=10_000, help="Jobs per scenario [1000; quick 100].")
    ] = None,
    consumers: Annotated[int, typer.Option(min=1, max=32, help="Consumer processes.")] = 2,
    concurrency: Annotated[
        int, typer.Option(min=1, max=100, help="Jobs per consumer at once.")
    ] = 10,
    interval: Annotated[
        int, typer.Option(min=1, help="The polling pattern's interval to report, seconds.")
    ] = 30,
    scale: Annotated[
        int, typer.Option(min=1, help="Run the polling interval this many times faster.")
    ] = 30,
    scenarios: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated, of bridge, burst, steady, naive, naive-results-queue, "
            "polling [quick: burst,steady,naive; else all but naive-results-queue]."
        ),
    ] = None,
    compress: Annotated[
        int,
        typer.Option(
            min=1,
            max=600,
            help="steady/naive: run time this many times faster (durations and every window).",
        ),
    ] = 120,
    executions: Annotated[
        int, typer.Option(min=1, max=1000, help="steady/naive: executions started over time.")
    ] = 8,
    jobs_per_execution: Annotated[
        int, typer.Option(min=1, max=40, help="steady/naive: jobs in each execution.")
    ] = 5,
    burst_jobs: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=10_000,
            help="burst: jobs queued first (startup calls spread over them) [500].",
        ),
    ] = None,
    job_ms: Annotated[
        str, typer.Option(help="Job durations, 'MIN,MAX' milliseconds (uniform).")
    ] = "100,300",
    backlog: Annotated[
        bool,
        typer.Option(
            "--backlog",
            help="Queue every job (INLINE: 40) before the consumers start (full batches).",
        ),
    ] = False,
    map_mode: Annotated[
        str,
        typer.Option(
            help="INLINE (at most 40 jobs queued at once, as on AWS) or DISTRIBUTED (child "
            "executions: jobs/s and requests are measured, but not the added latency and "
            "transitions, which are in the children's histories). The polling scenario is "
            "always INLINE."
        ),
    ] = "INLINE",
    work_dir: Annotated[Path | None, typer.Option(help="Keep logs here.")] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Write the whole report as JSON (targets, prices, plan, machine, raw "
            "latencies: input of python -m benchmarks.plots)."
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Last line: {"scenarios": {...}, "targets": {...}, "missed": [...], '
            '"fleet": {...}} as JSON.',
        ),
    ] = False,
) -> None:
    """Run the scenarios one after another on one embedded stack and compare them; exits 1
    when a scenario failed or a count target of issue 21 is missed."""
    try:
        from benchmarks import report
        from benchmarks.polling import PollingInterval
        from benchmarks.scenarios import BenchPlan
        from benchmarks.steady import Workload
        from benchmarks.suite import run_bench
    except ImportError as exc:
        fail(f"bench runs from a source checkout (benchmarks/ is not in the wheel): {exc}")
    from bridge.local_stack.stack import quiet_moto_logs

    default = "burst,steady,naive" if quick else "bridge,burst,steady,naive,polling"
    try:
        low, _, high = job_ms.partition(",")
        if not (low.strip().isdigit() and (high or low).strip().isdigit()):
            raise ValueError(f"--job-ms must be 'MIN,MAX' in whole milliseconds, got {job_ms!r}")
        durations = (int(low), int(high or low))
        if not durations[0] <= durations[1]:
            raise ValueError(f"--job-ms must be 'MIN,MAX' with 0 <= MIN <= MAX, got {job_ms!r}")
        plan = BenchPlan(
            jobs=jobs or (100 if quick else 1000),
            consumers=consumers,
            concurrency=concurrency,
            interval=PollingInterval(default_s=interval, scale=scale),
            job_ms=durations,
            backlog=backlog,
            map_mode=map_mode.upper(),  # type: ignore[arg-type]  # BenchPlan checks it
            scenarios=tuple(s.strip() for s in (scenarios or default).split(",") if s.strip()),
            burst_jobs=burst_jobs or 500,
            steady=Workload(
                executions=executions, jobs_per_execution=jobs_per_execution, compress=compress
            ),
        )
    except ValueError as exc:
        fail(str(exc))
    quiet_moto_logs()
    logging.getLogger("bridge").setLevel(logging.WARNING)
    console = Console(stderr=json_output)
    with progress_bar(console, transient=json_output) as bar:
        tasks = {name: bar.add_task(name, total=plan.total(name)) for name in plan.scenarios}
        measured, logs = run_bench(
            plan,
            progress=lambda name, done, total: bar.update(tasks[name], completed=done),
            work_dir=work_dir,
        )
    result = report.build(measured, plan)
    if output is not None:
        output.write_text(json.dumps(result, indent=2) + "\n")
    print_report(console, result, logs)
    if json_output:
        keys = ("scenarios", "targets", "missed", "fleet")
        typer.echo(json.dumps({k: result[k] for k in keys}))
    failed = [n for n, s in result["scenarios"].items() if s["status"] != "SUCCEEDED"]
    raise typer.Exit(1 if failed or result["missed"] else 0)


ROWS = [
    ("jobs", lambda s: s["jobs"]),
    ("execution", lambda s: s["status"]),
    ("jobs/s", lambda s: s["jobs_per_s"]),
    ("added latency ms p50/p95/p99", lambda s: "{p50} / {p95} / {p99}".format(**s["latency_ms"])),
    ("queueing ms p50/p95", lambda s: "{p50} / {p95}".format(**s["queueing_ms"])),
    ("requests/job", lambda s: s["requests_per_job"]["total"]),
    ("bridge requests/job", lambda s: s["bridge_requests_per_job"]),
    ("state transitions/job", lambda s: s["state_transitions_per_job"]),
    ("Lambda invocations/job", lambda s: s["lambda_invocations_per_job"]),
    ("consumer CPU s/job", lambda s: s["consumer_cpu_s_per_job"]),
    ("consumer peak RSS MB", lambda s: s["consumer_peak_rss_mb"]),
    ("completion s/job wall", lambda s: s["completion_s_per_job"]["wall"]),
]


def print_report(console: Console, result: dict[str, Any], logs: Path) -> None:
    scenarios = result["scenarios"]
    table = Table(title="callback-bridge bench (one embedded stack)")
    table.add_column("")
    for name in scenarios:
        table.add_column(name, justify="right")
    for label, get in ROWS:
        table.add_row(label, *(str(get(s)) for s in scenarios.values()))
    apis = sorted({a for s in scenarios.values() for a in s["requests_per_job"]} - {"total"})
    for api in apis:
        table.add_row(
            f"  {api}", *(str(s["requests_per_job"].get(api, "")) for s in scenarios.values())
        )
    for label in next(iter(scenarios.values()))["usd_per_million_jobs"]:
        table.add_row(
            f"$ per million jobs, {label}",
            *(str(s["usd_per_million_jobs"][label]) for s in scenarios.values()),
        )
    console.print(table)
    if result["activities_usd_per_million_jobs"]:
        console.print(
            "Step Functions Activities (on paper), $ per million jobs:",
            result["activities_usd_per_million_jobs"],
        )
    print_steady(console, scenarios)
    print_fleet(console, result["fleet"])
    console.print("targets:", result["targets"])
    if result["missed"]:
        console.print("[red]missed:[/red]", "; ".join(result["missed"]))
    console.print(f"prices: us-east-1 as of {result['prices']['as_of']} (benchmarks/cost.py)")
    console.print(f"logs: {logs}")


def print_steady(console: Console, scenarios: dict[str, Any]) -> None:
    """The steady and naive scenarios' own figures (per uncompressed hour and second)."""
    for name in ("steady", "naive"):
        s = scenarios.get(name)
        if s is None:
            continue
        console.print(
            f"{name}: {s['job_hours']} job-hours ({s['workload']['compress']}x compressed); "
            "per job beyond the floor, keep-alive left out:",
            s["requests_per_job_beyond_floor_without_keepalive"],
            "; keep-alive per job-hour:",
            s["keepalive_requests_per_job_hour"],
        )
        console.print(
            f"  {name}: Step Functions calls/s per 1,000 jobs in flight:",
            s["sfn_calls_per_s_per_1000_in_flight"],
        )
        if "worker" in s:
            console.print(f"  {name}: worker per running job:", s["worker"])
        for probe, figures in s.get("keepalive_probes", {}).items():
            console.print(
                f"  keep-alive probe {probe}: {figures['jobs']} jobs, "
                f"{figures['jobs_per_execution']} per execution, --concurrency "
                f"{figures['concurrency']}: per job-hour {figures['per_job_hour']} "
                f"(model {figures.get('model_per_job_hour', '-')})"
            )


def print_fleet(console: Console, fleet: dict[str, Any] | None) -> None:
    """One line per case and region class: the fleet model's answer."""
    if not fleet:
        return
    table = Table(
        title=f"fleet model (every Step Functions API <= {fleet['headroom']:.0%} of its refill)"
    )
    for column in ("case", "region", "max jobs in flight", "completions/s (1 h jobs)",
                   "throttles first", "completions/s ceiling"):  # fmt: skip
        table.add_column(column)
    for case, figures in fleet["cases"].items():
        for region in ("large", "other"):
            f = figures[region]
            table.add_row(
                case, region, f"{f['max_jobs_in_flight']:,}", str(f["completions_per_s"]),
                f["throttles_first"], str(f["completions_per_s_ceiling"]),
            )  # fmt: skip
    console.print(table)
