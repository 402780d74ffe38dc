"""Reconciliation rules on recorded data: what counts as lost, stale, leaked or accounted."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bridge.chaos.checks import (
    LEAK_CHARS,
    TokenIndex,
    bug_lines,
    listeners_off_loopback,
    live_daemons,
    rejected_markers,
    token_leaks,
)
from bridge.chaos.fuzz import generate
from bridge.chaos.reconcile import Execution, Observed, summarise
from bridge.chaos.tokens import TokenMint
from bridge.chaos.work import start_daemon
from bridge.contract import mask_token

TOKEN = "0b7f6f4e-54b1-4bb1-9a59-2c7d6d0e8a11"


def finished(name: str, modes: list[str], entries: list[Any]) -> Execution:
    items = [{"n": i, "mode": m, "type": "chaos"} for i, m in enumerate(modes)]
    execution = Execution(f"arn:{name}", name, items, started_at=0.0, status="SUCCEEDED")
    execution.described = {"status": "SUCCEEDED", "output": json.dumps(entries)}
    return execution


def own(name: str, index: int) -> dict[str, Any]:
    """The Map entry of a job that succeeded with its own output (``bridge.chaos.work``)."""
    return {"status": "SUCCEEDED", "output": {"job_id": f"{name}/RunJob/{index}/0", "n": index}}


def failed(error: str) -> dict[str, Any]:
    return {"status": "FAILED", "error": error, "cause": "x"}


def observed(tmp_path: Path, *executions: Execution, **extra: Any) -> Observed:
    obs = Observed(seed=1, work_dir=tmp_path, executions=list(executions))
    obs.foreign_checks = {"foreign": {"checked": True, "unchanged": True}}
    for key, value in extra.items():
        setattr(obs, key, value)
    return obs


def test_outcomes_as_asked_pass(tmp_path: Path) -> None:
    run = finished("a", ["ok", "fail", "hang", "crash", "nan", "daemon"], [
        own("a", 0), failed("ChaosFailure"), failed("Bridge.JobTimeout"),
        failed("Bridge.HandlerCrashed"), failed("Bridge.InvalidOutput"), own("a", 5),
    ])  # fmt: skip
    summary = summarise(observed(tmp_path, run))
    assert summary["passed"], summary["problems"]
    assert (summary["succeeded"], summary["failed"], summary["lost"]) == (2, 4, 0)
    assert summary["failed_by_error"] == {"Bridge.HandlerCrashed": 1, "Bridge.InvalidOutput": 1,
                                          "Bridge.JobTimeout": 1, "ChaosFailure": 1}  # fmt: skip
    for key in ("healthy_dead_lettered", "reran_after_result", "outputs_not_their_jobs",
                "daemons_escaped", "mismatched"):  # fmt: skip
        assert summary[key] == 0, key


@pytest.mark.parametrize("mode", ["ok", "fail", "hang", "nan", "daemon"])
def test_a_healthy_job_dead_lettered_fails_the_campaign(tmp_path: Path, mode: str) -> None:
    """Healthy jobs beside a crashing one must end as asked; the crasher itself must fail
    Bridge.HandlerCrashed (the crash limit), not be dead-lettered either."""
    run = finished("a", [mode, "crash"], [failed("Bridge.DeadLettered"),
                                          failed("Bridge.HandlerCrashed")])  # fmt: skip
    listed = {"jobs_archive_url": [{"Body": "{}", "MessageAttributes": {
        "bridge-job-id": {"StringValue": "a/RunJob/0/0"}}}]}  # fmt: skip
    summary = summarise(observed(tmp_path, run, dead_letters=listed))
    assert summary["healthy_dead_lettered"] == 1 and summary["lost"] == 0
    assert summary["healthy_dead_lettered_jobs"] == [f"a/0 (asked {mode})"]
    assert "1 healthy jobs dead-lettered" in summary["problems"] and not summary["passed"]


def test_a_crashing_job_must_fail_handler_crashed_not_be_dead_lettered(tmp_path: Path) -> None:
    run = finished("a", ["crash"], [failed("Bridge.DeadLettered")])
    listed = {"jobs_archive_url": [{"Body": "{}", "MessageAttributes": {
        "bridge-job-id": {"StringValue": "a/RunJob/0/0"}}}]}  # fmt: skip
    summary = summarise(observed(tmp_path, run, dead_letters=listed))
    assert summary["healthy_dead_lettered"] == 0 and summary["mismatched"] == 1
    assert not summary["passed"]


def test_a_nan_job_that_succeeds_or_fails_otherwise_is_a_mismatch(tmp_path: Path) -> None:
    run = finished("a", ["nan", "nan"], [own("a", 0), failed("ValueError")])
    assert summarise(observed(tmp_path, run))["mismatched"] == 2


def test_a_success_carrying_another_jobs_output_fails_the_campaign(tmp_path: Path) -> None:
    swapped = finished("a", ["ok", "ok"], [own("a", 1), own("a", 0)])
    other = finished("b", ["ok"], [own("a", 0)])
    empty = finished("c", ["ok"], [{"status": "SUCCEEDED", "output": None}])
    wrong_n = finished("d", ["ok"], [{"status": "SUCCEEDED",
                                      "output": {"job_id": "d/RunJob/0/0", "n": 7}}])  # fmt: skip
    summary = summarise(observed(tmp_path, swapped, other, empty, wrong_n))
    assert summary["outputs_not_their_jobs"] == 5 and not summary["passed"]
    assert summary["succeeded"] == 5
    # a stopped execution: the successes in its history are checked too
    stopped = Execution("arn:s", "s", [{"n": 0, "mode": "ok"}, {"n": 1, "mode": "ok"}], 0.0,
                        status="ABORTED")  # fmt: skip
    outputs = ({"job_id": "s/RunJob/1/0", "n": 1}, {"job_id": "s/RunJob/0/0", "n": 1})
    at = datetime.fromtimestamp(1.0, UTC)
    events = [
        {
            "type": "TaskSucceeded",
            "timestamp": at,
            "taskSucceededEventDetails": {"output": json.dumps(o)},
        }
        for o in outputs
    ]
    summary = summarise(observed(tmp_path, stopped, histories={"arn:s": events}))
    assert summary["outputs_not_their_jobs"] == 1 and summary["cancelled"] == 0


def test_a_job_run_again_after_its_result_was_delivered_is_counted(tmp_path: Path) -> None:
    run = finished("a", ["ok"], [own("a", 0)])
    job = "a/RunJob/0/0"
    journal = [
        {"event": "start", "job_id": job, "t": 99.0, "pid": 1, "copy": False},
        # started within the slack of the result's arrival: still the same delivery
        {"event": "start", "job_id": job, "t": 100.3, "pid": 3, "copy": False},
    ]
    obs = observed(tmp_path, run, journal=journal, delivered={job: 100.0})
    assert summarise(obs)["reran_after_result"] == 0
    journal.append({"event": "start", "job_id": job, "t": 104.0, "pid": 4, "copy": False})
    summary = summarise(obs)
    assert summary["reran_after_result"] == 1 and not summary["passed"]
    assert summary["reran_after_result_jobs"] == [f"{job} started 4.0 s after its result"]


def test_a_duplicate_delivery_may_run_until_its_task_closes_but_not_run_twice(
    tmp_path: Path,
) -> None:
    """Two messages for one task (the campaign's copy): whichever runs second, before the task
    closes, is at-least-once delivery; the same message running after it finished is not."""
    run = finished("a", ["ok"], [own("a", 0)])
    job = "a/RunJob/0/0"
    one = {"job_id": job, "pid": 1, "consumer": "consumer-1.1"}  # one process runs both
    journal = [
        {**one, "event": "start", "t": 99.0, "copy": True},
        {**one, "event": "finished", "t": 99.3, "copy": True},
        # the original message, after the copy's result reached the queue: not counted
        {**one, "event": "start", "t": 103.0, "copy": False},
        {**one, "event": "finished", "t": 103.3, "copy": False},
    ]
    obs = observed(tmp_path, run, journal=journal, delivered={job: 99.5})
    assert summarise(obs)["reran_after_result"] == 0
    journal.append({"event": "start", "job_id": job, "t": 106.0, "pid": 5, "copy": True})
    summary = summarise(obs)
    assert summary["reran_after_result_jobs"] == [f"{job} started 6.7 s after a run finished"]


def test_a_job_run_again_while_a_live_worker_held_its_result_is_counted(tmp_path: Path) -> None:
    """The results queue missing: the result waits in the worker's spool, and the job must
    not run again meanwhile, though no result has reached the queue yet."""
    run = finished("a", ["ok"], [own("a", 0)])
    job = "a/RunJob/0/0"
    journal = [
        {"event": "start", "job_id": job, "t": 99.0, "pid": 1, "consumer": "consumer-1.1"},
        {"event": "finished", "job_id": job, "t": 99.5, "pid": 1, "consumer": "consumer-1.1"},
        {"event": "start", "job_id": job, "t": 120.0, "pid": 2, "consumer": "consumer-2.1"},
    ]
    fleet = SimpleNamespace(killed=0, terminated=0, restarts=0, pill_deaths=0, crashes=[],
                            killed_generations=set(), stopped_generations=set(),
                            stops=0)  # fmt: skip
    obs = observed(tmp_path, run, journal=journal, fleet=fleet, delivered={job: 130.0})
    summary = summarise(obs)
    assert summary["reran_after_result"] == 1 and not summary["passed"]
    assert summary["reran_after_result_jobs"] == [f"{job} started 20.5 s after a run finished"]
    # the worker that finished it was killed, or frozen past its visibility timeout: a new run
    # is how the job gets done
    for gone in ("killed_generations", "stopped_generations"):
        setattr(fleet, gone, {"consumer-1.1"})
        assert summarise(obs)["reran_after_result"] == 0, gone
        setattr(fleet, gone, set())


def test_a_daemon_alive_after_its_job_escaped_unless_its_consumer_was_killed(
    tmp_path: Path,
) -> None:
    run = finished("a", ["daemon", "daemon"], [own("a", 0), own("a", 1)])
    journal = [
        {"event": "daemon", "job_id": "a/RunJob/0/0", "t": 1.0, "pid": 5, "daemon": 101,
         "consumer": "consumer-1.1"},
        {"event": "daemon", "job_id": "a/RunJob/1/0", "t": 1.0, "pid": 6, "daemon": 102,
         "consumer": "consumer-2.1"},
    ]  # fmt: skip
    fleet = SimpleNamespace(killed=0, terminated=0, restarts=0, pill_deaths=0, crashes=[],
                            killed_generations={"consumer-2.1"}, stopped_generations=set(),
                            stops=0)  # fmt: skip
    obs = observed(tmp_path, run, journal=journal, fleet=fleet, daemons_alive=[])
    summary = summarise(obs)
    assert summary["daemons_started"] == 2 and summary["daemons_escaped"] == 0
    obs.daemons_alive = [(102, "a/RunJob/1/0", 1)]
    summary = summarise(obs)
    assert summary["daemons_escaped"] == 0 and summary["daemons_left_by_killed_consumers"] == 1
    assert summary["passed"]
    obs.daemons_alive.append((101, "a/RunJob/0/0", 1))
    summary = summarise(obs)
    assert summary["daemons_escaped"] == 1 and not summary["passed"]


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
    run = finished("a", ["fail"], [own("a", 0)])
    summary = summarise(observed(tmp_path, run))
    assert summary["mismatched"] == 1 and not summary["passed"]


def test_a_run_that_started_after_its_task_closed_is_stale(tmp_path: Path) -> None:
    run = finished("a", ["ok"], [own("a", 0)])
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
    long = "AQ" + "x7Yz" * 15
    (tmp_path / "c.log").write_text(f"body {long}\n")
    assert token_leaks(tmp_path, {TOKEN}, {long}) == ["b.log:2", "c.log:1"]


def test_a_piece_of_a_real_length_token_is_a_leak_a_mask_is_not(tmp_path: Path) -> None:
    """AWS tokens are base64, up to 2,048 characters: a line cut short, or a body's first
    few hundred characters, shows part of one; that is a leak too."""
    mint = TokenMint(3)
    tokens = {mint() for _ in range(200)}
    token = max(tokens, key=len)
    assert len(token) == 2048 and token.startswith("AQ") and token.endswith("==")
    piece = token[700 : 700 + LEAK_CHARS]
    lines = {
        "masked.log": f'{{"token": "{mask_token(token)}"}}',
        "short.log": f"cut: {token[700 : 700 + LEAK_CHARS - 1]}",  # 31 characters: fine
        "piece.log": f'{{"message": "body {piece}"}}',
        "head.log": f"malformed job, body starts {token[:300]}",
        "quoted.log": f"taskToken={urllib.parse.quote(token[:100], safe='')}&x=1",
        "escaped.log": json.dumps(json.dumps({"t": token[-200:]})).replace("/", "\\/"),
        "full.log": f'b\'{{"taskToken": "{token}"}}\'',
    }
    for name, line in lines.items():
        (tmp_path / name).write_text(line + "\n")
    assert token_leaks(tmp_path, tokens, set()) == [
        f"{name}:1" for name in sorted(lines) if name not in ("masked.log", "short.log")
    ]


def test_the_index_finds_every_long_enough_piece_of_every_token() -> None:
    mint = TokenMint(5)
    tokens = [mint() for _ in range(50)]
    index = TokenIndex(tokens)
    for token in tokens[:10]:
        for start in range(0, len(token) - LEAK_CHARS, 97):
            assert index.longest(" " + token[start : start + LEAK_CHARS] + " ") >= LEAK_CHARS
    assert index.longest("AQ" + "A" * 100) < LEAK_CHARS


def test_a_daemon_that_escaped_its_job_is_found_in_proc() -> None:
    pid = start_daemon("chaos-test-0ab1/RunJob/3/0")
    try:
        found = live_daemons(["chaos-test-0ab1"])
        assert [(d.pid, d.job_id) for d in found] == [(pid, "chaos-test-0ab1/RunJob/3/0")]
        assert found[0].ppid != os.getpid()  # orphaned: it left the job's process tree
        assert live_daemons(["chaos-other"]) == []
    finally:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while live_daemons(["chaos-test-0ab1"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_daemons(["chaos-test-0ab1"]) == []


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
