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
from typing import Annotated, Any

import typer

from bridge.aws import Clients, build_clients
from bridge.cli.options import EndpointUrl, Region, StateFile, TfOutputs, fail, resolve_config
from bridge.config import BridgeConfig
from bridge.logs import configure_logging
from bridge.timing import (
    DEFAULT_CANCEL_GRACE_S,
    DEFAULT_DRAIN_TIMEOUT_S,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_JOB_TIMEOUT_S,
    DEFAULT_LIFECYCLE_HOOK_TIMEOUT_S,
    DEFAULT_STALE_CHECK_AGE_S,
    SQS_VISIBILITY_CAP_S,
)
from consumers.compose import build_service
from consumers.deletes import DELETE_WINDOW_S
from consumers.settings import DEFAULT_CONCURRENCY, DEFAULT_CRASH_LIMIT, ServiceSettings

#: The worker's parameters that say where the queues are (resolved with the state file and the
#: environment into a BridgeConfig), as opposed to the ServiceSettings of the worker itself.
WHERE = (
    "jobs_queue_url",
    "results_queue_url",
    "jobs_dlq_url",
    "claim_check_bucket",
    "asg_name",
    "lifecycle_hook_name",
    "instance_id",
    "state_file",
    "tf_outputs",
    "region",
    "endpoint_url",
)


def _opt(envvar: str, help: str, **kwargs: Any) -> Any:
    return typer.Option(envvar=envvar, help=help, **kwargs)


def worker(
    ctx: typer.Context,
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
    concurrency: Annotated[
        int, _opt("BRIDGE_WORKER_CONCURRENCY", "Jobs run at once.")
    ] = DEFAULT_CONCURRENCY,
    wait_seconds: Annotated[
        int,
        _opt(
            "BRIDGE_WAIT_SECONDS",
            "Long-poll wait of each receive (0-20). A receive that returns fewer jobs than it "
            "asked for is followed by a 0.25 s pause, so jobs arriving one by one share receives.",
        ),
    ] = 20,
    delete_window: Annotated[
        float,
        _opt(
            "BRIDGE_DELETE_WINDOW",
            "Seconds a finished job's message may wait, hidden, to share a DeleteMessageBatch "
            "with others (0-60; 0: deleted with its result's batch). Its slot is free meanwhile; "
            "a worker killed meanwhile leaves answered jobs to the stale check.",
        ),
    ] = DELETE_WINDOW_S,
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
            "Seconds between SendTaskHeartbeat calls per execution (per task with "
            "--task-heartbeat-seconds). A stopped execution's jobs are cancelled within "
            "1.1 x this + --cancel-grace; halving it doubles the heartbeats (docs/timing.md).",
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
    task_timeout_seconds: Annotated[
        int | None,
        _opt(
            "BRIDGE_TASK_TIMEOUT_SECONDS",
            "The state machine's TimeoutSeconds: a job whose task passed it is checked at once "
            "instead of at its execution's next heartbeat (default: unknown).",
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
    state_dir: Annotated[
        str | None,
        _opt(
            "BRIDGE_STATE_DIR",
            "Directory for what must survive a restart (results not yet sent). Default: "
            "$STATE_DIRECTORY (systemd), else ~/.local/state/callback-bridge.",
        ),
    ] = None,
    crash_limit: Annotated[
        int,
        _opt(
            "BRIDGE_CRASH_LIMIT",
            "Deliveries of one job that may crash its process before its task fails "
            "Bridge.HandlerCrashed (kept below the jobs queue's maxReceiveCount).",
        ),
    ] = DEFAULT_CRASH_LIMIT,
    run_as: Annotated[
        str | None,
        _opt(
            "BRIDGE_RUN_AS",
            "Run job processes as this unprivileged user (the worker needs root, or "
            "CAP_SETUID, CAP_SETGID and CAP_KILL); a --handler then runs isolated.",
        ),
    ] = None,
    pass_env: Annotated[
        str | None,
        _opt(
            "BRIDGE_PASS_ENV",
            "Comma-separated worker environment variables jobs also get, beyond PATH, HOME, "
            "LANG, LC_*, TZ, PYTHONPATH and their BRIDGE_JOB_* (AWS_* but the region, and "
            "BRIDGE_*, refused).",
        ),
    ] = None,
    expose_token: Annotated[
        bool,
        _opt(
            "BRIDGE_EXPOSE_TOKEN",
            "Give handlers the task token (job.token); off: they see 'withheld:<mask>'.",
        ),
    ] = False,
    state_file: StateFile = None,
    tf_outputs: TfOutputs = None,
    region: Region = None,
    endpoint_url: EndpointUrl = None,
) -> None:
    """Long-poll the jobs queue, run each job, post its result. SIGTERM or Ctrl-C drains; a
    second one hands running jobs back to the queue and exits within seconds."""
    values = {k: v for k, v in locals().items() if k != "ctx"}
    values = without_environment_under_tf_outputs(values, ctx)
    try:
        configure_logging(log_level, log_format, service="callback-bridge-worker")
        if logging.getLogger().level > logging.DEBUG:  # "Found credentials in ..." is noise
            logging.getLogger("botocore.credentials").setLevel(logging.WARNING)
        settings = ServiceSettings(
            **{k: v for k, v in values.items() if k not in (*WHERE, "log_level", "log_format")}
        )
        service = build_service(settings, lambda: connect(settings, values))
    except ValueError as exc:
        fail(str(exc))
    service.install_signal_handlers()
    logging.info(
        "worker %s polling %s with %d slots",
        service.worker.identity.id,
        service.worker.settings.jobs_queue_url,
        settings.concurrency,
    )
    code = service.run()
    logging.shutdown()
    sys.stdout.flush()
    # Job threads of a Python handler that ignored its cancellation cannot be joined (Python
    # cannot kill a thread) and would keep a normal exit waiting; their messages are already
    # settled (released or answered), so leave without waiting for them.
    os._exit(code)


def without_environment_under_tf_outputs(
    values: dict[str, Any], ctx: typer.Context
) -> dict[str, Any]:
    """With ``--tf-outputs``, where the queues are comes from that file and the flags typed on
    the command line: a ``BRIDGE_*_URL`` left in the environment (``local env`` exports the
    stack's own queues) must not quietly point the worker elsewhere."""
    if values.get("tf_outputs") is None:
        return values
    kept = dict(values)
    for name in WHERE:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name == "ENVIRONMENT":
            kept[name] = None
    return kept


def connect(settings: ServiceSettings, where: dict[str, Any]) -> tuple[BridgeConfig, Clients]:
    """Where the queues are (flags > Terraform outputs, else environment > state file) and the
    clients to reach them."""
    config = resolve_config(
        where["state_file"],
        "jobs_queue_url",
        "results_queue_url",
        tf_outputs=where["tf_outputs"],
        **{k: where[k] for k in WHERE if k not in ("state_file", "tf_outputs")},
    )
    clients = build_clients(
        config, pool_size=settings.concurrency + 12, s3=bool(config.claim_check_bucket)
    )
    return config, clients
