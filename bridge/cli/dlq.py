"""``callback-bridge dlq``: list, show, redrive, fail, delete and purge dead letters.

Thin: parses, builds the configuration and the clients, calls :mod:`bridge.ops.inspect`,
:mod:`bridge.ops.letters` (letters chosen by any id, :mod:`bridge.ops.resolve`) and
:mod:`bridge.ops.redrive`, renders. Output is plain lines with every id, ARN and URL whole on
one line (on a terminal or not); ``--json`` prints exactly one JSON document on stdout; notes
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

from bridge.aws import Clients, build_clients
from bridge.cli.display import field_lines, first_line
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
from bridge.ops.inspect import dead_letters
from bridge.ops.inspect.executions import ExecutionLens
from bridge.ops.inspect.queues import Side, choose_sides
from bridge.ops.redrive import RedriveResult, redrive_side
from bridge.ops.resolve import MANY

app = typer.Typer(
    help="Dead letters: list, show, redrive, fail, delete, purge (DLQs and their archives).",
    no_args_is_help=True,
)

QueueChoice = Annotated[
    str, typer.Option("--queue", help="jobs, results or all (each side's DLQ and archive).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
#: The CLI gives up on an unreachable endpoint sooner than a worker would.
CLI_MAX_ATTEMPTS = 3


#: What ``status``, ``dlq`` and ``jobs`` look at: one of these must be configured.
INSPECTED = (
    "jobs_queue_url",
    "results_queue_url",
    "jobs_dlq_url",
    "results_dlq_url",
    "state_machine_arn",
)


def connect(
    state_file: Path | None, tf_outputs: Path | None, region: str | None, endpoint_url: str | None
) -> tuple[BridgeConfig, Clients]:
    """Configuration (Terraform outputs, environment or state file; flags win) and clients that
    give up on an unreachable endpoint after a few attempts."""
    config = resolve_config(
        state_file, tf_outputs=tf_outputs, region=region, endpoint_url=endpoint_url
    )
    with aws_errors():  # before the region or credentials: nothing to look at is the news
        config.require_any(*INSPECTED)
        return config, build_clients(config, max_attempts=CLI_MAX_ATTEMPTS)


def sides_for(config: BridgeConfig, queue: str) -> list[Side]:
    with aws_errors():
        return choose_sides(config, queue)


def explainer_for(config: BridgeConfig, clients: Clients) -> dead_letters.Explainer:
    return dead_letters.Explainer(ExecutionLens(clients.sfn), config.state_machine_arn)


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


def letter_lines(letter: dead_letters.DeadLetter) -> list[str]:
    """One dead letter as plain lines: every id whole on its own line."""
    receives = "?" if letter.receive_count is None else str(letter.receive_count)
    reason = letter.reason + ("" if letter.reason_source == "attribute" else " (derived)")
    pairs = [("message", letter.message_id)]
    if letter.source_message_id and letter.source_message_id != letter.message_id:
        pairs.append(("original", letter.source_message_id))
    pairs += [
        ("job", f"{letter.job_id or '?'} (type {letter.job_type or '?'})"),
        ("execution", letter.execution_arn or "?"),
        ("reason", first_line(reason, 1000)),
        ("task now", letter.task_state),
        ("token", letter.token),
    ]
    head = f"{letter.queue}  age {age(letter.age_s)}  receives {receives}"
    return [head, *field_lines(pairs)]


def print_letters(letters: list[dead_letters.DeadLetter]) -> None:
    typer.echo(f"{len(letters)} dead letter(s)")
    for letter in letters:
        typer.echo("\n".join(letter_lines(letter)))


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

    Each letter: what it says about itself and what Step Functions says about
    its task now, one id per line, never wrapped. A peek counts as one receive
    of each message (ApproximateReceiveCount + 1).
    """
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
        print_letters(letters)
    for name, text in listing.notes.items():
        note(f"{name}: {text}")


AnyId = (
    "Any id: the archived or original message id, a job id, an execution name or ARN, "
    "a Map Run ARN."
)


