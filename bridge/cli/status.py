"""``callback-bridge status``: queues, running executions and consumers at a glance.

Thin: builds the configuration and clients, calls :func:`bridge.ops.status.collect`, prints.
The picture is plain lines whose last column is the queue or execution name, never padded,
wrapped or shortened (on a terminal or not, at any width), so it can be copied. ``--json``
prints one JSON object on one line. ``--watch`` prints a new picture every ``--interval``
seconds until Ctrl-C (or ``--count`` pictures): on a terminal it redraws the screen, elsewhere
(a pipe, a file, ``| tee``) each picture follows the last, and with ``--json`` each is one
JSON object on its own line (JSON Lines), ready for ``jq`` or a log shipper.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer
from rich.console import Console

from bridge.aws import build_clients
from bridge.cli.display import aligned
from bridge.cli.dlq import CLI_MAX_ATTEMPTS, age, connect
from bridge.cli.options import EndpointUrl, Region, StateFile, TfOutputs, aws_errors, fail
from bridge.config import BridgeConfig
from bridge.ops.status import Status, collect


def cloudwatch_client(config: BridgeConfig) -> Any | None:
    """CloudWatch, for queue ages, on real AWS only (no endpoint override: the embedded stack
    has no SQS metrics, its ages come from a peek)."""
    if config.endpoint_url:
        return None
    return build_clients(
        config, max_attempts=CLI_MAX_ATTEMPTS, autoscaling=False, cloudwatch=True
    ).cloudwatch


def _count(value: int | None, partial: bool) -> str:
    return "?" if value is None else f"{value}{'+' if partial else ''}"


def frame_lines(status: Status, source: str) -> list[str]:
    """One picture as plain lines: aligned columns, names last (see the module docstring)."""
    lines = [f"queues at {status.taken_at} (configuration from {source})"]
    rows = [["queue", "visible", "in flight", "delayed", "oldest", "age from", "name"]]
    notes = []
    for q in status.queues:
        oldest = age(q.oldest_age_s) if q.oldest_age_s is not None else "-"
        rows.append(
            [
                q.label,
                str(q.visible),
                str(q.in_flight),
                str(q.delayed),
                oldest,
                q.age_source or "-",
                q.name,
            ]
        )
        if q.age_note:
            notes.append(f"  {q.label}: age {q.age_note}")
    lines += aligned(rows, right=frozenset({1, 2, 3, 4})) + notes
    if status.executions:
        lines.append("running executions")
        runs = [["started", "waiting", "running", "done", "total", "from", "name"]]
        for run in status.executions:
            jobs = run.jobs
            runs.append(
                [
                    run.started,
                    _count(jobs.waiting, False),
                    _count(jobs.running, False),
                    _count(jobs.done, jobs.partial),
                    _count(jobs.total, False),
                    jobs.source + (" (capped)" if jobs.partial else ""),
                    run.name,
                ]
            )
        lines += aligned(runs, right=frozenset({1, 2, 3, 4}))
    elif status.executions is not None:
        lines.append("running executions: none")
    if status.executions_note:
        lines.append(f"executions: {status.executions_note}")
    if status.consumers is None:
        lines.append(f"consumers: {status.consumers_note}")
    else:
        lines.append(f"consumers: {len(status.consumers)} live")
    return lines


def json_line(status: Status, source: str) -> str:
    """One picture as one line of JSON (``--json``; with ``--watch``, JSON Lines)."""
    return json.dumps({"config_source": source, **status.to_json()}, default=str)


def pictures(
    take: Callable[[], Status],
    interval_s: float,
    count: int | None,
    sleep: Callable[[float], None] | None = None,
) -> Iterator[Status]:
    """``count`` pictures (None: without end), ``interval_s`` apart (``sleep``, by default
    :func:`time.sleep`, waits between two)."""
    taken = 0
    while count is None or taken < count:
        if taken:
            (sleep or time.sleep)(interval_s)
        yield take()
        taken += 1


def status(
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="A new picture every --interval seconds until Ctrl-C: redrawn on a "
            "terminal, one after another elsewhere, one JSON line each with --json.",
        ),
    ] = False,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between refreshes.")] = 2.0,
    count: Annotated[
        int | None,
        typer.Option(min=1, help="With --watch: stop after this many pictures."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object on one line of stdout.")
    ] = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Queues, running executions and consumers at a glance.

    Per queue visible / in flight / delayed and the age of the oldest message; running
    executions with jobs waiting (not started), running (task open) and done; consumers."""
    if count is not None and not watch:
        fail("--count is the number of --watch pictures; add --watch")
    screen = Console()
    redraw = watch and not as_json and screen.is_terminal
    try:
        config, clients = connect(state_file, tf_outputs, region, endpoint_url)
        with aws_errors():
            cloudwatch = cloudwatch_client(config)

            def take() -> Status:
                return collect(clients, config, cloudwatch=cloudwatch)

            for shown, snapshot in enumerate(pictures(take, interval, count if watch else 1)):
                if as_json:
                    typer.echo(json_line(snapshot, config.source))
                    continue
                if redraw:
                    screen.clear()
                elif shown:
                    typer.echo("")  # pictures one after another, a blank line between
                typer.echo("\n".join(frame_lines(snapshot, config.source)))
    except KeyboardInterrupt:
        if not watch:
            raise
        # --watch ends with Ctrl-C, also before its first picture is drawn
