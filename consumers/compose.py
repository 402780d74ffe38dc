"""The worker's composition root: from :class:`~consumers.settings.ServiceSettings` to a
:class:`~consumers.service.Service` ready to run.

:func:`build_service` is the one place that knows how the pieces fit: the runner, the intake,
the metrics, the timing model (the flags, completed by the jobs queue's own attributes), the
claim check, the :class:`~consumers.worker.Worker` and, on EC2, the instance handling. Clients
come in from :mod:`bridge.aws` (through ``connect``), the clock from the caller.

Everything that can be checked without AWS is checked before ``connect`` is called; a bad
setting, a queue (jobs, jobs DLQ) or claim-check bucket that does not exist or answer, or
instance metadata that is required but absent raise :class:`ValueError` with one line naming
what to change; the CLI exits 2 with it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from bridge.aws import Clients
from bridge.claim_check import ClaimCheck, queue_limit
from bridge.config import ENVIRONMENT, BridgeConfig
from bridge.errors import problem
from consumers.command import CommandRunner
from consumers.containment import Containment
from consumers.ec2 import InstanceHandling, InstanceSettings
from consumers.intake import Intake
from consumers.isolated import IsolatedPythonRunner
from consumers.metrics import WorkerMetrics
from consumers.process import DEFAULT_GRACE_S
from consumers.runner import Isolation, PythonRunner, Runner
from consumers.sandbox import Sandbox
from consumers.service import Service
from consumers.settings import ServiceSettings, WorkerSettings, parse_job_timeouts
from consumers.spool import SpoolError, SpoolPlace, resolve_state_dir, scope
from consumers.worker import Worker

log = logging.getLogger(__name__)

#: Where the queues are and the clients to reach them (the CLI resolves and builds both).
Connect = Callable[[], tuple[BridgeConfig, Clients]]
#: Below this maxReceiveCount a crash and a drain release can dead-letter a job that never failed.
MIN_SAFE_RECEIVE_COUNT = 3


@dataclass(frozen=True)
class Pieces:
    """What is built from the settings alone, before any AWS call."""

    runner: Runner
    #: Runs redelivered jobs of an in-thread handler (None: ``runner`` already isolates).
    isolated_runner: Runner | None
    intake: Intake
    metrics: WorkerMetrics
    instance: InstanceSettings
    job_timeouts: dict[str, int]
    #: What job code can reach (environment, user, token).
    sandbox: Sandbox


def build_service(
    settings: ServiceSettings, connect: Connect, clock: Callable[[], float] = time.monotonic
) -> Service:
    """The worker service of ``settings``; ``connect`` is called once the settings check out."""
    pieces = build_pieces(settings)
    config, clients = connect()
    spool = build_spool(
        settings.state_dir, config.jobs_queue_url or "", config.results_queue_url or ""
    )
    instance = replace(
        pieces.instance,
        metadata_endpoint=config.metadata_endpoint,
        instance_id=config.instance_id,
        group_name=config.asg_name,
        hook_name=config.lifecycle_hook_name,
    )
    worker_settings = WorkerSettings(  # checked here, before the first request
        jobs_queue_url=config.jobs_queue_url or "",
        results_queue_url=config.results_queue_url or "",
        jobs_dlq_url=config.jobs_dlq_url,
        concurrency=settings.concurrency,
        wait_seconds=settings.wait_seconds,
        delete_window_s=settings.delete_window,
        timing=settings.timing(lifecycle_hook=instance.enabled),
        job_timeouts=pieces.job_timeouts,
        intake=pieces.intake,
        instance_id=config.instance_id,
        crash_limit=settings.crash_limit,
    )
    # Every queue and bucket the worker uses answers before it takes a job (fail fast), but
    # the results queue: see warn_unless_answers.
    attributes = queue_attributes(
        clients.sqs, worker_settings.jobs_queue_url, source=origin(config, "jobs_queue_url")
    )
    warn_unless_answers(clients.sqs, worker_settings.results_queue_url)
    check_jobs_dlq(clients.sqs, config)
    check_bucket(clients.s3, config)
    claim_check = build_claim_check(settings, config, clients)
    redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
    timing = settings.timing(
        queue_visibility_s=int(attributes.get("VisibilityTimeout", 300)),
        max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
        lifecycle_hook=instance.enabled,
    )
    worker_settings = replace(worker_settings, timing=timing)  # checked again, complete
    warn_about(worker_settings)
    worker = Worker(
        clients.sqs,
        clients.sfn,
        worker_settings,
        pieces.runner,
        clock=clock,
        claim_check=claim_check,
        isolated_runner=pieces.isolated_runner,
        spool=spool,
    )
    service = Service(worker, pieces.metrics, health_port=settings.health_port)
    # Subreaper, job cgroups, capabilities: process-wide, so only when the service runs.
    service.companions.append(Containment(pieces.sandbox.run_as is not None))
    if instance.enabled:
        handling = InstanceHandling(worker, clients.autoscaling, instance)
        try:
            handling.start()
        except (RuntimeError, ClientError, BotoCoreError) as exc:
            raise ValueError(f"--instance-handling: {exc}") from exc
        service.on_stopped.insert(0, handling.stop)
    return service


def build_pieces(settings: ServiceSettings) -> Pieces:
    """The runner (its handler imported, its program found), intake, metrics and instance
    settings; raises :class:`ValueError` for the first bad one."""
    job_timeouts = parse_job_timeouts(settings.job_timeouts)
    intake = Intake(settings.token_path, settings.input_path, settings.default_job_type)
    sandbox = Sandbox.from_settings(settings.run_as, settings.pass_env, settings.expose_token)
    runner = build_runner(
        settings.handler,
        settings.command,
        cast(Isolation, settings.isolation),
        settings.cancel_grace,
        sandbox=sandbox,
    )
    instance = InstanceSettings(
        settings.instance_handling,
        settings.scale_in_protection,
        hook_timeout_s=settings.lifecycle_hook_timeout,
        protection_idle_s=settings.protection_idle,
    )
    isolated = None
    if settings.handler and isinstance(runner, PythonRunner):
        isolated = IsolatedPythonRunner(
            settings.handler, grace_s=settings.cancel_grace, sandbox=sandbox
        )
    return Pieces(
        runner, isolated, intake, build_metrics(settings.metrics), instance, job_timeouts, sandbox
    )


def build_runner(
    handler: str | None,
    command: str | None,
    isolation: Isolation = "thread",
    grace_s: float = DEFAULT_GRACE_S,
    sandbox: Sandbox | None = None,
) -> Runner:
    """The runner the worker's flags ask for; raises :class:`ValueError` with one line for a
    bad combination, a handler that does not import, or a command whose program is missing.
    ``isolation`` applies to handlers; a command always runs in its own process group. A
    handler cannot change user in the worker's thread: with ``--run-as``, thread isolation
    runs every job in a process of its own (said once at start)."""
    if bool(handler) == bool(command):
        raise ValueError(
            "give exactly one of --handler MODULE:FUNCTION or --command 'CMD' "
            "(or BRIDGE_WORKER_HANDLER / BRIDGE_WORKER_COMMAND)"
        )
    if isolation not in ("thread", "process"):
        raise ValueError(f"--isolation must be 'thread' or 'process', got {isolation!r}")
    if grace_s < 0:
        raise ValueError(f"grace period must not be negative, got {grace_s}")
    if command:
        runner = CommandRunner(command, grace_s=grace_s, sandbox=sandbox)
        runner.check()
        return runner
    assert handler is not None
    if sandbox is not None and sandbox.run_as is not None and isolation == "thread":
        log.warning(
            "--run-as %s: a handler cannot change user in the worker's thread; every job runs "
            "in a process of its own (--isolation process)",
            sandbox.run_as.name,
        )
        isolation = "process"
    if isolation == "process":
        return IsolatedPythonRunner(handler, grace_s=grace_s, sandbox=sandbox)
    return PythonRunner.from_spec(handler, sandbox)


def build_spool(state_dir: str | None, jobs_queue_url: str, results_queue_url: str) -> SpoolPlace:
    """Where this worker's result spool goes: under its state directory (``--state-dir``, else
    systemd's ``$STATE_DIRECTORY``, else ``~/.local/state/callback-bridge``: see
    :func:`consumers.spool.resolve_state_dir`), for these queues. Checked now; the worker
    claims it when it starts, with what an earlier worker left there."""
    place = SpoolPlace(resolve_state_dir(state_dir), scope(jobs_queue_url, results_queue_url))
    try:
        place.check()
    except SpoolError as exc:
        raise ValueError(f"--state-dir: {exc}") from exc
    return place


def build_metrics(where: str) -> WorkerMetrics:
    """EMF metric lines to stdout, to a file, or nowhere (``off``)."""
    if where == "off":
        return WorkerMetrics(enabled=False)
    if where == "stdout":
        return WorkerMetrics(sys.stdout)
    path = Path(where)
    if not path.parent.is_dir():
        raise ValueError(f"--metrics {where!r}: directory {path.parent} does not exist")
    return WorkerMetrics(path)


def queue_attributes(
    sqs: Any,
    queue_url: str,
    what: str = "jobs queue",
    names: tuple[str, ...] = ("VisibilityTimeout", "RedrivePolicy"),
    source: str = "",
) -> dict[str, str]:
    """A queue's settings (the jobs queue's by default); also proves the queue answers before
    anything runs, or raises :class:`ValueError` naming it, what is wrong (does not exist,
    access denied, does not answer) and where the URL came from (``source``)."""
    try:
        attributes: dict[str, str] = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=list(names)
        )["Attributes"]
    except (ClientError, BotoCoreError) as exc:
        where = f" ({source})" if source else ""
        raise ValueError(f"{what} {queue_url} {problem(exc)}{where}") from exc
    return attributes


def check_jobs_dlq(sqs: Any, config: BridgeConfig) -> None:
    """The jobs DLQ, when set, must answer before a job is taken: the worker moves malformed
    jobs there, and a wrong URL found only on the first malformed job leaves that job to the
    queue's redrive policy with no reason attached (IAM: ``sqs:GetQueueAttributes`` on it)."""
    if config.jobs_dlq_url:
        where = origin(config, "jobs_dlq_url")
        queue_attributes(sqs, config.jobs_dlq_url, "jobs DLQ", ("QueueArn",), where)


