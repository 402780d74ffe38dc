"""``callback-bridge chaos``: a seeded fault campaign on the embedded stack (bridge/chaos/,
docs/reliability.md)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bridge.cli.display import progress_bar
from bridge.cli.options import fail


def chaos(
    quick: Annotated[
        bool, typer.Option("--quick", help="200 jobs, 3 consumers, ~35 s of faults (CI).")
    ] = False,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the fault schedule (default: random, printed).")
    ] = None,
    jobs: Annotated[
        int | None, typer.Option(min=1, max=20_000, help="Jobs [1000; quick 200].")
    ] = None,
    work_dir: Annotated[Path | None, typer.Option(help="Keep logs and journals here.")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG of outcomes over time (matplotlib).")
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Last line: the summary as one JSON object.")
    ] = False,
) -> None:
    """Kill, stop and starve consumers, throttle and cut AWS calls, inject duplicates and
    fuzzed poison, then reconcile every job; exit 0 only if nothing was lost."""
    try:
        from bridge.chaos.campaign import run_campaign
        from bridge.chaos.reconcile import summarise
        from bridge.chaos.report import json_line, print_report
        from bridge.chaos.report import plot as plot_outcomes
        from bridge.chaos.schedule import QUICK, ChaosPlan
    except ImportError as exc:
        fail(
            f"chaos needs the 'chaos' extra (hypothesis): pip install 'callback-bridge[chaos]' "
            f"(in a checkout: .venv/bin/pip install -e '.[local,chaos]'; make demo does): {exc}"
        )
    chosen = seed if seed is not None else random.SystemRandom().randrange(1, 2**31)
    try:
        plan = replace(QUICK if quick else ChaosPlan(), seed=chosen)
        if jobs is not None:
            plan = replace(plan, jobs=jobs)
    except ValueError as exc:
        fail(str(exc))
    console = Console(stderr=json_output)
    console.print(f"chaos seed {chosen} (replay: callback-bridge chaos{' --quick' * quick} "
                  f"--seed {chosen}{f' --jobs {jobs}' if jobs else ''})")  # fmt: skip
    with progress_bar(console, transient=json_output) as bar:
        task = bar.add_task("jobs settled", total=plan.jobs)
        observed = run_campaign(
            plan, progress=lambda done, total: bar.update(task, completed=done), work_dir=work_dir
        )
    summary = summarise(observed)
    (observed.work_dir / "summary.json").write_text(json_line(summary) + "\n")
    print_report(console, summary)
    if plot is not None:
        try:
            plot_outcomes(observed, plot)
        except ImportError as exc:
            console.print(f"no plot: matplotlib is not installed ({exc})")
    if json_output:
        typer.echo(json_line(summary))
    raise typer.Exit(0 if summary["passed"] else 1)
