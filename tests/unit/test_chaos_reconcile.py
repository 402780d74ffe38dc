"""Reconciliation rules on recorded data: what counts as lost, stale, leaked or accounted."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.chaos.checks import bug_lines, listeners_off_loopback, rejected_markers, token_leaks
from bridge.chaos.fuzz import generate
from bridge.chaos.reconcile import Execution, Observed, summarise

TOKEN = "0b7f6f4e-54b1-4bb1-9a59-2c7d6d0e8a11"


def finished(name: str, modes: list[str], entries: list[Any]) -> Execution:
    items = [{"n": i, "mode": m, "type": "chaos"} for i, m in enumerate(modes)]
    execution = Execution(f"arn:{name}", name, items, started_at=0.0, status="SUCCEEDED")
    execution.described = {"status": "SUCCEEDED", "output": json.dumps(entries)}
    return execution


def observed(tmp_path: Path, *executions: Execution, **extra: Any) -> Observed:
    obs = Observed(seed=1, work_dir=tmp_path, executions=list(executions))
    obs.foreign_checks = {"foreign": {"checked": True, "unchanged": True}}
    for key, value in extra.items():
        setattr(obs, key, value)
    return obs


def test_outcomes_as_asked_pass(tmp_path: Path) -> None:
    run = finished("a", ["ok", "fail", "hang"], [
        {"status": "SUCCEEDED", "output": {}},
        {"status": "FAILED", "error": "ChaosFailure", "cause": "x"},
        {"status": "FAILED", "error": "Bridge.JobTimeout", "cause": "x"},
    ])  # fmt: skip
    summary = summarise(observed(tmp_path, run))
    assert summary["passed"], summary["problems"]
    assert (summary["succeeded"], summary["failed"], summary["lost"]) == (1, 2, 0)
    assert summary["failed_by_error"] == {"Bridge.JobTimeout": 1, "ChaosFailure": 1}


def test_a_timeout_a_running_execution_and_an_unlisted_dead_letter_are_lost(
    tmp_path: Path,
) -> None:
    timed_out = finished("a", ["ok", "ok"], [
        {"status": "FAILED", "error": "States.Timeout", "cause": ""},
        {"status": "FAILED", "error": "Bridge.DeadLettered", "cause": ""},
    ])  # fmt: skip
    waiting = Execution("arn:b", "b", [{"n": 0, "mode": "ok"}], started_at=0.0)
    summary = summarise(observed(tmp_path, timed_out, waiting))
    assert summary["lost"] == 3 and not summary["passed"]
    listed = {"jobs_archive_url": [{"Body": "{}", "MessageAttributes": {
        "bridge-job-id": {"StringValue": "a/RunJob/1/0"}}}]}  # fmt: skip
    summary = summarise(observed(tmp_path, timed_out, dead_letters=listed))
    assert summary["lost"] == 1 and summary["dead_lettered"] == 1


def test_a_wrong_outcome_is_a_mismatch(tmp_path: Path) -> None:
    run = finished("a", ["fail"], [{"status": "SUCCEEDED", "output": {}}])
    summary = summarise(observed(tmp_path, run))
    assert summary["mismatched"] == 1 and not summary["passed"]


def test_a_run_that_started_after_its_task_closed_is_stale(tmp_path: Path) -> None:
    run = finished("a", ["ok"], [{"status": "SUCCEEDED", "output": {}}])
    closed = datetime.fromtimestamp(100.0, UTC)
    events = [{"type": "TaskSucceeded", "timestamp": closed, "taskSucceededEventDetails": {
        "output": json.dumps({"job_id": "a/RunJob/0/0"})}}]  # fmt: skip
    journal = [
        {"event": "start", "job_id": "a/RunJob/0/0", "t": 99.0, "pid": 1},
        {"event": "finished", "job_id": "a/RunJob/0/0", "t": 99.5, "pid": 1},
        {"event": "start", "job_id": "a/RunJob/0/0", "t": 103.0, "pid": 2},
        {"event": "cancelled", "job_id": "a/RunJob/0/0", "t": 103.2, "pid": 2},
    ]
    obs = observed(tmp_path, run, histories={"arn:a": events}, journal=journal)
    assert summarise(obs)["stale_runs_in_full"] == 0  # the late one was cancelled
    journal[-1] = {"event": "finished", "job_id": "a/RunJob/0/0", "t": 104.0, "pid": 2}
    assert summarise(obs)["stale_runs_in_full"] == 1  # the late one ran in full


def test_full_tokens_in_logs_are_found_masked_ones_are_not(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text('{"token": "…6d0e8a11(36)"}\nok\n')
    assert token_leaks(tmp_path, {TOKEN}, set()) == []
    (tmp_path / "b.log").write_text(f"line\nheartbeat {TOKEN}\n")
    long = "chaos" + "x" * 60
    (tmp_path / "c.log").write_text(f"body {long}\n")
    assert token_leaks(tmp_path, {TOKEN}, {long}) == ["b.log:2", "c.log:1"]


def test_poison_is_accounted_by_dlq_body_or_a_logged_reason(tmp_path: Path) -> None:
    poison = generate(4, 3)
    a, b, c, d = poison
    (tmp_path / "completion.log").write_text(
        f'{{"message": "task already closed; result acknowledged", "job_id": "{b.job_id}"}}\n'
        f'{{"message": "started", "job_id": "{c.job_id}"}}\n'
    )
    assert rejected_markers(tmp_path) == {b.marker}
    obs = observed(
        tmp_path,
        poison=poison,
        poison_sent={p.marker: None for p in poison},
        dead_letters={"jobs_archive_url": [{"Body": a.body}]},
    )
    summary = summarise(obs)
    assert summary["malformed_injected"] == 4 and summary["malformed_accounted"] == 2
    assert summary["malformed_unaccounted"] == sorted([c.marker, d.marker])
    assert not summary["passed"]


def test_bug_messages_are_found(tmp_path: Path) -> None:
    (tmp_path / "w.log").write_text("fine\njob x: the runner failed\n")
    assert bug_lines(tmp_path) == ["w.log:2"]


def test_listeners_on_every_interface_are_reported() -> None:
    with socket.socket() as loop, socket.socket() as wide:
        loop.bind(("127.0.0.1", 0))
        loop.listen()
        assert listeners_off_loopback([]) == []
        wide.bind(("0.0.0.0", 0))
        wide.listen()
        port = wide.getsockname()[1]
        assert any(f":{port}" in line for line in listeners_off_loopback([]))
