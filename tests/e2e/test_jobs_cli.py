"""``callback-bridge jobs`` as an operator runs it: real workers failing command jobs against
the embedded stack, then the failed jobs found (and, with ``rerun``, run again)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.local_stack import LocalStack
from tests.support.aws import depth
from tests.support.cli import run_cli
from tests.support.polling import wait_for_execution
from tests.support.stack import WorkerFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Fails a job (exit 3) the first time it sees its input's "n" when "flaky", always when "bad".
SCRIPT = r"""
import json, os, sys
data = json.load(sys.stdin)
seen = os.path.join(data["marks"], "seen-%s" % data["n"])
if data.get("bad") or (data.get("flaky") and not os.path.exists(seen)):
    open(seen, "w").close()
    sys.stderr.write("boom on %s\n" % data["n"])
    sys.exit(3)
print(json.dumps({"n": data["n"]}))
"""


def cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(stack, *args)


def command(tmp_path: Path) -> str:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    return f"{sys.executable} {script}"


def run_jobs(stack: LocalStack, jobs: list[dict[str, Any]], name: str) -> str:
    assert stack.clients and stack.config
    arn = stack.clients.sfn.start_execution(
        stateMachineArn=stack.config.state_machine_arn, name=name, input=json.dumps({"jobs": jobs})
    )["executionArn"]
    assert wait_for_execution(stack.clients.sfn, arn, timeout_s=60)["status"] == "SUCCEEDED"
    return str(arn)


def test_failed_command_jobs_are_listed_and_shown(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    workers("--command", command(tmp_path), "--concurrency", "4")
    marks = str(tmp_path)
    jobs = [{"n": n, "marks": marks, "bad": n % 3 == 0} for n in range(5)]
    execution = run_jobs(stack, jobs, "nightly")

    listed = cli(stack, "jobs", "list", "--failed", "--json")
    plain = cli(stack, "jobs", "list", "--failed")
    shown = cli(stack, "jobs", "show", "nightly/RunJob/3/0")
    by_name = cli(stack, "jobs", "show", "nightly")

    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["job_id"], r["status"], r["attempts"]) for r in rows] == [
        ("nightly/RunJob/0/0", "FAILED", 1),
        ("nightly/RunJob/3/0", "FAILED", 1),
    ]
    assert rows[0]["error"] == "Bridge.CommandFailed" and rows[0]["execution_arn"] == execution
    assert "read 1 execution(s) started since" in listed.stderr
    assert plain.returncode == 0, plain.stderr
    assert f"execution {execution}\n" in plain.stdout  # whole at 80 columns
    assert "\n  nightly/RunJob/3/0  FAILED  attempts 1  type default  Bridge.CommandFailed" in (
        plain.stdout
    )
    assert shown.returncode == 0, shown.stderr
    assert '"n": 3' in shown.stdout and "  | boom on 3" in shown.stdout
    assert "--- output ---" not in shown.stdout
    succeeded = cli(stack, "jobs", "show", "nightly/RunJob/1/0", "--json")
    assert json.loads(succeeded.stdout)["output"] == {"n": 1}
    assert by_name.returncode == 2
    assert "jobs list --execution nightly" in by_name.stderr


def test_jobs_of_a_jobs_file_run_come_from_its_result_files(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    workers("--command", command(tmp_path), "--concurrency", "4")
    jobs_file = tmp_path / "jobs.jsonl"
    marks = str(tmp_path)
    jobs_file.write_text(
        "\n".join(json.dumps({"n": n, "marks": marks, "bad": n == 1}) for n in range(3))
    )
    started = cli(stack, "run", "--jobs-file", str(jobs_file), "--json")
    execution = json.loads(started.stdout)["execution_arn"]

    listed = cli(stack, "jobs", "list", "--execution", execution, "--json")

    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["index"], r["status"]) for r in rows] == [
        (0, "SUCCEEDED"),
        (1, "FAILED"),
        (2, "SUCCEEDED"),
    ]
    assert "result file(s)" in listed.stderr


def test_rerun_failed_runs_the_failed_jobs_again_to_success(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    workers("--command", command(tmp_path), "--concurrency", "4")
    marks = str(tmp_path)
    jobs = [{"n": n, "marks": marks, "flaky": n in (1, 2)} for n in range(4)]
    run_jobs(stack, jobs, "flaky")
    assert stack.clients

    again = cli(stack, "rerun", "--failed")

    assert again.returncode == 0, again.stderr
    (line,) = again.stdout.splitlines()  # nothing but the new execution's ARN
    assert line.startswith("arn:aws:states:") and ":execution:callback-bridge:flaky-rerun-" in line
    described = wait_for_execution(stack.clients.sfn, line, timeout_s=60)
    assert [entry["output"]["n"] for entry in json.loads(described["output"])] == [1, 2]
    listed = cli(stack, "jobs", "list", "--failed", "--execution", line, "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_a_dead_lettered_job_is_rerun_by_the_id_its_cause_names(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    """Something failed (the cause), fixed in three commands: rerun, then delete the letter."""
    assert stack.clients and stack.config
    sqs, sfn, config = stack.clients.sqs, stack.clients.sfn, stack.config
    lost = sfn.start_execution(
        stateMachineArn=config.state_machine_arn,
        name="lost",
        input=json.dumps({"jobs": [{"n": 7, "marks": str(tmp_path)}]}),
    )["executionArn"]
    for _ in range(200):  # nobody finishes it: received until the redrive policy moves it
        sqs.receive_message(QueueUrl=config.jobs_queue_url, VisibilityTimeout=0, WaitTimeSeconds=0)
        if sfn.describe_execution(executionArn=lost)["status"] != "RUNNING":
            break
        time.sleep(0.05)
    cause = json.loads(wait_for_execution(sfn, lost)["output"])[0]["cause"]
    named = re.search(r"message (\S+) is kept in", cause)
    assert named, cause
    workers("--command", command(tmp_path))

    again = cli(stack, "rerun", named[1])
    deleted = cli(stack, "dlq", "delete", named[1], "--yes")

    assert again.returncode == 0, again.stderr
    (arn,) = again.stdout.splitlines()
    described = wait_for_execution(sfn, arn, timeout_s=60)
    assert json.loads(described["output"])[0]["output"] == {"n": 7}
    assert deleted.returncode == 0, deleted.stderr
    assert depth(sqs, str(config.jobs_archive_url)) == 0
