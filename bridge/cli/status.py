"""``callback-bridge status``: queues, running executions and consumers at a glance.

Thin: builds the configuration and clients, calls :func:`bridge.ops.status.collect`, renders with
rich (``--watch`` refreshes in place with ``rich.live.Live``) or prints one JSON document.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bridge.aws import build_clients
from bridge.cli.dlq import CLI_MAX_ATTEMPTS, age, connect, console
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


def render(status: Status, source: str) -> Group:
    queues = Table(title=f"queues at {status.taken_at} ({escape(source)})", title_justify="left")
    for column in ("queue", "name", "visible", "in flight", "delayed", "oldest", "age from"):
        numeric = column in ("visible", "in flight", "delayed", "oldest")
        queues.add_column(column, justify="right" if numeric else "left")
    for q in status.queues:
        queues.add_row(
            q.label,
            escape(q.name),
            str(q.visible),
            str(q.in_flight),
            str(q.delayed),
            age(q.oldest_age_s) if q.oldest_age_s is not None else "-",
            escape(" ".join(filter(None, (q.age_source, f"({q.age_note})" if q.age_note else "")))),
        )
    parts: list[Any] = [queues]
    if status.executions:
        runs = Table(title="running executions", title_justify="left")
        for column in ("execution", "started", "waiting", "running", "done", "total", "from"):
            runs.add_column(column)
        for run in status.executions:
            jobs = run.jobs
            runs.add_row(
                escape(run.name),
                run.started,
                _count(jobs.waiting, False),
                _count(jobs.running, False),
                _count(jobs.done, jobs.partial),
                _count(jobs.total, False),
                jobs.source + (" (capped)" if jobs.partial else ""),
            )
        parts.append(runs)
    elif status.executions is not None:
        parts.append(Text("running executions: none"))
    if status.executions_note:
        parts.append(Text(f"executions: {status.executions_note}", style="dim"))
    if status.consumers is None:
        parts.append(Text(f"consumers: {status.consumers_note}", style="dim"))
    else:
        parts.append(Text(f"consumers: {len(status.consumers)} live"))
    return Group(*parts)


def status(
    watch: Annotated[bool, typer.Option("--watch", help="Refresh in place until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds between refreshes.")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Queues, running executions and consumers at a glance.

    Per queue visible / in flight / delayed and the age of the oldest message; running
    executions with jobs waiting (not started), running (task open) and done; consumers."""
    if watch and as_json:
        fail("--watch refreshes a table; use --json without --watch")
    try:
        config, clients = connect(state_file, tf_outputs, region, endpoint_url)
        with aws_errors():
            cloudwatch = cloudwatch_client(config)
            snapshot = collect(clients, config, cloudwatch=cloudwatch)
        if as_json:
            document = {"config_source": config.source, **snapshot.to_json()}
            typer.echo(json.dumps(document, default=str))
            return
        if not watch:
            console().print(render(snapshot, config.source))
            return
        with aws_errors(), Live(render(snapshot, config.source), console=console()) as live:
            while True:
                time.sleep(interval)
                live.update(render(collect(clients, config, cloudwatch=cloudwatch), config.source))
    except KeyboardInterrupt:
        if not watch:
            raise
        # --watch ends with Ctrl-C, also before its first table is drawn