def check_bucket(s3: Any, config: BridgeConfig) -> None:
    """The claim-check bucket, when set, must exist and be ours to use before a job is taken:
    otherwise the first large output fails its task ``Bridge.ClaimCheckFailed`` after the job
    ran in full. HeadBucket needs ``s3:ListBucket`` on the bucket (the consumers module grants
    it, on that bucket only); it proves the bucket exists and the role reaches it, not that
    ``s3:PutObject`` under ``claim-checks/`` is granted, which only a write would."""
    bucket = config.claim_check_bucket
    if not bucket:
        return
    where = origin(config, "claim_check_bucket")
    try:
        s3.head_bucket(Bucket=bucket)
    except ParamValidationError as exc:
        raise ValueError(f"claim-check bucket {bucket!r} is not a valid name: {exc}") from exc
    except (ClientError, BotoCoreError) as exc:
        raise ValueError(f"claim-check bucket {bucket} {problem(exc)} ({where})") from exc


def origin(config: BridgeConfig, field: str) -> str:
    """Where a setting is changed and where this one came from, for a start check's error:
    ``--jobs-dlq-url / BRIDGE_JOBS_DLQ_URL; configuration from environment``."""
    flag = "--" + field.replace("_", "-")
    return f"{flag} / {ENVIRONMENT.get(field, field.upper())}; configuration from {config.source}"


