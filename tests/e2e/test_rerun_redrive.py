"""``callback-bridge rerun --redrive EXECUTION`` against the embedded stack with real workers:
a run stopped while one job waited is continued in place, only that job runs again, and the
execution ends SUCCEEDED with every job's output; an execution the failure policy failed is
refused with the command that does re-run its failed jobs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bridge.local_stack import LocalStack, StackSettings
from tests.support.cli import run_cli
from tests.support.polling import eventually, wait_for_execution
from tests.support.stack import WorkerFactory, e2e_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Appends its "n" to the runs file when it starts; a job with a "gate" waits (up to 60 s)
#: for that file to exist; a "bad" job fails (exit 3).
SCRIPT = r"""
import json, os, sys, time
data = json.load(sys.stdin)
with open(data["runs"], "a") as runs:
    runs.write("%s\n" % data["n"])
if data.get("bad"):
    sys.exit(3)
deadline = time.monotonic() + 60
while data.get("gate") and not os.path.exists(data["gate"]):
    if time.monotonic() > deadline:
        sys.exit(4)
    time.sleep(0.1)
print(json.dumps({"n": data["n"]}))
"""


@pytest.fixture
def stack_settings() -> StackSettings:
    """Any failed job fails the execution (``Bridge.JobsFailed``)."""
    return e2e_settings(failure_policy="fail")


def cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(stack, *args)


def start_workers(workers: WorkerFactory, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    workers("--command", f"{sys.executable} {script}", "--concurrency", "4")


def runs(path: Path) -> Counter[int]:
    return Counter(int(line) for line in path.read_text().split()) if path.exists() else Counter()


def test_a_stopped_run_is_redriven_in_place_running_only_its_unfinished_job(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    assert stack.clients and stack.config
    sfn = stack.clients.sfn
    start_workers(workers, tmp_path)
    log, gate = tmp_path / "runs", tmp_path / "gate"
    jobs = [{"n": n, "runs": str(log)} for n in range(3)]
    jobs[2]["gate"] = str(gate)
    arn = sfn.start_execution(
        stateMachineArn=stack.config.state_machine_arn,
        name="gated",
        input=json.dumps({"jobs": jobs}),
    )["executionArn"]

    def two_done_one_waiting() -> bool:
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        done = sum(e["type"] == "MapIterationSucceeded" for e in events)
        return done == 2 and runs(log)[2] == 1

    assert eventually(two_done_one_waiting, timeout_s=30), runs(log)
    sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by the test")
    assert wait_for_execution(sfn, arn)["status"] == "ABORTED"
    stopped = cli(stack, "jobs", "list", "--failed", "--execution", "gated", "--json")
    # AWS: ABORTED; the embedded stack records the stop as the open task's TaskTimedOut.
    [open_job] = json.loads(stopped.stdout)
    assert open_job["index"] == 2 and open_job["status"] in ("ABORTED", "TIMED_OUT")
    gate.touch()  # the fix: job 2 can now finish

    redriven = cli(stack, "rerun", "--redrive", "gated")

    assert redriven.returncode == 0, redriven.stderr
    assert redriven.stdout == f"{arn}\n"  # the same execution, whole on its own line
    assert "was ABORTED" in redriven.stderr and "redrive 1" in redriven.stderr
    ended = wait_for_execution(sfn, arn, timeout_s=60)
    assert ended["status"] == "SUCCEEDED", ended
    outputs = [entry["output"] for entry in json.loads(ended["output"])]
    assert outputs == [{"n": 0}, {"n": 1}, {"n": 2}]
    counts = runs(log)
    assert (counts[0], counts[1]) == (1, 1)  # finished before the stop: not run again
    assert counts[2] == 2  # the job that was waiting: run again by the redrive
    listed = cli(stack, "jobs", "list", "--execution", "gated", "--json")
    rows = json.loads(listed.stdout)  # the history goes on across the redrive
    assert [(r["index"], r["status"], r["attempts"]) for r in rows] == [
        (0, "SUCCEEDED", 1),
        (1, "SUCCEEDED", 1),
        (2, "SUCCEEDED", 2),
    ]
    again = cli(stack, "rerun", "--redrive", arn)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"error: execution {arn} is SUCCEEDED: only a FAILED, TIMED_OUT or ABORTED "
        "execution can be redriven"
    ]


def test_a_run_failed_by_the_policy_is_refused_naming_rerun(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    assert stack.clients and stack.config
    sfn = stack.clients.sfn
    start_workers(workers, tmp_path)
    log = tmp_path / "runs"
    jobs = [{"n": n, "runs": str(log), "bad": n == 1} for n in range(2)]
    arn = sfn.start_execution(
        stateMachineArn=stack.config.state_machine_arn,
        name="strict",
        input=json.dumps({"jobs": jobs}),
    )["executionArn"]
    assert wait_for_execution(sfn, arn, timeout_s=60)["error"] == "Bridge.JobsFailed"

    refused = cli(stack, "rerun", "--redrive", "strict")
    missing = cli(stack, "rerun", "--redrive", "no-such-run")

    assert refused.returncode == 2 and refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert arn in line and "Bridge.JobsFailed" in line and f"callback-bridge rerun {arn}" in line
    assert sfn.describe_execution(executionArn=arn)["redriveCount"] == 0  # nothing was redriven
    assert missing.returncode == 2 and "no-such-run" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
