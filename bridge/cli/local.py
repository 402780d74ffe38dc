"""``callback-bridge local``: the embedded local AWS."""

from __future__ import annotations

import shlex
import signal
import socket
import sys
import threading
import time
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated
from urllib.parse import urlparse

import typer

from bridge.cli.options import StateFile, fail
from bridge.config import DEFAULT_STATE_FILE, ENVIRONMENT, ConfigError, load_state_file

app = typer.Typer(help="The embedded local AWS (moto on 127.0.0.1).", no_args_is_help=True)

MapMode = Annotated[
    str,
    typer.Option(
        help="Map mode: INLINE (≤40 concurrent on AWS) or DISTRIBUTED (child executions)."
    ),
]


def server_alive(endpoint_url: str) -> bool:
    parts = urlparse(endpoint_url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), 0.5):
            return True
    except OSError:
        return False


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 0,
    map_mode: MapMode = "INLINE",
    heartbeat_seconds: Annotated[
        int | None,
        typer.Option(help="The job task's HeartbeatSeconds (default: off; see docs/timing.md)."),
    ] = None,
    timeout_seconds: Annotated[int, typer.Option(help="The job task's TimeoutSeconds.")] = 3600,
    max_queue_wait: Annotated[
        int, typer.Option(help="Longest a job may wait in the queue (validates the timeouts).")
    ] = 600,
    job_timeout: Annotated[
        int, typer.Option(help="Longest a job may run on a worker (validates the timeouts).")
    ] = 1800,
    state_file: StateFile = None,
    dead_letter_handling: Annotated[
        bool,
        typer.Option(
            help="Tell executions about dead letters and archive them (off: the DLQs keep them "
            "for an operator to redrive)."
        ),
    ] = True,
    failure_policy: Annotated[
        str,
        typer.Option(
            help="report: failed jobs are entries of the output, the execution succeeds. "
            "fail: the execution fails with Bridge.JobsFailed when more jobs failed than "
            "tolerated (any, by default)."
        ),
    ] = "report",
    tolerated_failure_count: Annotated[
        int | None,
        typer.Option(help="With --failure-policy fail: failed jobs tolerated (default 0)."),
    ] = None,
    tolerated_failure_percentage: Annotated[
        int | None,
        typer.Option(
            help="With --failure-policy fail: percentage (0-100) of failed jobs tolerated."
        ),
    ] = None,
) -> None:
    """Start the stack in the foreground; workers and the AWS CLI join it (see 'local env')."""
    from bridge.local_stack import LocalStack, StackSettings
    from bridge.local_stack.compat import CompatError
    from bridge.local_stack.compat import applied as compat_applied
    from bridge.local_stack.stack import quiet_moto_logs

    path = state_file or DEFAULT_STATE_FILE
    if path.exists():
        try:
            previous = load_state_file(path)
        except ConfigError:
            previous = None
        if previous and previous.endpoint_url and server_alive(previous.endpoint_url):
            fail(f"a stack is already running at {previous.endpoint_url} ({path})")
    try:
        settings = StackSettings(
            map_mode=map_mode.upper(),
            heartbeat_seconds=heartbeat_seconds,
            timeout_seconds=timeout_seconds,
            max_queue_wait_s=max_queue_wait,
            job_timeout_s=job_timeout,
            dead_letter_handling=dead_letter_handling,
            failure_policy=failure_policy.lower(),
            tolerated_failure_count=tolerated_failure_count,
            tolerated_failure_percentage=tolerated_failure_percentage,
        )
        settings.state_machine_params("placeholder")  # validates before anything starts
    except ValueError as exc:
        fail(str(exc))
    quiet_moto_logs()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stack = LocalStack(settings, state_file=path, port=port)
    try:
        stack.start()
    except CompatError as exc:
        fail(str(exc))
    try:
        assert stack.config is not None
        typer.echo(f"embedded AWS on {stack.config.endpoint_url} (region {stack.config.region})")
        for name, value in stack.config.model_dump(exclude={"source"}).items():
            if name.endswith(("_url", "_arn", "_bucket")) and name != "endpoint_url" and value:
                typer.echo(f"  {name:<19} {value}")
        if stack.config.instance_id:
            typer.echo(
                f"  EC2 instance        {stack.config.instance_id} in {stack.config.asg_name}, "
                f"metadata at {stack.config.metadata_endpoint} "
                "(callback-bridge local announce terminate|spot)"
            )
        typer.echo(
            f"state written to {path}; in another terminal: "
            f'eval "$(callback-bridge local env)"; Ctrl-C stops'
        )
        typer.echo(f"compatibility patches: {', '.join(compat_applied()) or 'none'}")
        sys.stdout.flush()
        stop.wait()
    finally:
        stack.stop()
    typer.echo("stopped")


