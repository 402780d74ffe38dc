"""``callback-bridge run --no-wait`` then ``run --attach``, off a terminal at 80 columns as a
script sees them: the ARN alone and whole, then the progress a line per change and the results
as plain lines, nothing shortened."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.local_stack import LocalStack
from tests.support.cli import run_cli
from tests.support.stack import WorkerFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCRIPT = r"""
import json, sys, time
data = json.load(sys.stdin)
time.sleep(0.5)
if data.get("bad"):
    sys.exit(3)
print(json.dumps({"n": data["n"]}))
"""


def cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(stack, *args, timeout=90)


def test_a_run_started_without_waiting_is_attached_to_later(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    workers("--command", f"{sys.executable} {script}", "--concurrency", "1")
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text("".join(json.dumps({"n": n, "bad": n == 2}) + "\n" for n in range(4)))

    started = cli(stack, "run", "--jobs-file", str(jobs_file), "--no-wait")

    assert started.returncode == 0, started.stderr
    (arn,) = started.stdout.splitlines()  # the ARN alone, over 80 characters and unwrapped
    assert arn.startswith("arn:aws:states:") and ":execution:callback-bridge:fanout-" in arn
    assert len(arn) > 80 and started.stdout == arn + "\n"
    assert f"callback-bridge run --attach {arn}" in started.stderr

    attached = cli(stack, "run", "--attach", arn)
    again = cli(stack, "run", "--attach", arn.rsplit(":", 1)[1], "--json")
    missing = cli(stack, "run", "--attach", "no-such-run")

    assert attached.returncode == 0, attached.stderr
    lines = attached.stdout.splitlines()
    assert f"execution  {arn}" in lines
    assert "status     SUCCEEDED" in lines and "failed     1" in lines
    [results] = [line for line in lines if line.startswith("results ")]
    manifest = results.split()[1]
    assert manifest.startswith("s3://callback-bridge-fanout/results/") and "..." not in manifest
    assert manifest.endswith("/manifest.json")
    progress = attached.stderr.splitlines()
    assert len(progress) >= 2, progress  # attached while its four 0.5 s jobs ran one by one
    assert progress[-1] == "done 3, failed 1, running 0 of 4"
    assert all(a != b for a, b in itertools.pairwise(progress))  # one per change
    summary = json.loads(again.stdout)
    assert (summary["execution_arn"], summary["succeeded"], summary["failed"]) == (arn, 3, 1)
    assert summary["manifest"] == manifest
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"error: no execution 'no-such-run' (looked for {arn.rsplit(':', 1)[0]}:no-such-run)"
    ]
