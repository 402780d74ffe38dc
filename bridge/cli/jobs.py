"""``callback-bridge jobs``: the jobs of recent executions, failed ones first of all.

Thin: builds the configuration and clients, resolves ids (:mod:`bridge.ops.resolve`), reads
jobs (:mod:`bridge.ops.jobs`), prints plain lines with every id and ARN whole (on a terminal or
not) or one JSON document (``--json``). What was read goes to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bridge.aws import Clients, build_clients
from bridge.cli.display import field_lines
from bridge.cli.options import (
    EndpointUrl,
    Region,
    StateFile,
    TfOutputs,
    aws_errors,
    fail,
    resolve_config,
)
from bridge.config import BridgeConfig
from bridge.ops import letters
from bridge.ops.inspect.executions import ExecutionLens
from bridge.ops.inspect.queues import side_from_config
from bridge.ops.jobs import (
    DEFAULT_MAX_EXECUTIONS,
    Filter,
    Job,
    JobReader,
    JobsError,
    find_job,
    list_jobs,
    since_time,
)
from bridge.ops.resolve import MANY, Resolver, Target

app = typer.Typer(
    help="Jobs of recent executions: list them (failed, running, dead-lettered), show one.",
    no_args_is_help=True,
)
CLI_MAX_ATTEMPTS = 3
JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


def connect(
    state_file: Path | None, tf_outputs: Path | None, region: str | None, endpoint_url: str | None
) -> tuple[BridgeConfig, Clients]:
    config = resolve_config(
        state_file,
        "state_machine_arn",
        tf_outputs=tf_outputs,
        region=region,
        endpoint_url=endpoint_url,
    )
    with aws_errors():
        return config, build_clients(
            config, max_attempts=CLI_MAX_ATTEMPTS, autoscaling=False, s3=True
        )


def resolver(config: BridgeConfig, clients: Clients, with_letters: bool) -> Resolver:
    """Ids resolved against the state machine and (``with_letters``: peeked) dead letters."""
    both = [side_from_config(config, "jobs"), side_from_config(config, "results")]
    sides = [side for side in both if side.dead_letter_queues()]

    def peeked() -> list[Any]:
        return [
            letter.keys
            for letter in letters.peek_letters(clients.sqs, sides, config.state_machine_arn)
        ]

    return Resolver(clients.sfn, config.state_machine_arn, peeked, letters_of_jobs=with_letters)


def execution_of(target: Target) -> str:
    if not target.execution_arn:
        raise JobsError(f"{target.text!r} names no execution")
    return target.execution_arn


def job_line(job: Job) -> str:
    attempts = "?" if job.attempts is None else str(job.attempts)
    text = f"  {job.job_id}  {job.status}  attempts {attempts}  type {job.type or '?'}"
    if job.error:
        text += f"  {job.error}"
        if job.cause:
            text += f": {job.row()['cause']}"
    return text


def print_jobs(jobs: list[Job]) -> None:
    current = None
    for job in jobs:
        if job.execution_arn != current:
            current = job.execution_arn
            typer.echo(f"execution {current}")
        typer.echo(job_line(job))


@app.command("list")
def list_(
    failed: Annotated[
        bool, typer.Option("--failed", help="Only jobs that did not succeed.")
    ] = False,
    running: Annotated[
        bool, typer.Option("--running", help="Only jobs running or waiting for a Map slot.")
    ] = False,
    dead_lettered: Annotated[
        bool, typer.Option("--dead-lettered", help="Only jobs failed Bridge.DeadLettered.")
    ] = False,
    execution: Annotated[
        list[str] | None,
        typer.Option(
            "--execution", help="Only this execution (name, ARN or Map Run ARN); repeatable."
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Executions started within this long: 90s, 15m, 1h, 7d.")
    ] = None,
    max_executions: Annotated[
        int, typer.Option(min=1, help="Read at most this many executions, newest first.")
    ] = DEFAULT_MAX_EXECUTIONS,
    as_json: JsonFlag = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """List the jobs of recent executions: id, status, attempts, type, error,
    cause.

    Reads the newest executions started within --since (default 24h), at most
    --max-executions, each one's history (INLINE Map) or output and result files
    (Distributed Map); stderr says what it read. --json: a list of objects.
    """
    if failed + running + dead_lettered > 1:
        fail("give at most one of --failed, --running, --dead-lettered")
    which: Filter = (
        "failed"
        if failed
        else "running"
        if running
        else "dead-lettered"
        if dead_lettered
        else "all"
    )
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    with aws_errors():
        try:
            cutoff = since_time(since)
            find = resolver(config, clients, with_letters=False)
            arns = [execution_of(find.resolve(text)) for text in execution or []]
            reader = JobReader(clients.sfn, clients.s3)
            jobs = list_jobs(
                reader,
                str(config.state_machine_arn),
                which,
                list(dict.fromkeys(arns)) or None,
                None if arns else cutoff,
                max_executions,
            )
        except JobsError as exc:
            fail(str(exc))
    if as_json:
        typer.echo(json.dumps([job.row() for job in jobs], indent=2, ensure_ascii=False))
    else:
        print_jobs(jobs)
        typer.echo(f"{len(jobs)} job(s)")
    typer.secho(reader.reads.describe(None if arns else cutoff), err=True, fg=typer.colors.YELLOW)


@app.command()
def show(
    job_id: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="A job id, or the message id of its dead letter (archived or original).",
        ),
    ],
    as_json: JsonFlag = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """One job: its input, every attempt with error and cause, its dead letters,
    its execution.
    """
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    with aws_errors():
        try:
            target = resolver(config, clients, with_letters=True).resolve(job_id)
            if target.kind in MANY or target.job is None:
                raise JobsError(
                    f"{job_id!r} names an execution, not a job: "
                    f"'callback-bridge jobs list --execution {job_id}' lists its jobs"
                )
            lens = ExecutionLens(clients.sfn)
            job = find_job(
                JobReader(clients.sfn, clients.s3, lens),
                target.execution_arn,
                target.job.index,
                job_id,
            )
        except JobsError as exc:
            fail(str(exc))
        described = lens.describe(job.execution_arn) or {}
    document = job.document()
    document["dead_letters"] = [
        {"message_id": k.message_id, "queue": k.ref.name, "job_id": k.job_id}
        for k in target.letters
    ]
    document["execution"] = {
        key: str(described.get(key))
        for key in ("executionArn", "name", "status", "startDate", "stopDate")
        if described.get(key) is not None
    }
    if as_json:
        typer.echo(json.dumps(document, indent=2, default=str, ensure_ascii=False))
        return
    print_job(document)


def print_job(document: dict[str, Any]) -> None:
    keys = ("job_id", "execution_arn", "index", "type", "attempts", "status", "error")
    typer.echo("\n".join(field_lines([(k, str(document.get(k))) for k in keys], indent="")))
    typer.echo("--- input ---")
    typer.echo(json.dumps(document["input"], indent=2, default=str, ensure_ascii=False))
    if document["output"] is not None:
        typer.echo("--- output ---")
        typer.echo(json.dumps(document["output"], indent=2, default=str, ensure_ascii=False))
    typer.echo(f"--- {len(document['attempt_history'])} attempt(s) ---")
    for attempt in document["attempt_history"]:
        typer.echo(f"{attempt['job_id']}  {attempt['status']}  {attempt['started'] or ''}")
        if attempt["error"]:
            typer.echo(f"  error  {attempt['error']}")
        for line in (attempt["cause"] or "").splitlines():
            typer.echo(f"  | {line}")
    if document["cause"] and not document["attempt_history"]:
        typer.echo(f"cause: {document['cause']}")
    typer.echo(f"--- {len(document['dead_letters'])} dead letter(s) ---")
    for letter in document["dead_letters"]:
        typer.echo(f"{letter['message_id']}  {letter['queue']}")
    typer.echo("--- execution ---")
    execution = document["execution"]
    typer.echo("\n".join(field_lines([(k, v) for k, v in execution.items()], indent="")))
