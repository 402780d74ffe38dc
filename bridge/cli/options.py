"""Options shared by several commands, and the one way they become a configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

from bridge.config import BridgeConfig, ConfigError, load_config

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


def resolve_config(
    state_file: Path | None, *required: str, **overrides: str | None
) -> BridgeConfig:
    """Configuration from the environment / state file, flags applied, required fields checked.
    Exits with a one-line error naming what is missing."""
    if state_file is not None and not state_file.exists():
        fail(f"state file {state_file} does not exist; is 'callback-bridge local up' running?")
    try:
        return load_config(state_file=state_file).with_overrides(**overrides).require(*required)
    except ConfigError as exc:
        fail(str(exc))


def fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)
