"""What job code can reach, with real ``callback-bridge worker`` processes on the embedded stack:
a daemon a job starts with ``setsid`` dies with the job (ended or cancelled), and a command sees
none of the worker's credentials or settings.
"""

from __future__ import annotations

import json
import os
import pwd
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.local_stack import LocalStack
from tests.support.aws import start
from tests.support.polling import eventually, wait_for_execution
from tests.support.stack import WorkerFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAST = ("--visibility-timeout", "2", "--heartbeat-interval", "1", "--cancel-grace", "1")


def alive(tag: str) -> list[int]:
    """Running processes whose command line is exactly ``sleep <tag>``."""
    found = []
    for pid in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if argv[:2] == [b"sleep", tag.encode()] and state not in (b"Z", b"X"):
            found.append(int(pid))
    return found


@pytest.fixture
def tag() -> Iterator[str]:
    value = f"300.{os.getpid()}{int(time.monotonic() * 1000) % 100000}"
    yield value
    for pid in alive(value):
        os.kill(pid, 9)


def run(stack: LocalStack, items: list[dict[str, Any]], name: str) -> str:
    assert stack.clients and stack.config and stack.config.state_machine_arn
    return start(stack.clients.sfn, stack.config.state_machine_arn, items, name=name)


def test_a_setsid_daemon_dies_with_its_finished_job(
    stack: LocalStack, workers: WorkerFactory, tag: str
) -> None:
    assert stack.clients
    # The pause lets the daemon leave the group before the job ends (else the group's own
    # clean-up would get it).
    command = f"setsid sleep {tag} >/dev/null 2>&1 & sleep 0.5; echo '{{\"ok\": 1}}'"
    workers("--command", command, *FAST)
    arn = run(stack, [{}], "daemon-finished")
    described = wait_for_execution(stack.clients.sfn, arn, timeout_s=60)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])[0]["output"] == {"ok": 1}
    assert eventually(lambda: alive(tag) == [], timeout_s=5), "the daemon outlived its job"


def test_a_setsid_daemon_dies_with_its_cancelled_job(
    stack: LocalStack, workers: WorkerFactory, tag: str
) -> None:
    assert stack.clients
    workers("--command", f"setsid sleep {tag} >/dev/null 2>&1 & exec sleep {tag}", *FAST)
    arn = run(stack, [{}], "daemon-cancelled")
    assert eventually(lambda: len(alive(tag)) == 2, timeout_s=30)
    stack.clients.sfn.stop_execution(executionArn=arn)
    # A heartbeat (1 s) notices, the group gets SIGTERM; the escapee follows.
    assert eventually(lambda: alive(tag) == [], timeout_s=15), "the daemon outlived its job"


def test_a_command_sees_no_credentials_or_worker_settings(
    stack: LocalStack, workers: WorkerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.clients
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "worker-secret")
    monkeypatch.setenv("HTTP_PROXY", "")
    monkeypatch.setenv("EXTRA_FOR_JOBS", "yes")
    workers(
        "--command",
        "env",
        "--pass-env",
        "EXTRA_FOR_JOBS",
        *FAST,
    )
    arn = run(stack, [{}], "environment")
    described = wait_for_execution(stack.clients.sfn, arn, timeout_s=60)
    assert described["status"] == "SUCCEEDED", described
    text = json.loads(described["output"])[0]["output"]
    names = {line.split("=", 1)[0] for line in text.splitlines() if "=" in line}
    assert "EXTRA_FOR_JOBS" in names and "BRIDGE_JOB_ID" in names
    assert not {n for n in names if n.startswith("AWS_")}
    assert not {n for n in names if n.startswith("BRIDGE_") and n not in JOB_VARIABLES}
    assert "worker-secret" not in text


JOB_VARIABLES = {
    "BRIDGE_JOB_ID",
    "BRIDGE_JOB_TYPE",
    "BRIDGE_JOB_ATTEMPT",
    "BRIDGE_JOB_INPUT",
    "BRIDGE_JOB_RUN",
    "BRIDGE_EXECUTION_ARN",
}


@pytest.mark.skipif(os.geteuid() != 0, reason="--run-as needs a root (or capable) worker")
def test_run_as_runs_the_command_as_that_user(stack: LocalStack, workers: WorkerFactory) -> None:
    assert stack.clients
    nobody = pwd.getpwnam("nobody")
    probe = 'echo "{\\"uid\\": $(id -u), \\"gid\\": $(id -g), \\"cwd\\": \\"$(pwd)\\"}"'
    workers("--command", probe, "--run-as", "nobody", *FAST)
    arn = run(stack, [{}, {}], "run-as")
    described = wait_for_execution(stack.clients.sfn, arn, timeout_s=60)
    assert described["status"] == "SUCCEEDED", described
    expected = {"uid": nobody.pw_uid, "gid": nobody.pw_gid, "cwd": "/"}  # its home is missing
    assert [entry["output"] for entry in json.loads(described["output"])] == [expected] * 2
