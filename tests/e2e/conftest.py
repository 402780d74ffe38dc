"""The embedded stack (moto server on 127.0.0.1, in this process) and real worker processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.local_stack import LocalStack, StackSettings
from tests.support.stack import WorkerFactory, e2e_settings


@pytest.fixture
def stack_settings(request: pytest.FixtureRequest) -> StackSettings:
    """:func:`e2e_settings`; parametrize indirectly with a Map mode to switch it."""
    return e2e_settings(map_mode=getattr(request, "param", "INLINE"))


@pytest.fixture
def stack(tmp_path: Path, stack_settings: StackSettings) -> Iterator[LocalStack]:
    with LocalStack(stack_settings, state_file=tmp_path / "local.json") as running:
        yield running


@pytest.fixture
def workers(stack: LocalStack, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start ``callback-bridge worker`` processes joined through the stack's state file."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        assert stack.state_file is not None
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bridge.cli.main",
                "worker",
                "--state-file",
                str(stack.state_file),
                "--wait-seconds",
                "1",
                "--state-dir",  # the result spool: here, not in ~/.local/state
                str(tmp_path / "worker-state"),
                # Answered jobs are deleted within half a second, not the default five: tests
                # look for the queues to empty (a later --delete-window in args wins).
                "--delete-window",
                "0.5",
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
