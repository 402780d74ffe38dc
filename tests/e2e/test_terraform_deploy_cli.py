"""The CLI around the deployment rehearsal: ``local up --port`` keeps the endpoint a Terraform
working directory points at, and ``local deploy`` says in one line what it lacks (a running
stack, a terraform binary) instead of a traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLI = [sys.executable, "-m", "bridge.cli.main"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_local_up_binds_the_port_it_is_given(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "local.json"
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [*CLI, "local", "up", "--port", str(port), "--state-file", str(state)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert eventually(lambda: b"state written" in log.read_bytes(), 60), log.read_text()
        assert f"embedded AWS on http://127.0.0.1:{port} " in log.read_text()
        assert f'"endpoint_url": "http://127.0.0.1:{port}"' in state.read_text()
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=30)


def test_deploy_without_a_stack_says_so_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "local", "deploy", "--state-file", str(tmp_path / "none.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no embedded stack is running" in lines[0], done.stderr


def test_deploy_without_terraform_says_how_to_get_it(tmp_path: Path) -> None:
    state = tmp_path / "local.json"
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [*CLI, "local", "up", "--state-file", str(state)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        assert eventually(lambda: b"state written" in log.read_bytes(), 60), log.read_text()
        env = {k: v for k, v in os.environ.items() if k != "TERRAFORM"}
        env["PATH"] = str(Path(sys.executable).parent)  # python, no terraform
        started = time.monotonic()
        done = subprocess.run(
            [*CLI, "local", "deploy", "--state-file", str(state), "--workdir", str(tmp_path / "d")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=env,
        )
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=30)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "terraform not found" in lines[0] and "install Terraform" in lines[0]
    assert time.monotonic() - started < 60
