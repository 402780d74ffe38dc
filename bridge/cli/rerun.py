"""``callback-bridge rerun``: start new executions with the inputs of jobs that failed.

Thin: resolves ids (:mod:`bridge.ops.resolve`), reads the jobs (:mod:`bridge.ops.jobs`),
starts one execution per source execution (:mod:`bridge.ops.rerun`). Made for scripts: it never
prompts, and stdout holds only each new execution's ARN on a line of its own (``--json``: one
document); what it did goes to stderr. ``--redrive EXECUTION`` instead continues that execution
in place with Step Functions' RedriveExecution (:func:`bridge.ops.rerun.redrive`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bridge.cli.jobs import connect, execution_of, resolver
from bridge.cli.options import EndpointUrl, Region, StateFile, TfOutputs, aws_errors, fail
from bridge.ops.jobs import (
    DEFAULT_MAX_EXECUTIONS,
    Job,
    JobReader,
    JobsError,
    find_job,
    list_jobs,
    since_time,
)
from bridge.ops.rerun import Started, group, redrive, start_rerun
from bridge.ops.resolve import MANY, Resolver


def rerun(
    ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[ID]...",
            help="Jobs to run again: a job id, its dead letter's message id (archived or "
            "original); an execution name or ARN runs its failed jobs again.",
        ),
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Every failed job of recent executions.")
    ] = False,
    execution: Annotated[
        list[str] | None,
        typer.Option("--execution", help="With --failed: only this execution; repeatable."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="With --failed: executions started within this long (default 24h)."),
    ] = None,
    max_executions: Annotated[
        int, typer.Option(min=1, help="With --failed: read at most this many executions.")
    ] = DEFAULT_MAX_EXECUTIONS,
    bucket: Annotated[
        str | None,
        typer.Option(
            envvar="BRIDGE_FANOUT_BUCKET",
            help="S3 bucket for jobs too many or too large for an execution input.",
        ),
    ] = None,
    redrive_execution: Annotated[
        str | None,
        typer.Option(
            "--redrive",
            metavar="EXECUTION",
            help="Continue this FAILED, TIMED_OUT or ABORTED execution (name or ARN) in place "
            "with Step Functions' RedriveExecution: only its unfinished jobs run again.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Run jobs again in a new execution (one per source execution) with their
    inputs.

    Prints each new execution's ARN on a line of its own; follow one with
    'callback-bridge jobs list --execution ARN'. Never prompts. Exit code 0 also
    when there was nothing to run (stderr says so), 2 for an id that names no
    job. With --redrive, the execution keeps its ARN (printed) and exit code 2
    says why it cannot be redriven.
    """
    if redrive_execution is not None:
        # --bucket is not refused: BRIDGE_FANOUT_BUCKET sets it in every `local env` shell.
        if ids or failed or execution or since:
            fail("--redrive EXECUTION goes alone: no job ids, --failed, --execution or --since")
        redrive_one(redrive_execution, as_json, state_file, tf_outputs, region, endpoint_url)
        return
    if bool(ids) == failed:
        fail("give job ids, or --failed (with --execution / --since to narrow it)")
    if (execution or since) and not failed:
        fail("--execution and --since go with --failed")
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    started: list[Started] = []
    with aws_errors():
        try:
            find = resolver(config, clients, with_letters=False)
            reader = JobReader(clients.sfn, clients.s3)
            if failed:
                arns = [execution_of(find.resolve(text)) for text in execution or []]
                jobs = list_jobs(
                    reader,
                    str(config.state_machine_arn),
                    "failed",
                    list(dict.fromkeys(arns)) or None,
                    None if arns else since_time(since),
                    max_executions,
                )
            else:
                jobs = chosen_jobs(find, reader, ids or [])
            for source, batch in group(jobs).items():
                one = start_rerun(
                    clients.sfn,
                    clients.s3,
                    str(config.state_machine_arn),
                    batch,
                    bucket or config.fanout_bucket,
                )
                started.append(one)
                if not as_json:
                    typer.echo(one.execution_arn)
                typer.echo(
                    f"{len(batch)} job(s) of {source} run again in {one.execution_arn}"
                    + (" (through S3)" if one.via == "s3" else ""),
                    err=True,
                )
        except JobsError as exc:
            fail(str(exc))
    if as_json:
        typer.echo(json.dumps([one.to_json() for one in started], indent=2))
    if not started:
        typer.echo("nothing to run again: no failed job found", err=True)


def chosen_jobs(find: Resolver, reader: JobReader, ids: list[str]) -> list[Job]:
    """The jobs ``ids`` name; an execution (or Map Run) names its failed jobs."""
    jobs: list[Job] = []
    for text in ids:
        target = find.resolve(text)
        if target.kind in MANY:
            jobs += [job for job in reader.jobs(execution_of(target)) if job.failed]
            continue
        if target.job is None:
            raise JobsError(f"{text!r} names no job (a malformed dead letter has none)")
        jobs.append(find_job(reader, target.execution_arn, target.job.index, text))
    return jobs


def redrive_one(
    text: str,
    as_json: bool,
    state_file: Path | None,
    tf_outputs: Path | None,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """``rerun --redrive EXECUTION``: the execution's ARN on stdout (``--json``: one
    document), what happened on stderr; one ``error:`` line and exit code 2 otherwise."""
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    with aws_errors():
        try:
            target = resolver(config, clients, with_letters=False).resolve(text)
            if target.kind not in MANY:  # a Map Run ARN redrives its parent execution
                raise JobsError(
                    f"{text!r} is a {target.kind}: --redrive takes an execution name or ARN"
                )
            done = redrive(clients.sfn, execution_of(target))
        except JobsError as exc:
            fail(str(exc))
    if as_json:
        typer.echo(json.dumps(done.to_json(), indent=2))
    else:
        typer.echo(done.execution_arn)
    count = "" if done.redrive_count is None else f", redrive {done.redrive_count}"
    typer.echo(
        f"redriven: was {done.previous_status}, running again since {done.redrive_date}{count}; "
        f"follow it with 'callback-bridge jobs list --execution {done.execution_arn}'",
        err=True,
    )
