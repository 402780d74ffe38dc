"""The commands a user types: ``local up`` / ``local env`` and ``demo``."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from bridge.contract import parse_job

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "bridge.cli.main"]


def exports(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        values[name] = shlex.split(value)[0]
    return values


@pytest.mark.slow
def test_local_up_serves_the_aws_cli_environment(tmp_path: Path) -> None:
    state = tmp_path / "local.json"
    up = subprocess.Popen(
        [*CLI, "local", "up", "--state-file", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not state.exists():
            assert up.poll() is None, up.communicate()
            assert time.monotonic() < deadline, "local up never wrote its state file"
            time.sleep(0.1)
        printed = subprocess.run(
            [*CLI, "local", "env", "--state-file", str(state)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        env = exports(printed)
        for name in (
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ACCESS_KEY_ID",
            "BRIDGE_JOBS_QUEUE_URL",
            "BRIDGE_RESULTS_QUEUE_URL",
            "BRIDGE_STATE_MACHINE_ARN",
        ):
            assert env.get(name), f"{name} missing from 'local env'"
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        # A plain boto3 script configured only by those variables starts real work.
        session = boto3.session.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )
        sfn = session.client("stepfunctions", endpoint_url=env["AWS_ENDPOINT_URL"])
        sqs = session.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"])
        sfn.start_execution(
            stateMachineArn=env["BRIDGE_STATE_MACHINE_ARN"],
            name="from-cli",
            input=json.dumps({"jobs": [{"hello": "world"}]}),
        )
        message = sqs.receive_message(QueueUrl=env["BRIDGE_JOBS_QUEUE_URL"], WaitTimeSeconds=10)[
            "Messages"
        ][0]
        assert parse_job(message["Body"]).input == {"hello": "world"}
        # A second stack on the same state file is refused while the first runs.
        second = subprocess.run(
            [*CLI, "local", "up", "--state-file", str(state)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 2 and "already running" in second.stderr
    finally:
        up.send_signal(signal.SIGINT)
        out, err = up.communicate(timeout=30)
    assert up.returncode == 0, err
    assert "127.0.0.1" in out
    assert not state.exists(), "the state file must go with the stack"


def test_local_env_without_a_stack_says_how_to_start_one(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "local", "env", "--state-file", str(tmp_path / "none.json")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "local up" in done.stderr


def test_worker_without_configuration_names_what_is_missing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    done = subprocess.run(
        [*CLI, "worker", "--handler", "consumers.demo_handler:work"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=30,
    )
    assert done.returncode == 2
    assert "BRIDGE_JOBS_QUEUE_URL" in done.stderr


def test_worker_refuses_both_or_neither_runner(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "worker", "--handler", "a:b", "--command", "true"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert done.returncode == 2 and "exactly one" in done.stderr


@pytest.mark.slow
def test_demo_with_failures_reports_them_as_failures(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            *CLI,
            "demo",
            "--jobs",
            "16",
            "--consumers",
            "2",
            "--fail-rate",
            "0.25",
            "--json",
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, done.stderr
    assert summary["jobs"] == 16
    assert (summary["succeeded"], summary["failed"]) == (12, 4)
    assert (
        summary["succeeded"] + summary["failed"] + summary["timed_out"] + summary["dead_lettered"]
        == 16
    )
    assert summary["latency_ms"]["p50"] > 0
    assert (
        summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"] <= summary["latency_ms"]["max"]
    )
    assert summary["requests_per_job"]["states:SendTaskSuccess"] == 0.75
    assert summary["requests_per_job"]["states:SendTaskFailure"] == 0.25
    assert summary["dlq_messages"] == {"jobs": 0, "results": 0}


def test_demo_rejects_a_bad_fail_rate() -> None:
    done = subprocess.run(
        [*CLI, "demo", "--fail-rate", "1.5"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "fail-rate" in done.stderr
