"""``callback-bridge run --jobs-file FILE``: a large fan-out from a local file of jobs.

Thin: reads and checks the file (bridge.ops.fanout.load_jobs_file), uploads it to the fan-out
bucket, starts the execution that reads it from S3 (a Distributed Map), and with ``--wait``
reads every job's result back from the Map's result files, showing the counts as they change;
``--attach`` does the same for a run started with ``--no-wait``. Works against the embedded stack
(its state file) and real AWS (``BRIDGE_*`` variables or ``--tf-outputs``).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import ClientError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, TextColumn
from rich.progress import Progress as RichProgress
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
from bridge.errors import error_code
from bridge.ops.fanout import (
    FanOutError,
    FanOutResults,
    Progress,
    ProgressReader,
    load_jobs_file,
    read_results,
    start_from_items,
    wait_for_execution,
)
from bridge.ops.resolve import execution_arn_for

#: Give up on an unreachable endpoint after a few attempts (as dlq and status do).
CLI_MAX_ATTEMPTS = 3
#: Failed jobs listed in the human summary (all of them with --json or --results-file).
SHOWN_FAILURES = 10
#: How often the progress counts are read (one DescribeMapRun each).
PROGRESS_EVERY_S = 1.0


def _last_line(cause: str | None, width: int = 200) -> str:
    """A cause's last non-empty line: for a traceback, the exception; the whole cause is in
    --json and --results-file."""
    lines = [line.strip() for line in (cause or "").splitlines() if line.strip()]
    return lines[-1][:width] if lines else ""


def result_rows(results: FanOutResults) -> list[tuple[str, str]]:
    """(label, value) of the summary, ids included, nothing shortened."""
    rows = [
        ("execution", results.execution_arn),
        ("status", results.status),
        ("jobs", str(len(results.jobs))),
        ("succeeded", str(results.succeeded)),
        ("failed", str(results.failed)),
        ("results", results.manifest or "-"),
    ]
    if results.error:
        rows.append(("error", f"{results.error}: {results.cause or ''}"))
    failures = [job for job in results.jobs if job.status != "SUCCEEDED"]
    for job in failures[:SHOWN_FAILURES]:
        rows.append((f"job {job.index}", f"{job.error}: {_last_line(job.cause)}"))
    if len(failures) > SHOWN_FAILURES:
        rows.append(("...", f"{len(failures) - SHOWN_FAILURES} more failed jobs (--json)"))
    return rows


#: Rows whose value is an id someone copies: never inside a table cell, which rich shortens.
ID_ROWS = ("execution", "results")


def print_results(console: Console, results: FanOutResults) -> None:
    """The summary. Off a terminal: plain ``label  value`` lines. On one: a table of the
    counts and errors, then the execution ARN and the manifest path as plain lines below it,
    whole whatever the width (a table cell would cut them with "...")."""
    rows = result_rows(results)
    if not console.is_terminal:
        for label, value in rows:
            typer.echo(f"{label:<10} {value}", file=console.file)
        return
    table = Table(title="callback-bridge run", show_header=False)
    for label, value in rows:
        if label not in ID_ROWS:
            table.add_row(escape(label), escape(value))
    console.print(table)
    for label, value in rows:
        if label in ID_ROWS:
            typer.echo(f"{label:<10} {value}", file=console.file)


class LineProgress:
    """Off a terminal: one plain line on stderr each time the counts change."""

    def __init__(self) -> None:
        self.last: str | None = None

    def show(self, progress: Progress) -> None:
        line = progress.line()
        if line != self.last:
            typer.echo(line, err=True)
            self.last = line


class BarProgress:
    """On a terminal: a rich progress bar on stderr, done out of the total, the counts as its
    description."""

    def __init__(self, console: Console) -> None:
        self.bar = RichProgress(
            TextColumn("{task.description}"), BarColumn(), console=console, transient=False
        )
        self.task = self.bar.add_task("starting", total=None)

    def show(self, progress: Progress) -> None:
        self.bar.update(
            self.task, description=progress.line(), total=progress.total, completed=progress.done
        )

    def __enter__(self) -> BarProgress:
        self.bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.bar.stop()


def follow(
    sfn: Any,
    execution_arn: str,
    timeout: float | None,
    on_terminal: bool,
    every_s: float = PROGRESS_EVERY_S,
) -> dict[str, Any]:
    """Wait for the run, showing its progress (rich on a terminal, a line per change
    otherwise); the last DescribeExecution answer."""
    reader = ProgressReader(sfn, execution_arn)
    shown = BarProgress(Console(stderr=True)) if on_terminal else LineProgress()
    next_read = 0.0

    def poll() -> None:
        nonlocal next_read
        if time.monotonic() >= next_read:
            next_read = time.monotonic() + every_s
            shown.show(reader.read())

    with shown if isinstance(shown, BarProgress) else contextlib.nullcontext():
        described = wait_for_execution(sfn, execution_arn, timeout_s=timeout, on_poll=poll)
        shown.show(reader.read())
    return described


def run(
    jobs_file: Annotated[
        Path | None,
        typer.Option(
            "--jobs-file",
            help="Jobs: a JSON array of objects, or JSON Lines (one object per line).",
        ),
    ] = None,
    attach: Annotated[
        str | None,
        typer.Option(
            "--attach",
            metavar="EXECUTION",
            help="Instead of starting a run: wait for one started with --no-wait (name or "
            "ARN) and show its results as run does.",
        ),
    ] = None,
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

    While it waits it shows done / failed / running counts (a bar on a terminal, a line per
    change otherwise, on stderr). --no-wait prints only the execution ARN; --attach ARN
    later waits for that run and shows its results.

    Exit code: 0 when the run succeeded, 1 when it failed (jobs failed beyond the failure policy
    included), 2 for bad input or configuration, 3 when --timeout passed first."""
    if (jobs_file is None) == (attach is None):
        fail("give --jobs-file FILE to start a run, or --attach EXECUTION to follow one")
    if attach is not None and (name or not wait):
        fail("--attach EXECUTION waits for a run already started: no --name or --no-wait")
    jobs = None
    if jobs_file is not None:
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
    if jobs is not None and not bucket:
        fail(
            "no fan-out bucket: pass --bucket or set BRIDGE_FANOUT_BUCKET (Terraform output "
            "fanout_bucket; the embedded stack's state file names its own)"
        )
    with aws_errors():
        clients = build_clients(config, max_attempts=CLI_MAX_ATTEMPTS, autoscaling=False, s3=True)
        if jobs is None:
            arn = attached(clients.sfn, str(config.state_machine_arn), str(attach))
        else:
            try:
                arn = start_from_items(
                    clients.sfn,
                    clients.s3,
                    str(config.state_machine_arn),
                    str(bucket),
                    jobs,
                    name=name,
                )
            except FanOutError as exc:
                fail(str(exc))
            if not wait:
                if as_json:
                    typer.echo(
                        json.dumps({"execution_arn": arn, "jobs": len(jobs), "bucket": bucket})
                    )
                else:
                    typer.echo(arn)  # alone and whole: scripts and people copy it
                    typer.echo(
                        f"started {len(jobs)} jobs; "
                        f"results later: callback-bridge run --attach {arn}",
                        err=True,
                    )
                return
        described = follow(clients.sfn, arn, timeout, Console(stderr=True).is_terminal)
        try:
            results = read_results(clients.sfn, clients.s3, arn)
        except FanOutError as exc:
            fail(str(exc))
    if results_file is not None:
        lines = (json.dumps(job.as_dict()) + "\n" for job in results.jobs)
        results_file.write_text("".join(lines), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(results.summary()))
    else:
        print_results(Console(), results)
    if described["status"] == "RUNNING":
        raise typer.Exit(3)
    if results.status != "SUCCEEDED":
        raise typer.Exit(1)


def attached(sfn: Any, state_machine_arn: str, text: str) -> str:
    """The ARN of the execution ``text`` names (its ARN, or its name on the bridge's state
    machine), started by ``run --jobs-file``; an error naming it when there is none, or when
    its jobs came in the input (``jobs list --execution`` reads those)."""
    arn = text if text.startswith("arn:") else execution_arn_for(state_machine_arn, text)
    if arn is None:
        fail(f"{text!r} is not an execution name or ARN")
    try:
        described = sfn.describe_execution(executionArn=arn)
    except ClientError as exc:
        if error_code(exc) in ("ExecutionDoesNotExist", "InvalidArn"):
            fail(f"no execution {text!r} (looked for {arn})")
        raise
    try:
        started_from_file = "items" in json.loads(described.get("input") or "{}")
    except (ValueError, TypeError):
        started_from_file = False
    if not started_from_file:
        fail(
            f"execution {arn} was not started by 'run --jobs-file' (its input has no "
            f"item file): follow it with 'callback-bridge jobs list --execution {arn}'"
        )
    return arn
