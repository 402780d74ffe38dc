"""The quick chaos campaign, as CI runs it: ``callback-bridge chaos --quick --json`` on the
embedded stack with real consumer processes (about a minute on 2 cores)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.serial]

KEYS = {"jobs", "succeeded", "failed", "cancelled", "dead_lettered", "lost",
        "duplicate_successes", "consumers_killed", "faults", "malformed_injected",
        "malformed_accounted", "seed", "healthy_dead_lettered", "reran_after_result",
        "outputs_not_their_jobs", "daemons_escaped"}  # fmt: skip


@pytest.mark.timeout(300)
def test_the_quick_campaign_loses_nothing(tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridge.cli.main",
            "chaos",
            "--quick",
            "--seed",
            "7",
            "--json",
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    lines = run.stdout.strip().splitlines()
    assert lines, run.stderr[-3000:]
    summary = json.loads(lines[-1])
    assert set(summary) >= KEYS
    assert "chaos seed 7" in run.stderr  # printed, so a failing run can be replayed
    assert summary["problems"] == [], summary
    assert run.returncode == 0
    assert summary["jobs"] >= 200 and summary["lost"] == 0
    assert summary["duplicate_successes"] == 0 and summary["stale_runs_in_full"] == 0
    assert summary["malformed_accounted"] == summary["malformed_injected"] > 0
    assert summary["consumers_killed"] >= 1 and summary["consumer_crashes"] == 0
    assert (
        summary["succeeded"] + summary["failed"] + summary["cancelled"] + summary["dead_lettered"]
        == summary["jobs"]
    )
    faults = summary["faults"]
    for kind in ("throttle", "error5xx", "outage_sfn", "outage_results", "termination_notice",
                 "duplicate_job", "execution_stopped", "poison_message", "consumer_sigstop",
                 "results_queue_missing", "queue_missing"):  # fmt: skip
        assert faults.get(kind, 0) >= 1, kind
    assert summary["token_leaks"] == 0 and summary["listeners_off_loopback"] == []
    assert summary["foreign_token"]["unchanged"] is True
    # issue 18: the new faults, and the figures that must stay at 0
    assert summary["healthy_dead_lettered"] == 0 and summary["reran_after_result"] == 0
    assert summary["outputs_not_their_jobs"] == 0 and summary["daemons_escaped"] == 0
    assert summary["dead_lettered"] == 0  # crashing jobs fail Bridge.HandlerCrashed instead
    failed = summary["failed_by_error"]
    assert (
        failed.get("Bridge.HandlerCrashed", 0) >= 1 and failed.get("Bridge.InvalidOutput", 0) >= 1
    )
    assert summary["daemons_started"] >= 1
    for kind in ("deep_nesting", "duplicate_keys", "non_finite"):
        assert summary["malformed_by_kind"].get(kind, 0) >= 2, kind  # both queues
    assert summary["token_lengths"]["max"] == 2048