@app.command()
def env(state_file: StateFile = None) -> None:
    """Print shell exports so the AWS CLI and boto3 scripts use the running stack."""
    path = state_file or DEFAULT_STATE_FILE
    if not path.exists():
        fail(f"no embedded stack state at {path}; start one with 'callback-bridge local up'")
    try:
        config = load_state_file(path)
    except ConfigError as exc:
        fail(str(exc))
    if config.endpoint_url and not server_alive(config.endpoint_url):
        typer.secho(
            f"warning: nothing answers at {config.endpoint_url}; the state file may be stale",
            err=True,
            fg=typer.colors.YELLOW,
        )
    exports = {
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,  # boto3 reads this one, the CLI either
        "AWS_ACCESS_KEY_ID": config.access_key_id,
        "AWS_SECRET_ACCESS_KEY": config.secret_access_key,
        # Every configuration field under the variable config.py reads it from (one list).
        **{name: getattr(config, field) for field, name in ENVIRONMENT.items()},
    }
    for name, value in exports.items():
        if value:
            typer.echo(f"export {name}={shlex.quote(value)}")


class Announcement(StrEnum):
    terminate = "terminate"
    spot = "spot"


@app.command()
def announce(
    event: Annotated[
        Announcement,
        typer.Argument(
            help="terminate: the group starts terminating the instance (target lifecycle state "
            "Terminated, held by the drain hook); spot: a spot interruption notice."
        ),
    ],
    seconds: Annotated[
        float, typer.Option(min=0, max=3600, help="spot: seconds until the interruption.")
    ] = 120,
    state_file: StateFile = None,
) -> None:
    """Make the running stack's EC2 instance metadata announce a termination or a spot
    interruption, as EC2 would; workers polling it react as they would on EC2."""
    from bridge.local_stack.imds import AnnounceError
    from bridge.local_stack.imds import announce as send

    path = state_file or DEFAULT_STATE_FILE
    try:
        config = load_state_file(path) if path.exists() else None
    except ConfigError as exc:
        fail(str(exc))
    if config is None or not config.endpoint_url or not server_alive(config.endpoint_url):
        fail(f"no embedded stack is running ({path}); start one with 'callback-bridge local up'")
    if not config.metadata_endpoint:
        fail(f"the stack at {config.endpoint_url} serves no instance metadata (no instance group)")
    try:
        answer = send(config.metadata_endpoint, event.value, seconds)
    except AnnounceError as exc:
        fail(str(exc))
    if event is Announcement.spot:
        typer.echo(f"spot interruption announced for {config.instance_id}: {answer['time']}")
    else:
        typer.echo(
            f"termination announced for {answer['instance_id']}: target lifecycle state "
            f"{answer['target_lifecycle_state']}"
        )


@app.command()
def deploy(
    workdir: Annotated[
        Path,
        typer.Option(
            help="Terraform working directory (the example's files, the provider override, "
            "the variables, the state); plain 'terraform plan' / 'destroy' work there."
        ),
    ] = Path(".callback-bridge/deploy"),
    name: Annotated[
        str, typer.Option(help="The example's 'name' variable: every resource's prefix.")
    ] = "callback-bridge-tf",
    state_file: StateFile = None,
) -> None:
    """terraform apply of infra/examples/complete onto the running stack ('local up'), then
    print its outputs: a rehearsal of a deployment (infra/README.md)."""
    from bridge.aws import build_clients
    from bridge.local_stack import deploy as rehearsal

    path = state_file or DEFAULT_STATE_FILE
    try:
        config = load_state_file(path) if path.exists() else None
    except ConfigError as exc:
        fail(str(exc))
    if config is None or not config.endpoint_url or not server_alive(config.endpoint_url):
        fail(f"no embedded stack is running ({path}); start one with 'callback-bridge local up'")
    try:
        run = rehearsal.Rehearsal(config, workdir=workdir, name=name)
        rehearsal.build_lambda_zip(run.package, run.say)
        ec2 = build_clients(config, autoscaling=False, ec2=True).ec2
        vpc_id, subnet_ids = rehearsal.default_network(ec2)
        run.forget_stale_state()
        run.write_files(subnet_ids, vpc_id)
        run.say(
            f"terraform init in {run.workdir}"
            + (f" (provider mirror {run.mirror})" if run.mirror else "")
        )
        run.init()
        started = time.monotonic()
        outputs = run.apply()
    except rehearsal.DeployError as exc:
        fail(str(exc))
    typer.echo(f"applied in {time.monotonic() - started:.0f} s; outputs:")
    for line in rehearsal.summary(outputs):
        typer.echo(line)
    typer.echo(
        f"working directory: {run.workdir} (terraform plan / destroy run there as is; "
        f"outputs in {run.workdir / rehearsal.OUTPUTS})"
    )
