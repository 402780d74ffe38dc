"""``callback-bridge run --jobs-file FILE``: a large fan-out from a local file of jobs.

Thin: reads and checks the file (bridge.ops.fanout.load_jobs_file), uploads it to the fan-out
bucket, starts the execution that reads it from S3 (a Distributed Map), and with ``--wait``
reads every job's result back from the Map's result files. Works against the embedded stack
(its state file) and real AWS (``BRIDGE_*`` variables or ``--tf-outputs``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bridge.aws import build_clients
from bridge.cli.options import (
    EndpointUrl,
    Region,
    StateFile,
    TfOutputs,
    aws_errors,
    fail,
    resolve_config,
)
from bridge.ops.fanout import (
    FanOutError,
    FanOutResults,
    load_jobs_file,
    read_results,
    start_from_items,
    wait_for_execution,
)

#: Give up on an unreachable endpoint after a few attempts (as dlq and status do).
CLI_MAX_ATTEMPTS = 3
#: Failed jobs listed in the human summary (all of them with --json or --results-file).
SHOWN_FAILURES = 10


def _last_line(cause: str | None, width: int = 200) -> str:
    """A cause's last non-empty line: for a traceback, the exception; the whole cause is in
    --json and --results-file."""
    lines = [line.strip() for line in (cause or "").splitlines() if line.strip()]
    return lines[-1][:width] if lines else ""


def _print(console: Console, results: FanOutResults) -> None:
    table = Table(title="callback-bridge run", show_header=False)
    table.add_row("execution", escape(results.execution_arn))
    table.add_row("status", results.status)
    table.add_row("jobs", str(len(results.jobs)))
    table.add_row("succeeded", str(results.succeeded))
    table.add_row("failed", str(results.failed))
    table.add_row("results", escape(results.manifest or "-"))
    if results.error:
        table.add_row("error", escape(f"{results.error}: {results.cause or ''}"))
    failures = [job for job in results.jobs if job.status != "SUCCEEDED"]
    for job in failures[:SHOWN_FAILURES]:
        table.add_row(f"job {job.index}", escape(f"{job.error}: {_last_line(job.cause)}"))
    if len(failures) > SHOWN_FAILURES:
        table.add_row("...", f"{len(failures) - SHOWN_FAILURES} more failed jobs (--json)")
    console.print(table)


def run(
    jobs_file: Annotated[
        Path,
        typer.Option(
            "--jobs-file",
            help="Jobs: a JSON array of objects, or JSON Lines (one object per line).",
        ),
    ],
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the run and read its results.")
    ] = True,
    timeout: Annotated[
        float | None, typer.Option(min=1, help="With --wait: give up waiting after seconds.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Execution name (default: fanout-<random>).")
    ] = None,
    bucket: Annotated[
        str | None,
        typer.Option(
            envvar="BRIDGE_FANOUT_BUCKET",
            help="S3 bucket for the job file and the results (default: the fan-out bucket).",
        ),
    ] = None,
    results_file: Annotated[
        Path | None,
        typer.Option(help="With --wait: write every job's result there, one JSON per line."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Fan a file of jobs out through S3: a Distributed Map reads them and writes each job's
    result back to S3, so neither the input nor the output meets the 256 KiB limit.

    Exit code: 0 when the run succeeded, 1 when it failed (jobs failed beyond the failure policy
    included), 2 for bad input or configuration, 3 when --timeout passed first."""
    try:
        jobs = load_jobs_file(jobs_file)
    except FanOutError as exc:
        fail(str(exc))
    config = resolve_config(
        state_file,
        "state_machine_arn",
        tf_outputs=tf_outputs,
        region=region,
        endpoint_url=endpoint_url,
    )
    bucket = bucket or config.fanout_bucket
    if not bucket:
        fail(
            "no fan-out bucket: pass --bucket or set BRIDGE_FANOUT_BUCKET (Terraform output "
            "fanout_bucket; the embedded stack's state file names its own)"
        )
    console = Console(stderr=as_json)
    with aws_errors():
        clients = build_clients(config, max_attempts=CLI_MAX_ATTEMPTS, autoscaling=False, s3=True)
        try:
            arn = start_from_items(
                clients.sfn, clients.s3, str(config.state_machine_arn), bucket, jobs, name=name
            )
        except FanOutError as exc:
            fail(str(exc))
        if not wait:
            started = {"execution_arn": arn, "jobs": len(jobs), "bucket": bucket}
            if as_json:
                print(json.dumps(started))
            else:
                console.print(f"started {escape(arn)} ({len(jobs)} jobs)")
            return
        with console.status(f"{len(jobs)} jobs running..."):
            described = wait_for_execution(clients.sfn, arn, timeout_s=timeout)
        results = read_results(clients.sfn, clients.s3, arn)
    if results_file is not None:
        lines = (json.dumps(job.as_dict()) + "\n" for job in results.jobs)
        results_file.write_text("".join(lines), encoding="utf-8")
    if as_json:
        print(json.dumps(results.summary()))
    else:
        _print(console, results)
    if described["status"] == "RUNNING":
        raise typer.Exit(3)
    if results.status != "SUCCEEDED":
        raise typer.Exit(1)
