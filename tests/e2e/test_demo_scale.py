"""The demo at the limits: it starts a run AWS would accept, through S3 when the jobs or their
results would not fit an execution's 256 KiB, and refuses one AWS would fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bridge.local_stack import demo

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "bridge.cli.main"]


def test_an_inline_run_past_the_history_limit_is_refused_before_anything_starts() -> None:
    done = subprocess.run(
        [*CLI, "demo", "--jobs", "3000", "--map-mode", "INLINE"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--map-mode DISTRIBUTED" in lines[0], done.stderr


@pytest.mark.slow
def test_a_run_too_big_for_the_execution_goes_through_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the payload limit lowered for the test, 24 jobs (a quarter of them failing) take
    the S3 path a 10,000-job run takes: items from an S3 object, results to S3 files."""
    monkeypatch.setattr(demo, "PAYLOAD_BYTES", 2048)
    plan = demo.DemoPlan(jobs=24, consumers=2, concurrency=8, fail_rate=0.25, job_ms=(0, 20))
    assert plan.fan_out().needs_item_file
    summary = demo.run_demo(plan, work_dir=tmp_path)
    assert (summary["map_mode"], summary["item_file"]) == ("DISTRIBUTED", True)
    assert summary["execution_status"] == "SUCCEEDED", summary
    assert (summary["succeeded"], summary["failed"], summary["timed_out"]) == (18, 6, 0)
    assert summary["ran_twice"] == 0
    assert summary["as_intended"], summary
