"""``callback-bridge demo``: the whole pipeline on the embedded stack, with a summary."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bridge.cli.display import progress_bar
from bridge.cli.options import fail


def demo(
    jobs: Annotated[int, typer.Option(min=1, max=10_000, help="Jobs in the one execution.")] = 20,
    consumers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 2,
    concurrency: Annotated[int, typer.Option(min=1, max=100, help="Jobs per worker.")] = 4,
    fail_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of jobs made to fail.")
    ] = 0.0,
    map_mode: Annotated[
        str,
        typer.Option(
            help="INLINE, DISTRIBUTED, or AUTO: the mode AWS would accept for --jobs "
            "(INLINE up to about 2,900 jobs; above 256 KiB of jobs they go through S3)."
        ),
    ] = "AUTO",
    timeout: Annotated[
        float | None,
        typer.Option(min=1, help="Give up after this many seconds [default: 300, 0.1 s a job]."),
    ] = None,
    work_dir: Annotated[Path | None, typer.Option(help="Keep logs and state here.")] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Last line: summary as JSON.")
    ] = False,
) -> None:
    """Start the embedded stack and C consumers, run one execution of N jobs, summarise."""
    from bridge.limits import LimitError
    from bridge.local_stack.demo import DemoPlan, run_demo
    from bridge.local_stack.stack import quiet_moto_logs

    try:
        plan = DemoPlan(
            jobs=jobs,
            consumers=consumers,
            concurrency=concurrency,
            fail_rate=fail_rate,
            map_mode=map_mode.upper(),
            timeout_s=timeout,
        )
        fan = plan.fan_out()  # before anything starts: a run AWS would refuse never starts
    except (ValueError, LimitError) as exc:
        fail(str(exc))
    quiet_moto_logs()
    logging.getLogger("bridge").setLevel(logging.WARNING)
    console = Console(stderr=json_output)
    with progress_bar(console, transient=json_output) as bar:
        source = ", from S3" if fan.needs_item_file else ""
        task = bar.add_task(
            f"{jobs} jobs ({fan.mode}{source}) on {consumers} consumers", total=jobs
        )
        summary = run_demo(
            plan, progress=lambda done, total: bar.update(task, completed=done), work_dir=work_dir
        )
    print_summary(console, summary)
    if json_output:
        typer.echo(json.dumps(summary, separators=(",", ":")))
    raise typer.Exit(0 if summary["as_intended"] else 1)


def print_summary(console: Console, summary: dict) -> None:
    table = Table(title="callback-bridge demo", show_header=False)
    for key in (
        "jobs",
        "succeeded",
        "failed",
        "timed_out",
        "dead_lettered",
        "ran_twice",
        "elapsed_s",
        "map_mode",
        "execution_status",
    ):
        table.add_row(key, str(summary[key]))
    latency = summary["latency_ms"]
    table.add_row(
        "latency ms p50/p95/max", f"{latency['p50']} / {latency['p95']} / {latency['max']}"
    )
    table.add_row(
        "DLQ messages",
        f"jobs {summary['dlq_messages']['jobs']}, results {summary['dlq_messages']['results']}",
    )
    for api, per_job in summary["requests_per_job"].items():
        table.add_row(f"requests/job {api}", str(per_job))
    table.add_row("logs", summary["work_dir"])
    table.add_row(
        "as intended",
        "yes" if summary["as_intended"] else f"NO (jobs {summary['unexpected_jobs']})",
    )
    console.print(table)