def warn_unless_answers(sqs: Any, results_queue_url: str) -> None:
    """Say at once, naming the queue, when the results queue cannot be used; but start: a
    worker restarted during a results queue outage must come back to send what its spool holds
    (results are spooled until the queue takes them, and a full set of slots stops receives)."""
    try:
        queue_attributes(sqs, results_queue_url, "results queue", ("MaximumMessageSize",))
    except ValueError as exc:
        log.warning("%s; results will be spooled until it can be", exc)


def build_claim_check(
    settings: ServiceSettings, config: BridgeConfig, clients: Clients
) -> ClaimCheck:
    """Where outputs too large for a result message go (none without a bucket)."""
    kms_key = settings.claim_check_kms_key
    try:
        return ClaimCheck(
            clients.s3,
            config.claim_check_bucket,
            settings.claim_check_threshold,
            max_message_bytes=queue_limit(clients.sqs, config.results_queue_url or ""),
            server_side_encryption="aws:kms" if kms_key else "AES256",
            kms_key_id=kms_key,
        )
    except (ValueError, ClientError, BotoCoreError) as exc:
        raise ValueError(f"claim check: {exc}") from exc


def warn_about(settings: WorkerSettings) -> None:
    """Settings that work but cost something: say so once at start."""
    receives = settings.timing.max_receive_count
    if settings.effective_crash_limit != settings.crash_limit:
        log.warning(
            "--crash-limit %d lowered to %d: it must stay below the jobs queue's "
            "maxReceiveCount (%s), or the queue dead-letters a crashing job first",
            settings.crash_limit,
            settings.effective_crash_limit,
            receives,
        )
    if receives is not None and receives < MIN_SAFE_RECEIVE_COUNT:
        log.warning(
            "the jobs queue's maxReceiveCount is %d: a crash or a drain release each cost one "
            "receive; 3 or more avoids dead-lettering jobs that never failed",
            receives,
        )
    if not settings.jobs_dlq_url:
        log.warning(
            "no jobs DLQ URL: malformed jobs reach the DLQ only through the queue's redrive policy"
        )
