"""``callback-bridge``: one entry point, one module per command group."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated

import typer

from bridge.cli import bench, chaos, demo, dlq, jobs, local, rerun, run, worker
from bridge.cli import status as status_command
from bridge.cli.help import WholeNamesGroup

app = typer.Typer(
    help="Hand Step Functions work to EC2 consumers through SQS, with task tokens.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help whose lines break only at spaces: no option or variable name is ever cut.
    cls=WholeNamesGroup,
    rich_markup_mode=None,
)
app.add_typer(local.app, name="local")
app.command("worker")(worker.worker)
app.command("demo")(demo.demo)
app.command("bench")(bench.bench)
app.command("chaos")(chaos.chaos)
app.command("run")(run.run)
app.add_typer(dlq.app, name="dlq")
app.add_typer(jobs.app, name="jobs")
app.command("rerun")(rerun.rerun)
app.command("status")(status_command.status)


def installed_version() -> str:
    """The installed distribution's version (pyproject.toml's), or "unknown" from a bare tree."""
    try:
        return package_version("callback-bridge")
    except PackageNotFoundError:
        return "unknown"


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"callback-bridge {installed_version()}")
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Hand Step Functions work to EC2 consumers through SQS, with task tokens."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
