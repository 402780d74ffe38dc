"""Large fan-outs the AWS way, end to end on the embedded stack: a jobs file goes to S3, the
template's S3-fed Distributed Map reads it, real worker processes run the jobs, and the Map's
ResultWriter puts every job's result back in S3, where ``callback-bridge run`` reads them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bridge.contract import Job
from bridge.local_stack import LocalStack, StackSettings
from bridge.ops.fanout import read_results, start_from_items, wait_for_execution
from tests.support.stack import WorkerFactory, e2e_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HANDLER = "tests.e2e.test_s3_fanout:square"


@pytest.fixture
def stack_settings(request: pytest.FixtureRequest) -> StackSettings:
    """The e2e settings (tests/e2e/conftest.py), plus a failure policy when parametrized.
    The stack's own Map mode stays INLINE: items in S3 always run the Distributed Map."""
    return e2e_settings(**getattr(request, "param", {}))


class Refused(Exception):
    """What the handler raises for a job that asks to fail."""


def square(job_input: Any, job: Job) -> Any:
    """The worker's handler: ``n`` squared, or a failure when the job says ``fail``."""
    if job_input.get("fail"):
        raise Refused(f"job {job_input['n']} asked to fail")
    return {"square": job_input["n"] ** 2}


def _run_cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    assert stack.state_file is not None
    command = [
        sys.executable,
        "-m",
        "bridge.cli.main",
        "run",
        "--state-file",
        str(stack.state_file),
    ]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_jobs_file_fans_out_through_s3_and_every_result_comes_back_from_s3(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    assert stack.clients and stack.config and stack.clients.s3
    assert stack.config.fanout_bucket == "callback-bridge-fanout"
    workers("--handler", HANDLER, "--concurrency", "8")
    jobs = [{"n": n, **({"fail": True} if n % 10 == 3 else {})} for n in range(40)]
    jobs_file = tmp_path / "jobs.jsonl"  # JSON Lines, converted to the JSON array S3 holds
    jobs_file.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    results_file = tmp_path / "results.jsonl"

    done = _run_cli(
        stack,
        "--jobs-file",
        str(jobs_file),
        "--name",
        "big-run",
        "--json",
        "--results-file",
        str(results_file),
        "--timeout",
        "90",
    )

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["status"], summary["jobs"], summary["succeeded"], summary["failed"]) == (
        "SUCCEEDED",
        40,
        36,
        4,
    )
    assert summary["manifest"].startswith("s3://callback-bridge-fanout/results/big-run/")
    assert [job["index"] for job in summary["failed_jobs"]] == [3, 13, 23, 33]
    assert {job["error"] for job in summary["failed_jobs"]} == {"Refused"}
    # Every job's result, in job order, from the ResultWriter's files.
    results = [json.loads(line) for line in results_file.read_text().splitlines()]
    assert [r["index"] for r in results] == list(range(40))
    for n, result in enumerate(results):
        if n % 10 == 3:
            assert result["status"] == "FAILED"
            assert "asked to fail" in result["cause"]
        else:
            assert result == {"index": n, "status": "SUCCEEDED", "output": {"square": n * n}}
    # Neither the execution's input nor its output carried the jobs: both point to S3.
    s3, bucket = stack.clients.s3, stack.config.fanout_bucket
    execution = stack.clients.sfn.describe_execution(executionArn=summary["execution_arn"])
    assert json.loads(execution["input"]) == {
        "items": {"bucket": bucket, "key": "items/big-run.json"}
    }
    assert json.loads(s3.get_object(Bucket=bucket, Key="items/big-run.json")["Body"].read()) == jobs
    output = json.loads(execution["output"])
    assert set(output) == {"MapRunArn", "ResultWriterDetails"}
    assert f"s3://{bucket}/{output['ResultWriterDetails']['Key']}" == summary["manifest"]


@pytest.mark.parametrize(
    "stack_settings",
    [{"failure_policy": "fail", "tolerated_failure_count": 1}],
    indirect=True,
)
def test_jobs_failed_beyond_the_tolerance_fail_the_run_with_bridge_jobs_failed(
    stack: LocalStack, workers: WorkerFactory
) -> None:
    assert stack.clients and stack.config and stack.clients.s3 and stack.config.fanout_bucket
    workers("--handler", HANDLER, "--concurrency", "4")
    sfn, s3 = stack.clients.sfn, stack.clients.s3
    arn_sm, bucket = stack.config.state_machine_arn or "", stack.config.fanout_bucket

    one_failure = [{"n": 1}, {"n": 2, "fail": True}, {"n": 3}]
    tolerated = start_from_items(sfn, s3, arn_sm, bucket, one_failure, name="one-failure")
    two_failures = [{"n": 1, "fail": True}, {"n": 2, "fail": True}, {"n": 3}]
    too_many = start_from_items(sfn, s3, arn_sm, bucket, two_failures, name="two-failures")

    assert wait_for_execution(sfn, tolerated, timeout_s=60, every_s=0.1)["status"] == "SUCCEEDED"
    results = read_results(sfn, s3, tolerated)
    assert (results.succeeded, results.failed) == (2, 1)
    assert results.jobs[1].error == "Refused"

    described = wait_for_execution(sfn, too_many, timeout_s=60, every_s=0.1)
    assert described["status"] == "FAILED"
    assert described["error"] == "Bridge.JobsFailed"
    assert "more jobs failed than tolerated" in described["cause"]
    assert "States.ExceedToleratedFailureThreshold" in described["cause"]
