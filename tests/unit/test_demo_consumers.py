"""The demo starts its clock only once its consumers are polling, and fails at once, naming
the log, when one of them cannot start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bridge.local_stack.demo import wait_until_polling


def consumer(log_dir: Path, i: int, code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", code], stderr=(log_dir / f"worker-{i}.log").open("wb")
    )


def test_it_returns_once_every_consumer_logs_that_it_polls(tmp_path: Path) -> None:
    polls = "import sys, time; time.sleep({}); print('worker w polling q', file=sys.stderr); "
    processes = [
        consumer(tmp_path, 0, polls.format(0) + "sys.stderr.flush(); time.sleep(5)"),
        consumer(tmp_path, 1, polls.format(0.3) + "sys.stderr.flush(); time.sleep(5)"),
    ]
    try:
        wait_until_polling(processes, tmp_path, timeout_s=10)
        assert "polling" in (tmp_path / "worker-1.log").read_text()
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_a_consumer_that_exits_at_start_fails_the_demo_naming_its_log(tmp_path: Path) -> None:
    processes = [consumer(tmp_path, 0, "import sys; sys.exit('no such queue')")]
    with pytest.raises(RuntimeError, match=r"consumer 0 exited with 1: see .*worker-0.log"):
        wait_until_polling(processes, tmp_path, timeout_s=10)
