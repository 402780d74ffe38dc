"""Options shared by several commands, and the one way they become a configuration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from bridge.config import BridgeConfig, ConfigError, load_config
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
        return loaded.with_overrides(**overrides).require(*required)
    except ConfigError as exc:
        fail(str(exc))


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
_NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn AWS trouble (no credentials, no region, unreachable endpoint, access denied, a
    queue that does not exist) and bad operator input the library reports (InspectError,
    ConfigError) into one ``error:`` line and exit code 2, never a traceback."""
    try:
        yield
    except NoCredentialsError:
        fail("no AWS credentials found (AWS_PROFILE, AWS_ACCESS_KEY_ID, instance role...)")
    except NoRegionError:
        fail("no AWS region: pass --region or set AWS_REGION")
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "error"), error.get("Message", "")
        operation = getattr(exc, "operation_name", "call")
        if code in _REJECTED:
            fail(f"AWS refused {operation} ({code}): {message}")
        if code in _NO_QUEUE:
            fail(f"queue does not exist ({operation}): {message}")
        fail(f"{operation} failed: {code}: {message}")
    except BotoCoreError as exc:  # endpoint unreachable, connection closed, timeouts
        fail(f"cannot reach AWS: {exc}")
    except (ConfigError, InspectError) as exc:  # bad operator input, named in the message
        fail(str(exc))
