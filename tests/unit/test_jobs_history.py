"""bridge.ops.jobs over an INLINE history: attempts chained from TaskScheduled, and a history
cut short at max_events completed from the output, never guessed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge.ops.jobs import JobReader

pytestmark = pytest.mark.unit

ARN = "arn:aws:states:us-east-1:123456789012:execution:bridge:cut"


def scheduled(event_id: int, index: int, attempt: int = 0) -> dict[str, Any]:
    body = {"job_id": f"cut/RunJob/{index}/{attempt}", "map_index": index, "attempt": attempt}
    body |= {"type": "default", "input": {"n": index}, "token": "t" * 20}
    parameters = json.dumps({"MessageBody": body})
    return {
        "id": event_id,
        "previousEventId": event_id - 1,
        "type": "TaskScheduled",
        "taskScheduledEventDetails": {"parameters": parameters},
    }


def ended(event_id: int, kind: str, **details: Any) -> dict[str, Any]:
    key = kind[0].lower() + kind[1:] + "EventDetails"
    return {"id": event_id, "previousEventId": event_id - 1, "type": kind, key: details}


class FakeLens:
    def __init__(self, events: list[dict[str, Any]], truncated: bool, **described: Any) -> None:
        self.events, self.truncated = events, truncated
        jobs = [{"n": n} for n in range(4)]
        self.described = {"name": "cut", "input": json.dumps({"jobs": jobs}), **described}

    def describe(self, arn: str) -> dict[str, Any]:
        return self.described

    def history(self, arn: str) -> tuple[list[dict[str, Any]], bool]:
        return self.events, self.truncated


OUTPUT = json.dumps(
    [
        {"status": "SUCCEEDED", "output": 0},
        {"status": "FAILED", "error": "Bridge.CommandFailed", "cause": "late"},
        {"status": "SUCCEEDED", "output": 2},
        {"status": "SUCCEEDED", "output": 3},
    ]
)
EVENTS = [
    scheduled(1, 0),
    ended(2, "TaskSucceeded", output="0"),
    scheduled(3, 1),  # its end lies beyond the cut
]


def test_a_cut_history_is_completed_from_the_output() -> None:
    lens = FakeLens(EVENTS, True, status="SUCCEEDED", output=OUTPUT)
    reader = JobReader(None, lens=lens)  # type: ignore[arg-type]

    jobs = reader.jobs(ARN)

    assert [(j.index, j.status, j.source) for j in jobs] == [
        (0, "SUCCEEDED", "history"),
        (1, "FAILED", "history"),  # scheduled in the history, ended in the output
        (2, "SUCCEEDED", "output"),
        (3, "SUCCEEDED", "output"),
    ]
    assert jobs[1].cause == "late" and jobs[0].output == 0
    assert reader.reads.truncated == [ARN]
    assert "history cut short for " + ARN in reader.reads.describe(None)


def test_a_cut_history_without_an_output_says_unknown_not_aborted() -> None:
    lens = FakeLens(EVENTS, True, status="FAILED")
    jobs = JobReader(None, lens=lens).jobs(ARN)  # type: ignore[arg-type]

    assert [j.status for j in jobs] == ["SUCCEEDED", "UNKNOWN", "UNKNOWN", "UNKNOWN"]


def test_a_whole_history_of_a_stopped_execution_says_aborted_and_not_run() -> None:
    lens = FakeLens(EVENTS, False, status="ABORTED")
    jobs = JobReader(None, lens=lens).jobs(ARN)  # type: ignore[arg-type]

    assert [j.status for j in jobs] == ["SUCCEEDED", "ABORTED", "NOT_RUN", "NOT_RUN"]
    assert [j.attempts for j in jobs] == [1, 1, 0, 0]