@app.command()
def show(
    letter_id: Annotated[str, typer.Argument(metavar="ID", help=AnyId)],
    queue: QueueChoice = "all",
    events: Annotated[int, typer.Option(min=1, max=1000, help="History events shown.")] = 10,
    as_json: JsonFlag = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """One dead letter in full, or an execution's dead letters.

    The decoded message and job input (token masked), the execution's status and
    its last history events. An execution's name or ARN (or a Map Run ARN) lists
    its dead letters.
    """
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    sides = sides_for(config, queue)
    with aws_errors():
        lens = ExecutionLens(clients.sfn)
        explainer = dead_letters.Explainer(lens, config.state_machine_arn)
        peeked = letters.peek_letters(clients.sqs, sides, config.state_machine_arn)
        target = letters.resolver_over(clients.sfn, config.state_machine_arn, peeked).resolve(
            letter_id
        )
        if target.kind in MANY:
            chosen = letters.pick(peeked, [target]) if target.letters else []
            found = letters.explain_all(explainer, chosen)
            if as_json:
                emit_json([item.letter.to_json() for item in found])
            else:
                typer.echo(f"execution {target.execution_arn}")
                print_letters([item.letter for item in found])
            return
        (one,) = letters.pick(peeked, [target])
        document = dead_letters.detail(explainer.explain(one.keys.ref, one.message), lens, events)
    if as_json:
        emit_json(document)
        return
    pairs = [(key, str(document.get(key))) for key in dead_letters.DeadLetter.__dataclass_fields__]
    typer.echo("\n".join(field_lines(pairs, indent="")))
    for title in ("message", "attributes", "job_input", "execution"):
        typer.echo(f"--- {title.replace('_', ' ')} ---")
        typer.echo(json.dumps(document.get(title), indent=2, default=str, ensure_ascii=False))
    typer.echo(f"--- last {len(document['events'])} events ---")
    for event in document["events"]:
        # Whole, on one line: a cause or an ARN cut at some length cannot be read or copied.
        details = json.dumps(event["details"], default=str, ensure_ascii=False)
        typer.echo(f"{event['id']}  {event['timestamp']}  {event['type']}  {details}")


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


def queue_lines(results: list[RedriveResult]) -> list[str]:
    lines = []
    for r in results:
        to_move = "" if r.to_move is None else f" of {r.to_move}"
        lines.append(
            f"{r.queue} -> {r.destination}: {r.status} by {r.method}, moved {r.moved}{to_move}, "
            f"failed {r.failed}" + (f"; {r.note}" if r.note else "")
        )
    return lines


def outcome_line(outcome: letters.LetterOutcome) -> str:
    job = f" (job {outcome.job_id})" if outcome.job_id else ""
    where = f" -> {outcome.destination}" if outcome.destination else ""
    text = f"{outcome.action} {outcome.message_id}{job} from {outcome.queue}{where}"
    return text + (f": {outcome.note}" if outcome.note else "")


Ids = Annotated[list[str] | None, typer.Argument(metavar="[ID]...", help=AnyId)]


@app.command()
def redrive(
    ids: Ids = None,
    queue: QueueChoice = "all",
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also malformed letters and letters whose task is closed (a queue-wide "
            "redrive then moves every letter).",
        ),
    ] = False,
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
    """Send dead letters back to their source queue: the letters named, or every
    one.

    Malformed letters (their queue would refuse them again) and letters whose
    task is closed (nothing would run: use 'callback-bridge rerun') are skipped
    unless --force. Without ids and with nothing to skip, the whole DLQ and
    archive move at once (StartMessageMoveTask where the endpoint has it, else
    copy then delete; Ctrl-C / SIGTERM stop between batches). Exit code 1 when a
    letter was skipped or a move failed.
    """
    if method not in ("auto", "move-task", "copy"):
        fail(f"unknown method {method!r}: choose auto, move-task or copy")
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    sides = sides_for(config, queue)
    results: list[RedriveResult] = []
    outcomes: list[letters.LetterOutcome] = []
    explainer = explainer_for(config, clients)
    with aws_errors(), stop_on_signal() as stop:
        whole_queues = force and not ids
        if not ids and not force:
            peeked = letters.peek_letters(clients.sqs, sides, config.state_machine_arn)
            whole_queues = not letters.review(letters.explain_all(explainer, peeked))
        if whole_queues:
            for side in sides:
                results += redrive_side(
                    clients.sqs,
                    side,
                    max_per_second=max_per_second,
                    method=method,  # type: ignore[arg-type]
                    timeout_s=timeout,
                    stop=stop.is_set,
                )
        else:
            with letters.holding(
                clients.sqs, clients.sfn, sides, config.state_machine_arn, ids or None
            ) as chosen:
                outcomes = letters.redrive_letters(clients.sqs, chosen, sides, explainer, force)
    if as_json:
        emit_json(
            {"queues": [vars(r) for r in results], "letters": [o.to_json() for o in outcomes]}
        )
    else:
        for line in queue_lines(results) + [outcome_line(o) for o in outcomes]:
            typer.echo(line)
    failed = any(r.status in ("FAILED", "STOPPED", "CANCELLED") for r in results)
    if failed or any(o.action != "redriven" for o in outcomes):
        raise typer.Exit(1)


@app.command("fail")
def fail_tasks(
    ids: Ids = None,
    all_: Annotated[bool, typer.Option("--all", help="Every dead letter of --queue.")] = False,
    queue: QueueChoice = "all",
    as_json: JsonFlag = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Fail the waiting tasks of dead letters (Bridge.DeadLettered), then delete
    them.

    Dead letters whose task is already over, or without a readable token, are
    kept; with ids given, each kept one is named with what to do instead, and
    the exit code is 1.
    """
    if all_ == bool(ids):
        fail("give either --all or one or more ids")
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    sides = sides_for(config, queue)
    explainer = explainer_for(config, clients)
    with aws_errors():
        if all_:
            report = dead_letters.fail_dead_letters(clients.sqs, clients.sfn, sides, explainer)
            job_of: dict[str, str | None] = {}
        else:
            with letters.holding(
                clients.sqs, clients.sfn, sides, config.state_machine_arn, ids or []
            ) as chosen:
                report = letters.fail_letters(clients.sfn, chosen, explainer)
                job_of = {letter.keys.message_id: letter.keys.job_id for letter in chosen}
    advice = letters.advice(report, job_of)
    if as_json:
        emit_json({**vars(report), "advice": advice})
    else:
        typer.echo(
            f"failed {len(report.failed)} task(s) and deleted their dead letters; kept: "
            f"{len(report.already_closed)} already closed, {len(report.no_token)} without a "
            f"readable token, {len(report.errors)} with errors, "
            f"{len(report.not_deleted)} not deleted"
        )
        for mid, error in report.errors.items():
            note(f"{mid}: {error}")
        if not all_:
            for mid, text in advice.items():
                note(f"{mid}: {text}")
    kept = report.already_closed or report.no_token
    if report.errors or report.not_deleted or (kept and not all_):
        raise typer.Exit(1)


@app.command()
def delete(
    ids: Ids = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: delete these letters.")] = False,
    queue: QueueChoice = "all",
    as_json: JsonFlag = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Delete the dead letters named, for good (their tasks are not told: see 'dlq
    fail').
    """
    if not ids:
        fail("give one or more ids of the dead letters to delete ('dlq purge' empties queues)")
    if not yes:
        fail("delete removes these dead letters for good; add --yes")
    config, clients = connect(state_file, tf_outputs, region, endpoint_url)
    sides = sides_for(config, queue)
    with (
        aws_errors(),
        letters.holding(clients.sqs, clients.sfn, sides, config.state_machine_arn, ids) as chosen,
    ):
        report = letters.delete_letters(chosen)
    if as_json:
        emit_json(vars(report))
    else:
        for mid in report.deleted:
            typer.echo(f"deleted {mid}")
        for mid in report.not_deleted:
            note(f"{mid}: SQS refused the delete; it is still there")
    if report.not_deleted:
        raise typer.Exit(1)


@app.command(context_settings={"allow_extra_args": True})
def purge(
    context: typer.Context,
    queue: QueueChoice = "all",
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: delete every dead letter.")] = False,
    as_json: JsonFlag = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Delete every dead letter of --queue (PurgeQueue on each DLQ and archive)."""
    if context.args:  # ids: the operator meant 'dlq delete'
        fail(
            "purge empties whole queues and takes no ids; to delete these letters: "
            f"callback-bridge dlq delete {' '.join(context.args)} --yes"
        )
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
