"""``callback-bridge``: one entry point, one module per command group."""

from __future__ import annotations

import typer

from bridge.cli import bench, chaos, demo, dlq, jobs, local, rerun, run, worker
from bridge.cli import status as status_command

app = typer.Typer(
    help="Hand Step Functions work to EC2 consumers through SQS, with task tokens.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
