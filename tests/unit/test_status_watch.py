"""``status`` output (issue 19, item 5): ``--watch`` off a terminal prints a picture per
interval, ``--watch --json`` one JSON object per line per refresh, and queue and execution
names are never wrapped or shortened at 80 columns. The AWS side is a fake ``collect`` and the
clock a fake ``sleep``: what is tested is the CLI's output."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

import bridge.cli.status as status_cli
from bridge.cli.main import app
from bridge.config import BridgeConfig
from bridge.ops.inspect.executions import JobCounts
from bridge.ops.status import ExecutionStatus, QueueStatus, Status

pytestmark = pytest.mark.unit

LONG_QUEUE = "acme-production-eu-west-1-callback-bridge-render-farm-jobs-dlq-archive-0001"
LONG_EXECUTION = "nightly-render-2026-12-07T21-00-00Z-" + "a" * 44


def picture(n: int) -> Status:
    return Status(
        taken_at=f"2026-12-07T21:00:{n:02d}+00:00",
        queues=[
            QueueStatus("jobs", "callback-bridge-jobs", n, 1, 0, 65.0, "peek"),
            QueueStatus("jobs archive", LONG_QUEUE, 0, 0, 0, None, None, "not peeked: redrive"),
        ],
        executions=[
            ExecutionStatus(
                LONG_EXECUTION,
                f"arn:aws:states:eu-west-1:123456789012:execution:bridge:{LONG_EXECUTION}",
                "2026-12-07 21:00:00+00:00",
                JobCounts(total=5, waiting=1, running=2, done=2, source="history"),
            )
        ],
        consumers_note="unknown: consumers do not report to a registry",
    )


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Pictures 1, 2, 3... from a fake collect; the sleeps between them recorded, not slept."""
    seen: dict[str, Any] = {"pictures": 0, "sleeps": []}

    def collect(*_: Any, **__: Any) -> Status:
        seen["pictures"] += 1
        return picture(seen["pictures"])

    config = BridgeConfig(jobs_queue_url="http://sqs.local/1/callback-bridge-jobs", source="t")
    monkeypatch.setattr(status_cli, "connect", lambda *_: (config, object()))
    monkeypatch.setattr(status_cli, "collect", collect)
    monkeypatch.setattr(status_cli, "cloudwatch_client", lambda _: None)
    monkeypatch.setattr(status_cli.time, "sleep", seen["sleeps"].append)
    return seen


def run(*args: str) -> str:
    done = CliRunner().invoke(app, ["status", *args], env={"COLUMNS": "80", "TERM": "dumb"})
    assert done.exit_code == 0, done.output
    return done.output


def test_watch_off_a_terminal_prints_a_picture_per_interval(taken: dict[str, Any]) -> None:
    out = run("--watch", "--interval", "0.5", "--count", "3")
    frames = out.split("\n\n")
    assert len(frames) == 3
    assert [frame.splitlines()[0][:35] for frame in frames] == [
        f"queues at 2026-12-07T21:00:0{n}+00:00" for n in (1, 2, 3)
    ]
    assert taken["sleeps"] == [0.5, 0.5]


def test_watch_json_streams_one_object_per_line(taken: dict[str, Any]) -> None:
    lines = run("--watch", "--json", "--interval", "1", "--count", "4").splitlines()
    documents = [json.loads(line) for line in lines]
    assert [d["taken_at"][-11:-6] for d in documents] == ["00:01", "00:02", "00:03", "00:04"]
    assert [d["queues"][0]["visible"] for d in documents] == [1, 2, 3, 4]
    assert documents[0]["config_source"] == "t"
    assert taken["sleeps"] == [1.0, 1.0, 1.0]


def test_json_without_watch_is_one_line(taken: dict[str, Any]) -> None:
    (line,) = run("--json").splitlines()
    assert json.loads(line)["executions"][0]["name"] == LONG_EXECUTION
    assert taken["pictures"] == 1


def test_names_stay_whole_on_their_lines_at_80_columns(taken: dict[str, Any]) -> None:
    lines = run().splitlines()
    assert any(line.endswith(f"  {LONG_QUEUE}") for line in lines), lines
    assert any(line.endswith(f"  {LONG_EXECUTION}") for line in lines), lines
    assert "…" not in "".join(lines) and "..." not in "".join(lines)
    assert "  jobs archive: age not peeked: redrive" in lines
    (jobs,) = [line for line in lines if line.endswith("callback-bridge-jobs")]
    assert jobs.split() == ["jobs", "1", "1", "0", "1m05s", "peek", "callback-bridge-jobs"]


def test_count_without_watch_is_refused(taken: dict[str, Any]) -> None:
    done = CliRunner().invoke(app, ["status", "--count", "2"])
    assert done.exit_code == 2 and "add --watch" in done.output
    assert taken["pictures"] == 0


def test_pictures_wait_the_interval_between_two_only() -> None:
    sleeps: list[float] = []
    shots = iter(range(10))
    taken = list(status_cli.pictures(lambda: picture(next(shots)), 2.0, 3, sleeps.append))
    assert [p.taken_at[-8:-6] for p in taken] == ["00", "01", "02"] and sleeps == [2.0, 2.0]
