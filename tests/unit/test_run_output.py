"""``callback-bridge run``'s output: progress a line per change off a terminal, results whose
ids are never wrapped or shortened at 80 columns, and the flags that go together."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from bridge.cli.main import app
from bridge.cli.run import LineProgress, attached, print_results
from bridge.ops.fanout import FanOutResults, JobResult, Progress, ProgressReader

ARN = "arn:aws:states:us-east-1:123456789012:execution:callback-bridge:fanout-0123456789abcdef"
MANIFEST = (
    "s3://callback-bridge-fanout/results/fanout-0123456789abcdef/"
    "7f1b2c3d-aaaa-bbbb-cccc-0123456789ab/manifest.json"
)


class MapRuns:
    """A Step Functions client whose map run answers ``counts`` in turn (none before the
    first)."""

    def __init__(self, *counts: dict[str, int] | None) -> None:
        self.counts = list(counts)
        self.describes = 0

    def list_map_runs(self, executionArn: str) -> dict[str, Any]:
        if self.counts and self.counts[0] is None:
            self.counts.pop(0)
            return {"mapRuns": []}
        return {"mapRuns": [{"mapRunArn": executionArn + "/run"}]}

    def describe_map_run(self, mapRunArn: str) -> dict[str, Any]:
        self.describes += 1
        counts = self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]
        return {"itemCounts": counts}


def results() -> FanOutResults:
    return FanOutResults(
        ARN,
        "SUCCEEDED",
        jobs=[
            JobResult(0, "SUCCEEDED", {"n": 0}),
            JobResult(1, "FAILED", error="Bridge.CommandFailed", cause="trace\nexit status 3"),
        ],
        manifest=MANIFEST,
    )


def test_progress_off_a_terminal_is_one_line_per_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sfn = MapRuns(
        None,
        {"total": 4, "pending": 4},
        {"total": 4, "pending": 2, "running": 2},
        {"total": 4, "pending": 2, "running": 2},  # unchanged: no line
        {"total": 4, "pending": 1, "running": 2, "succeeded": 1},
        {"total": 4, "running": 1, "succeeded": 2, "timedOut": 1},
        {"total": 4, "succeeded": 2, "failed": 1, "timedOut": 1},
    )
    reader, shown = ProgressReader(sfn, ARN), LineProgress()
    for _ in range(7):
        shown.show(reader.read())

    assert capsys.readouterr().err.splitlines() == [
        "waiting for the Map Run to start",
        "done 0, failed 0, running 0 of 4",
        "done 0, failed 0, running 2 of 4",
        "done 1, failed 0, running 2 of 4",
        "done 2, failed 1, running 1 of 4",
        "done 2, failed 2, running 0 of 4",
    ]


def test_the_map_run_is_looked_up_once_then_only_described() -> None:
    sfn = MapRuns({"total": 2, "succeeded": 1, "aborted": 1})
    reader = ProgressReader(sfn, ARN)
    first, second = reader.read(), reader.read()
    assert first == second == Progress(total=2, succeeded=1, failed=1)
    assert first.done == 2 and sfn.describes == 2


def test_results_on_an_80_column_terminal_keep_every_id_whole() -> None:
    out = StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system=None)
    print_results(console, results())
    text = out.getvalue()
    assert f"execution  {ARN}\n" in text and f"results    {MANIFEST}\n" in text
    assert "…" not in text and "..." not in text
    assert "Bridge.CommandFailed: exit status 3" in text  # the table: counts and errors


def test_results_off_a_terminal_are_plain_lines() -> None:
    out = StringIO()
    print_results(Console(file=out, width=80, force_terminal=False), results())
    assert out.getvalue().splitlines() == [
        f"execution  {ARN}",
        "status     SUCCEEDED",
        "jobs       2",
        "succeeded  1",
        "failed     1",
        f"results    {MANIFEST}",
        "job 1      Bridge.CommandFailed: exit status 3",
    ]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([], "give --jobs-file FILE to start a run, or --attach EXECUTION"),
        (["--jobs-file", "j.json", "--attach", "x"], "give --jobs-file FILE"),
        (["--attach", "x", "--no-wait"], "no --name or --no-wait"),
    ],
)
def test_run_takes_a_jobs_file_or_an_execution_to_attach_to(args: list[str], said: str) -> None:
    result = CliRunner().invoke(app, ["run", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert said in result.output


class Executions:
    def __init__(self, described: dict[str, Any]) -> None:
        self.described = described

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {"executionArn": executionArn, **self.described}


MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:callback-bridge"


def test_attach_takes_a_name_or_an_arn_of_a_jobs_file_run() -> None:
    sfn = Executions({"input": '{"items": {"bucket": "b", "key": "items/x.json"}}'})
    assert attached(sfn, MACHINE, "fanout-0123456789abcdef") == ARN
    assert attached(sfn, MACHINE, ARN) == ARN


def test_attach_to_a_run_whose_jobs_came_in_its_input_names_jobs_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sfn = Executions({"input": '{"jobs": [{"n": 1}]}'})
    with pytest.raises(typer.Exit) as refused:
        attached(sfn, MACHINE, ARN)
    assert refused.value.exit_code == 2
    said = capsys.readouterr().err
    assert f"callback-bridge jobs list --execution {ARN}" in said
    assert len(said.strip().splitlines()) == 1
