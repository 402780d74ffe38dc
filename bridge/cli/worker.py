"""``callback-bridge worker``: run a consumer against the embedded stack or real AWS.

Every flag has an environment variable (the systemd unit's ``worker.env`` sets them); the
README's configuration table is checked against this list by ``tests/unit/test_worker_cli.py``.
Settings are validated before anything is received: a bad one is refused in one line naming it,
with exit code 2.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError

from bridge.aws import build_clients
from bridge.claim_check import ClaimCheck, queue_limit
from bridge.cli.options import EndpointUrl, Region, StateFile, fail, resolve_config
from bridge.logs import configure_logging
from bridge.timing import (
    DEFAULT_CANCEL_GRACE_S,
    DEFAULT_DRAIN_TIMEOUT_S,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_JOB_TIMEOUT_S,
    DEFAULT_LIFECYCLE_HOOK_TIMEOUT_S,
    DEFAULT_STALE_CHECK_AGE_S,
    SQS_VISIBILITY_CAP_S,
    TimingError,
    TimingModel,
)
from consumers.ec2 import InstanceHandling, InstanceSettings
from consumers.intake import Intake
from consumers.metrics import WorkerMetrics
from consumers.runner import build_runner
from consumers.service import Service
from consumers.worker import Worker, WorkerSettings

#: Timing model field -> the flag a user sets, for error messages.
FLAG_OF = {
    "visibility_timeout_s": "--visibility-timeout (the jobs queue's VisibilityTimeout)",
    "heartbeat_interval_s": "--heartbeat-interval",
    "task_heartbeat_s": "--task-heartbeat-seconds",
    "max_queue_wait_s": "--max-queue-wait",
    "job_timeout_s": "--job-timeout",
    "cancel_grace_s": "--cancel-grace",
    "drain_timeout_s": "--drain-timeout",
    "lifecycle_hook_timeout_s": "--lifecycle-hook-timeout",
    "stale_check_age_s": "--stale-check-age",
    "max_receive_count": "the jobs queue's maxReceiveCount",
}


def _opt(envvar: str, help: str, **kwargs: Any) -> Any:
    return typer.Option(envvar=envvar, help=help, **kwargs)


def parse_job_timeouts(text: str | None) -> dict[str, int]:
    """``render=7200,thumb=60`` -> {"render": 7200, "thumb": 60}."""
    overrides: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        job_type, sep, seconds = item.partition("=")
        if not sep or not job_type.strip() or not seconds.strip().isdigit():
            raise ValueError(f"--job-timeouts entry {item!r} must look like TYPE=SECONDS")
        overrides[job_type.strip()] = int(seconds)
    return overrides


def queue_attributes(sqs: Any, queue_url: str) -> dict[str, str]:
    """The jobs queue's settings; also proves the queue answers before anything runs."""
    try:
        attributes: dict[str, str] = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
        )["Attributes"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        fail(f"jobs queue {queue_url} cannot be used: {error.get('Code')}: {error.get('Message')}")
    except BotoCoreError as exc:
        fail(f"jobs queue {queue_url} does not answer: {exc}")
    return attributes


def timing_model(values: dict[str, Any], attributes: dict[str, str]) -> TimingModel:
    import json

    redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
    model = TimingModel(
        visibility_timeout_s=values.pop("visibility_timeout_s")
        or int(attributes.get("VisibilityTimeout", 300)),
        max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
        task_timeout_s=None,
        **values,
    )
    problems = model.violations()
    if problems:
        problem = problems[0]
        fail(f"{FLAG_OF.get(problem.setting, problem.setting)}: {problem.message}")
    if model.max_receive_count is not None and model.max_receive_count < 3:
        logging.warning(
            "the jobs queue's maxReceiveCount is %d: a crash or a drain release each cost one "
            "receive; 3 or more avoids dead-lettering jobs that never failed",
            model.max_receive_count,
        )
    return model


def worker(
    handler: Annotated[
        str | None,
        _opt("BRIDGE_WORKER_HANDLER", "Python handler 'module:function(input, job[, context])'."),
    ] = None,
    command: Annotated[
        str | None,
        _opt(
            "BRIDGE_WORKER_COMMAND",
            "Shell command: input on stdin and $BRIDGE_JOB_INPUT; JSON stdout is the output.",
        ),
    ] = None,
    isolation: Annotated[
        str,
        _opt(
            "BRIDGE_WORKER_ISOLATION",
            "Run --handler in a 'thread' or in its own 'process' (killable on timeout).",
        ),
    ] = "thread",
    concurrency: Annotated[int, _opt("BRIDGE_WORKER_CONCURRENCY", "Jobs run at once.")] = 4,
    wait_seconds: Annotated[
        int,
        _opt(
            "BRIDGE_WAIT_SECONDS",
            "Long-poll wait of each receive (0-20). A receive that returns fewer jobs than it "
            "asked for is followed by a 0.25 s pause, so jobs arriving one by one share receives.",
        ),
    ] = 20,
    visibility_timeout: Annotated[
        int | None,
        _opt(
            "BRIDGE_VISIBILITY_TIMEOUT",
            "Seconds each visibility extension buys (default: the queue's).",
        ),
    ] = None,
    heartbeat_interval: Annotated[
        float,
        _opt(
            "BRIDGE_HEARTBEAT_INTERVAL",
            "Seconds between SendTaskHeartbeat calls per job (how soon a stop cancels it).",
        ),
    ] = DEFAULT_HEARTBEAT_INTERVAL_S,
    job_timeout: Annotated[
        int,
        _opt(
            "BRIDGE_JOB_TIMEOUT",
            "Longest a job may run; then it is killed and fails Bridge.JobTimeout.",
        ),
    ] = DEFAULT_JOB_TIMEOUT_S,
    job_timeouts: Annotated[
        str | None,
        _opt("BRIDGE_JOB_TIMEOUTS", "Per job type overrides: 'render=7200,thumb=60'."),
    ] = None,
    cancel_grace: Annotated[
        float,
        _opt("BRIDGE_CANCEL_GRACE", "Seconds between SIGTERM and SIGKILL of a cancelled job."),
    ] = DEFAULT_CANCEL_GRACE_S,
    drain_timeout: Annotated[
        int,
        _opt(
            "BRIDGE_DRAIN_TIMEOUT",
            "On stop, seconds running jobs get to finish before they are released to the queue.",
        ),
    ] = DEFAULT_DRAIN_TIMEOUT_S,
    stale_check_age: Annotated[
        float,
        _opt(
            "BRIDGE_STALE_CHECK_AGE",
            "Heartbeat messages older than this (or redelivered) first: skip stale jobs.",
        ),
    ] = DEFAULT_STALE_CHECK_AGE_S,
    max_queue_wait: Annotated[
        int | None,
        _opt(
            "BRIDGE_MAX_QUEUE_WAIT",
            "Longest queue wait the scaling target allows (validates --task-heartbeat-seconds).",
        ),
    ] = None,
    task_heartbeat_seconds: Annotated[
        int | None,
        _opt(
            "BRIDGE_TASK_HEARTBEAT_SECONDS",
            "The state machine's HeartbeatSeconds, if set (validated against the timing model).",
        ),
    ] = None,
    visibility_cap: Annotated[
        int,
        _opt(
            "BRIDGE_SQS_VISIBILITY_CAP",
            "SQS's 12-hour visibility cap (a setting only so tests can shrink it).",
            hidden=True,
        ),
    ] = SQS_VISIBILITY_CAP_S,
    token_path: Annotated[
        str | None,
        _opt(
            "BRIDGE_TOKEN_PATH",
            "Serve messages of another shape: where the task token is, e.g. '$.TaskToken'.",
        ),
    ] = None,
    input_path: Annotated[
        str, _opt("BRIDGE_INPUT_PATH", "With --token-path: where the job input is.")
    ] = "$",
    default_job_type: Annotated[
        str, _opt("BRIDGE_DEFAULT_JOB_TYPE", "With --token-path: the type given to jobs.")
    ] = "default",
    jobs_queue_url: Annotated[str | None, _opt("BRIDGE_JOBS_QUEUE_URL", "Jobs queue URL.")] = None,
    results_queue_url: Annotated[
        str | None, _opt("BRIDGE_RESULTS_QUEUE_URL", "Results queue URL.")
    ] = None,
    jobs_dlq_url: Annotated[
        str | None,
        _opt(
            "BRIDGE_JOBS_DLQ_URL", "Jobs DLQ URL: malformed jobs are moved there with the reason."
        ),
    ] = None,
    claim_check_bucket: Annotated[
        str | None,
        _opt("BRIDGE_CLAIM_CHECK_BUCKET", "S3 bucket for outputs too large for a result message."),
    ] = None,
    claim_check_threshold: Annotated[
        int | None,
        _opt("BRIDGE_CLAIM_CHECK_THRESHOLD", "Outputs over this many bytes always go to S3."),
    ] = None,
    claim_check_kms_key: Annotated[
        str | None,
        _opt("BRIDGE_CLAIM_CHECK_KMS_KEY", "KMS key for claim-checked outputs (default: SSE-S3)."),
    ] = None,
    health_port: Annotated[
        int | None,
        _opt(
            "BRIDGE_HEALTH_PORT", "Serve GET /health on 127.0.0.1:PORT (ready 200 / draining 503)."
        ),
    ] = None,
    metrics: Annotated[
        str,
        _opt("BRIDGE_METRICS", "Where EMF metric lines go: 'stdout', 'off', or a file path."),
    ] = "off",
    log_level: Annotated[str, _opt("BRIDGE_LOG_LEVEL", "DEBUG, INFO, WARNING, ERROR.")] = "INFO",
    log_format: Annotated[str, _opt("BRIDGE_LOG_FORMAT", "'json' or 'text'.")] = "json",
    instance_handling: Annotated[
        str,
        _opt(
            "BRIDGE_INSTANCE_HANDLING",
            "EC2 termination and spot handling: on, off, or auto (on EC2 or with a metadata "
            "endpoint).",
        ),
    ] = "auto",
    scale_in_protection: Annotated[
        bool,
        _opt("BRIDGE_SCALE_IN_PROTECTION", "Protect the instance from scale-in while busy."),
    ] = False,
    protection_idle: Annotated[
        float,
        _opt("BRIDGE_PROTECTION_IDLE", "Seconds idle before scale-in protection is released."),
    ] = 30.0,
    asg_name: Annotated[
        str | None,
        _opt("BRIDGE_ASG_NAME", "The instance's Auto Scaling group (default: looked up)."),
    ] = None,
    lifecycle_hook_name: Annotated[
        str | None,
        _opt("BRIDGE_LIFECYCLE_HOOK_NAME", "Termination lifecycle hook to heartbeat and complete."),
    ] = None,
    lifecycle_hook_timeout: Annotated[
        int,
        _opt(
            "BRIDGE_LIFECYCLE_HOOK_TIMEOUT",
            "The hook's heartbeat timeout (heartbeats every third).",
        ),
    ] = DEFAULT_LIFECYCLE_HOOK_TIMEOUT_S,
    instance_id: Annotated[
        str | None,
        _opt("BRIDGE_INSTANCE_ID", "This instance's id (default: from instance metadata)."),
    ] = None,
    state_file: StateFile = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Long-poll the jobs queue, run each job, post its result. SIGTERM or Ctrl-C drains; a
    second one hands running jobs back to the queue and exits within seconds."""
    try:
        configure_logging(log_level, log_format, service="callback-bridge-worker")
        if logging.getLogger().level > logging.DEBUG:  # "Found credentials in ..." is noise
            logging.getLogger("botocore.credentials").setLevel(logging.WARNING)
        if concurrency < 1 or concurrency > 1000:
            raise ValueError(f"--concurrency must be 1..1000, got {concurrency}")
        if not 0 <= wait_seconds <= 20:
            raise ValueError(f"--wait-seconds must be 0..20 (SQS long poll), got {wait_seconds}")
        overrides = parse_job_timeouts(job_timeouts)
        intake = Intake(token_path, input_path, default_job_type)
        runner = build_runner(handler, command, isolation, cancel_grace)  # type: ignore[arg-type]
        recorder = build_metrics(metrics)
        instance = InstanceSettings(
            instance_handling,
            scale_in_protection,
            hook_timeout_s=lifecycle_hook_timeout,
            protection_idle_s=protection_idle,
        )
    except ValueError as exc:
        fail(str(exc))
    config = resolve_config(
        state_file,
        "jobs_queue_url",
        "results_queue_url",
        jobs_queue_url=jobs_queue_url,
        results_queue_url=results_queue_url,
        jobs_dlq_url=jobs_dlq_url,
        region=region,
        endpoint_url=endpoint_url,
        asg_name=asg_name,
        lifecycle_hook_name=lifecycle_hook_name,
        instance_id=instance_id,
        claim_check_bucket=claim_check_bucket,
    )
    instance.metadata_endpoint = config.metadata_endpoint
    instance.instance_id, instance.group_name = config.instance_id, config.asg_name
    instance.hook_name = config.lifecycle_hook_name
    clients = build_clients(config, pool_size=concurrency + 12, s3=bool(config.claim_check_bucket))
    attributes = queue_attributes(clients.sqs, config.jobs_queue_url or "")
    try:
        claim_check = ClaimCheck(
            clients.s3,
            config.claim_check_bucket,
            claim_check_threshold,
            max_message_bytes=queue_limit(clients.sqs, config.results_queue_url or ""),
            server_side_encryption="aws:kms" if claim_check_kms_key else "AES256",
            kms_key_id=claim_check_kms_key,
        )
    except (ValueError, ClientError, BotoCoreError) as exc:
        fail(f"claim check: {exc}")
    timing = timing_model(
        {
            "visibility_timeout_s": visibility_timeout,
            "heartbeat_interval_s": heartbeat_interval,
            "task_heartbeat_s": task_heartbeat_seconds,
            "max_queue_wait_s": max_queue_wait,
            "job_timeout_s": max([job_timeout, *overrides.values()]),
            "cancel_grace_s": cancel_grace,
            "drain_timeout_s": drain_timeout,
            "stale_check_age_s": stale_check_age,
            "lifecycle_hook_timeout_s": lifecycle_hook_timeout if instance.enabled else None,
            "visibility_cap_s": visibility_cap,
        },
        attributes,
    ).with_values(job_timeout_s=job_timeout)
    try:
        settings = WorkerSettings(
            jobs_queue_url=config.jobs_queue_url or "",
            results_queue_url=config.results_queue_url or "",
            jobs_dlq_url=config.jobs_dlq_url,
            concurrency=concurrency,
            wait_seconds=wait_seconds,
            timing=timing,
            job_timeouts=overrides,
            intake=intake,
            instance_id=config.instance_id,
        )
    except (ValueError, TimingError) as exc:
        fail(str(exc))
    if not settings.jobs_dlq_url:
        logging.warning(
            "no jobs DLQ URL: malformed jobs reach the DLQ only through the queue's redrive policy"
        )
    service = Service(
        Worker(clients.sqs, clients.sfn, settings, runner, claim_check=claim_check),
        recorder,
        health_port=health_port,
    )
    if instance.enabled:
        handling = InstanceHandling(service.worker, clients.autoscaling, instance)
        try:
            handling.start()
        except (RuntimeError, ClientError, BotoCoreError) as exc:
            fail(f"--instance-handling: {exc}")
        service.on_stopped.insert(0, handling.stop)
    service.install_signal_handlers()
    logging.info(
        "worker %s polling %s with %d slots",
        settings.worker_id,
        settings.jobs_queue_url,
        concurrency,
    )
    code = service.run()
    logging.shutdown()
    sys.stdout.flush()
    # Job threads of a Python handler that ignored its cancellation cannot be joined; their
    # messages are already settled, so leave without waiting for them.
    os._exit(code)


def build_metrics(where: str) -> WorkerMetrics:
    if where == "off":
        return WorkerMetrics(enabled=False)
    if where == "stdout":
        return WorkerMetrics(sys.stdout)
    path = Path(where)
    if not path.parent.is_dir():
        raise ValueError(f"--metrics {where!r}: directory {path.parent} does not exist")
    return WorkerMetrics(path)
