"""``callback-bridge worker``: run a consumer against the embedded stack or real AWS."""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType
from typing import Annotated

import typer

from bridge.aws import build_clients
from bridge.cli.options import EndpointUrl, Region, StateFile, fail, resolve_config
from consumers.runner import CommandRunner, PythonRunner, Runner
from consumers.worker import Worker, WorkerSettings

DEFAULT_VISIBILITY_S = 300


def build_runner(handler: str | None, command: str | None) -> Runner:
    if bool(handler) == bool(command):
        fail(
            "give exactly one of --handler MODULE:FUNCTION or --command 'CMD' "
            "(or BRIDGE_WORKER_HANDLER / BRIDGE_WORKER_COMMAND)"
        )
    try:
        return PythonRunner.from_spec(handler) if handler else CommandRunner(command or "")
    except ValueError as exc:
        fail(str(exc))


def queue_visibility_timeout(sqs: object, queue_url: str) -> int:
    """The jobs queue's own visibility timeout: the keepalive extends by the same amount."""
    attributes = sqs.get_queue_attributes(  # type: ignore[attr-defined]
        QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"]
    )["Attributes"]
    return int(attributes.get("VisibilityTimeout", DEFAULT_VISIBILITY_S))


def worker(
    handler: Annotated[
        str | None,
        typer.Option(
            envvar="BRIDGE_WORKER_HANDLER", help="Python handler 'module:function(input, job)'."
        ),
    ] = None,
    command: Annotated[
        str | None,
        typer.Option(
            envvar="BRIDGE_WORKER_COMMAND",
            help="Shell command: input on stdin and $BRIDGE_JOB_INPUT; JSON stdout is the output.",
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(envvar="BRIDGE_WORKER_CONCURRENCY", min=1, max=1000, help="Jobs run at once."),
    ] = 4,
    wait_seconds: Annotated[
        int, typer.Option(min=0, max=20, help="Long-poll wait of each receive.")
    ] = 20,
    visibility_timeout: Annotated[
        int | None,
        typer.Option(
            min=1, max=43_200, help="Seconds each visibility extension buys [default: the queue's]."
        ),
    ] = None,
    heartbeat_interval: Annotated[
        float,
        typer.Option(
            envvar="BRIDGE_HEARTBEAT_INTERVAL",
            min=1,
            help="Seconds between SendTaskHeartbeat calls; keep well below HeartbeatSeconds.",
        ),
    ] = 60.0,
    jobs_queue_url: Annotated[str | None, typer.Option(help="Jobs queue URL.")] = None,
    results_queue_url: Annotated[str | None, typer.Option(help="Results queue URL.")] = None,
    jobs_dlq_url: Annotated[
        str | None,
        typer.Option(help="Jobs DLQ URL: malformed jobs are moved there with the reason."),
    ] = None,
    state_file: StateFile = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
    log_level: Annotated[str, typer.Option(envvar="BRIDGE_LOG_LEVEL")] = "INFO",
) -> None:
    """Long-poll the jobs queue, run each job, post its result. SIGTERM drains; a second
    SIGTERM hands running jobs back to the queue and exits."""
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s worker[%(process)d] %(message)s",
    )
    runner = build_runner(handler, command)
    config = resolve_config(
        state_file,
        "jobs_queue_url",
        "results_queue_url",
        jobs_queue_url=jobs_queue_url,
        results_queue_url=results_queue_url,
        jobs_dlq_url=jobs_dlq_url,
        region=region,
        endpoint_url=endpoint_url,
    )
    clients = build_clients(config, pool_size=concurrency + 4)
    settings = WorkerSettings(
        jobs_queue_url=config.jobs_queue_url or "",
        results_queue_url=config.results_queue_url or "",
        jobs_dlq_url=config.jobs_dlq_url,
        concurrency=concurrency,
        wait_seconds=wait_seconds,
        visibility_timeout_s=visibility_timeout
        or queue_visibility_timeout(clients.sqs, config.jobs_queue_url or ""),
        heartbeat_every_s=heartbeat_interval,
        instance_id=os.environ.get("BRIDGE_INSTANCE_ID"),
    )
    if not settings.jobs_dlq_url:
        logging.warning(
            "no jobs DLQ URL: malformed jobs reach the DLQ only through the queue's redrive policy"
        )
    loop = Worker(clients.sqs, clients.sfn, settings, runner)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        loop.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logging.info(
        "worker %s polling %s with %d slots",
        settings.worker_id,
        settings.jobs_queue_url,
        concurrency,
    )
    loop.run()
    if loop.abandoned:
        logging.shutdown()
        os._exit(130)  # running job threads cannot be joined; their messages are released
