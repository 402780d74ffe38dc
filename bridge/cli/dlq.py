"""``callback-bridge dlq``: list, show, redrive, fail and purge dead letters.

Thin: parses, builds the configuration and the clients, calls :mod:`bridge.ops.inspect` and
:mod:`bridge.ops.redrive`, renders. ``--json`` prints exactly one JSON document on stdout; notes
and errors go to stderr.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bridge.aws import Clients, build_clients
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
from bridge.ops.inspect import dead_letters
from bridge.ops.inspect.executions import ExecutionLens
from bridge.ops.inspect.queues import Side, choose_sides
from bridge.ops.redrive import RedriveResult, redrive_side

app = typer.Typer(
    help="Dead letters: list, show, redrive, fail, purge (DLQs and their archives).",
    no_args_is_help=True,
)

QueueChoice = Annotated[
    str, typer.Option("--queue", help="jobs, results or all (each side's DLQ and archive).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
#: The CLI gives up on an unreachable endpoint sooner than a worker would.
CLI_MAX_ATTEMPTS = 3


def connect(
    state_file: Path | None, tf_outputs: Path | None, region: str | None, endpoint_url: str | None
) -> tuple[BridgeConfig, Clients]:
    """Configuration (Terraform outputs, environment or state file; flags win) and clients that
    give up on an unreachable endpoint after a few attempts."""
    config = resolve_config(
        state_file, tf_outputs=tf_outputs, region=region, endpoint_url=endpoint_url
    )
    with aws_errors():
        return config, build_clients(config, max_attempts=CLI_MAX_ATTEMPTS)


def sides_for(config: BridgeConfig, queue: str) -> list[Side]:
    with aws_errors():
        return choose_sides(config, queue)


def explainer_for(config: BridgeConfig, clients: Clients) -> dead_letters.Explainer:
    return dead_letters.Explainer(ExecutionLens(clients.sfn), config.state_machine_arn)


def console() -> Console:
    out = Console()
    return out if out.is_terminal else Console(width=200)


def emit_json(document: Any) -> None:
    typer.echo(json.dumps(document, indent=2, default=str, ensure_ascii=False))


def note(text: str) -> None:
    typer.secho(text, err=True, fg=typer.colors.YELLOW)


def age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    value = int(max(seconds, 0))
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if value >= size:
            return f"{value // size}{unit}{(value % size) // sub_size:02d}{sub}"
    return f"{value // 60}m{value % 60:02d}s" if value >= 60 else f"{value}s"


def letters_table(letters: list[dead_letters.DeadLetter]) -> Table:
    table = Table(title=f"{len(letters)} dead letter(s)", show_lines=True, title_justify="left")
    for column in ("queue", "message id", "job", "execution", "age", "receives", "reason"):
        table.add_column(column, overflow="fold")
    table.add_column("task now", overflow="fold")
    table.add_column("token", no_wrap=True)
    for letter in letters:  # message data is escaped: a '[' in a reason is not rich markup
        table.add_row(
            escape(letter.queue),
            escape(letter.message_id),
            f"{escape(letter.job_id or '?')}\n[dim]type {escape(letter.job_type or '?')}[/dim]",
            f"{escape(letter.execution_name or '?')}\n"
            f"[dim]{escape(letter.execution_arn or '')}[/dim]",
            age(letter.age_s),
            "?" if letter.receive_count is None else str(letter.receive_count),
            escape(letter.reason)
            + ("" if letter.reason_source == "attribute" else " [dim](derived)[/dim]"),
            escape(letter.task_state),
            escape(letter.token),
        )
    return table


@app.command("list")
def list_(
    queue: QueueChoice = "all",
    as_json: JsonFlag = False,
    limit: Annotated[int, typer.Option(min=1, help="Most messages read per queue.")] = 1000,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Peek the dead letters: nothing is consumed, all stay visible.

    Each row: what the dead letter says about itself and what Step Functions says about its
    task now. A peek counts as one receive of each message (ApproximateReceiveCount + 1)."""
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    sides = sides_for(config, queue)
    with aws_errors():
        listing = dead_letters.list_dead_letters(
            clients.sqs, sides, explainer_for(config, clients), limit
        )
    letters = [found.letter for found in listing.letters]
    if as_json:
        emit_json([letter.to_json() for letter in letters])
    else:
        console().print(letters_table(letters))
    for name, text in listing.notes.items():
        note(f"{name}: {text}")


