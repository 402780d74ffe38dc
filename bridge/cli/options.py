"""Options shared by several commands, and the one way they become a configuration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from bridge.config import ENVIRONMENT, BridgeConfig, ConfigError, load_config
from bridge.errors import ACCESS_DENIED_ERRORS, NOT_FOUND_ERRORS, error_code, target
from bridge.ops.inspect.queues import InspectError

StateFile = Annotated[
    Path | None,
    typer.Option(
        "--state-file",
        envvar="BRIDGE_STATE_FILE",
        help="The embedded stack's state file [default: .callback-bridge/local.json].",
    ),
]
Region = Annotated[str | None, typer.Option("--region", help="AWS region (else AWS_REGION).")]
EndpointUrl = Annotated[
    str | None,
    typer.Option("--endpoint-url", help="AWS endpoint (else AWS_ENDPOINT_URL or the state file)."),
]


TfOutputs = Annotated[
    Path | None,
    typer.Option(
        "--tf-outputs",
        envvar="BRIDGE_TF_OUTPUTS",
        help="File holding 'terraform output -json' of infra/examples/complete (real AWS).",
    ),
]


def resolve_config(
    state_file: Path | None,
    *required: str,
    tf_outputs: Path | None = None,
    **overrides: str | None,
) -> BridgeConfig:
    """Configuration from Terraform outputs / the environment / state file, flags applied,
    required fields checked. Exits with a one-line error naming what is missing."""
    if state_file is not None and not state_file.exists():
        fail(f"state file {state_file} does not exist; is 'callback-bridge local up' running?")
    try:
        loaded = load_config(state_file=state_file, tf_outputs=tf_outputs)
        config = loaded.with_overrides(**overrides).require(*required)
    except ConfigError as exc:
        fail(str(exc))
    _resolved.set(config)
    return config


def fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


#: AWS error codes that mean "these credentials do not reach this account".
_REJECTED = {
    "AccessDenied",
    "AccessDeniedException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
}
#: What each request parameter names (bridge.errors.TARGET_PARAMS), for error messages.
_NOUN = {
    "QueueUrl": "queue",
    "Bucket": "bucket",
    "executionArn": "execution",
    "mapRunArn": "map run",
    "stateMachineArn": "state machine",
    "SourceArn": "queue",
}
#: The configuration this command resolved (resolve_config), to say where a value came from.
_resolved: ContextVar[BridgeConfig | None] = ContextVar("resolved_config", default=None)


def origin(value: str) -> str:
    """Which setting of the resolved configuration holds ``value`` and where it came from
    (``jobs_queue_url (env BRIDGE_JOBS_QUEUE_URL), configuration from environment``), or
    ``""`` when none does: a mistyped URL is then fixed where it was typed, not hunted for."""
    config = _resolved.get()
    if config is None:
        return ""
    for name in BridgeConfig.model_fields:
        if name != "source" and getattr(config, name) == value:
            variable = ENVIRONMENT.get(name, name.upper())
            return f"{name} (env {variable}), configuration from {config.source}"
    return ""


def client_error_line(exc: ClientError) -> str:
    """One line for an AWS error, naming the queue, bucket or ARN the failed request was about
    (:func:`bridge.errors.target`), what is wrong with it, and where its value came from."""
    code, message = error_code(exc, "error"), exc.response.get("Error", {}).get("Message", "")
    operation = getattr(exc, "operation_name", "call")
    named = target(exc)
    if named is not None:
        param, value = named
        where = origin(value)
        context = f"{operation}; {where}" if where else operation
        if code in NOT_FOUND_ERRORS:
            return f"{_NOUN.get(param, param)} {value} does not exist ({context})"
        if code in _REJECTED or code in ACCESS_DENIED_ERRORS:
            return f"AWS refused {operation} on {value} ({code}): {message}"
        return f"{operation} on {value} failed: {code}: {message}"
    if code in _REJECTED:
        return f"AWS refused {operation} ({code}): {message}"
    if code in NOT_FOUND_ERRORS:
        return f"does not exist ({operation}: {code}): {message}"
    return f"{operation} failed: {code}: {message}"


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn AWS trouble (no credentials, no region, unreachable endpoint, access denied, a
    queue or bucket that does not exist) and bad operator input the library reports
    (InspectError, ConfigError) into one ``error:`` line and exit code 2, never a traceback."""
    try:
        yield
    except NoCredentialsError:
        fail("no AWS credentials found (AWS_PROFILE, AWS_ACCESS_KEY_ID, instance role...)")
    except NoRegionError:
        fail("no AWS region: pass --region or set AWS_REGION")
    except ClientError as exc:
        fail(client_error_line(exc))
    except BotoCoreError as exc:  # endpoint unreachable, connection closed, timeouts
        fail(f"cannot reach AWS: {exc}")
    except (ConfigError, InspectError) as exc:  # bad operator input, named in the message
        fail(str(exc))