@app.command()
def show(
    message_id: Annotated[str, typer.Argument(help="The dead letter's SQS message id.")],
    queue: QueueChoice = "all",
    events: Annotated[int, typer.Option(min=1, max=1000, help="History events shown.")] = 10,
    as_json: JsonFlag = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """One dead letter in full.

    The decoded message and job input (token masked), the execution's status and its last
    history events."""
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    sides = sides_for(config, queue)
    with aws_errors():
        lens = ExecutionLens(clients.sfn)
        explainer = dead_letters.Explainer(lens, config.state_machine_arn)
        found = dead_letters.find(clients.sqs, sides, explainer, message_id)
        document = dead_letters.detail(found, lens, events)
    if as_json:
        emit_json(document)
        return
    out = console()
    summary = Table(show_header=False, box=None)
    for key in dead_letters.DeadLetter.__dataclass_fields__:
        summary.add_row(f"[bold]{key}[/bold]", escape(str(document.get(key))))
    out.print(summary)
    for title in ("message", "attributes", "job_input", "execution"):
        out.rule(title.replace("_", " "))
        out.print_json(json.dumps(document.get(title), default=str))
    out.rule(f"last {len(document['events'])} events")
    history = Table("id", "time", "type", "details")
    for event in document["events"]:
        history.add_row(
            str(event["id"]),
            event["timestamp"],
            escape(str(event["type"])),
            escape(json.dumps(event["details"], default=str)[:500]),
        )
    out.print(history)


@contextmanager
def stop_on_signal() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM ask a redrive to stop between batches (nothing half-moved)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def redrive_table(results: list[RedriveResult]) -> Table:
    table = Table(title="redrive", title_justify="left")
    for column in ("from", "to", "method", "moved", "failed", "to move", "status", "note"):
        table.add_column(column, overflow="fold")
    for r in results:
        to_move = "" if r.to_move is None else str(r.to_move)
        table.add_row(
            r.queue,
            r.destination,
            r.method,
            str(r.moved),
            str(r.failed),
            to_move,
            r.status,
            escape(r.note),
        )
    return table


@app.command()
def redrive(
    queue: QueueChoice = "all",
    max_per_second: Annotated[
        int | None, typer.Option(min=1, max=500, help="Rate limit (SQS allows up to 500).")
    ] = None,
    method: Annotated[
        str,
        typer.Option(help="auto (StartMessageMoveTask, else copy), move-task or copy."),
    ] = "auto",
    timeout: Annotated[float, typer.Option(min=0, help="Seconds to wait for a move task.")] = 600,
    as_json: JsonFlag = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Move dead letters (DLQ and archive) back to their source queue.

    StartMessageMoveTask where the endpoint has it, else copy then delete. Ctrl-C / SIGTERM
    stop between batches: nothing is lost or duplicated."""
    if method not in ("auto", "move-task", "copy"):
        fail(f"unknown method {method!r}: choose auto, move-task or copy")
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    sides = sides_for(config, queue)
    results: list[RedriveResult] = []
    with aws_errors(), stop_on_signal() as stop:
        for side in sides:
            results += redrive_side(
                clients.sqs,
                side,
                max_per_second=max_per_second,
                method=method,  # type: ignore[arg-type]
                timeout_s=timeout,
                stop=stop.is_set,
            )
    if as_json:
        emit_json([vars(result) for result in results])
    else:
        console().print(redrive_table(results))
    if any(result.status in ("FAILED", "STOPPED", "CANCELLED") for result in results):
        raise typer.Exit(1)


@app.command("fail")
def fail_tasks(
    message_ids: Annotated[
        list[str] | None, typer.Argument(help="Message ids of the dead letters.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter of --queue.")] = False,
    queue: QueueChoice = "all",
    as_json: JsonFlag = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Fail the waiting tasks of dead letters (Bridge.DeadLettered), then delete them.

    Dead letters whose task is already over, or without a readable token, are kept and
    counted."""
    if all_ == bool(message_ids):
        fail("give either --all or one or more message ids")
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    sides = sides_for(config, queue)
    with aws_errors():
        report = dead_letters.fail_dead_letters(
            clients.sqs,
            clients.sfn,
            sides,
            explainer_for(config, clients),
            None if all_ else set(message_ids or []),
        )
    if as_json:
        emit_json(vars(report))
    else:
        typer.echo(
            f"failed {len(report.failed)} task(s) and deleted their dead letters; kept: "
            f"{len(report.already_closed)} already closed, {len(report.no_token)} without a "
            f"readable token, {len(report.errors)} with errors, "
            f"{len(report.not_deleted)} not deleted"
        )
        for mid, error in report.errors.items():
            note(f"{mid}: {error}")
    if report.errors or report.not_deleted:
        raise typer.Exit(1)


@app.command()
def purge(
    queue: QueueChoice = "all",
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: delete every dead letter.")] = False,
    as_json: JsonFlag = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Delete every dead letter of --queue (PurgeQueue on each DLQ and archive)."""
    if not yes:
        fail("purge deletes every dead letter of the chosen queues for good; add --yes")
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    sides = sides_for(config, queue)
    with aws_errors():
        purged = dead_letters.purge(clients.sqs, sides)
    if as_json:
        emit_json(purged)
    else:
        for name, count in purged.items():
            typer.echo(f"purged {name} (about {count} message(s))")
