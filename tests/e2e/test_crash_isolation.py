"""A handler that kills its worker process (SIGKILL, as the OOM killer does) beside healthy jobs,
with real worker processes restarted the way systemd restarts them: the healthy jobs succeed,
the culprit fails ``Bridge.HandlerCrashed`` with the signal, and nothing is dead-lettered.

Slow: each crash costs a visibility timeout (2 s here) and an interpreter start.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bridge.contract import ERROR_HANDLER_CRASHED
from bridge.local_stack import LocalStack, StackSettings
from tests.support.aws import depth, start
from tests.support.polling import wait_for_execution
from tests.support.stack import WorkerFactory, assert_queues_empty, e2e_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAST = ("--visibility-timeout", "2", "--heartbeat-interval", "1", "--cancel-grace", "1")
HANDLER = "tests.e2e.handlers:crash_if_asked"


@pytest.fixture
def stack_settings() -> StackSettings:
    return e2e_settings(jobs_max_receive_count=5)


@contextmanager
def restarted(workers: WorkerFactory, *args: str) -> Iterator[list[int]]:
    """Keep one worker running, starting a new one whenever it dies (systemd's
    ``Restart=on-failure``); yields the exit codes of those that died."""
    died: list[int] = []
    stop = threading.Event()

    def keep_running() -> None:
        process: subprocess.Popen[bytes] = workers(*args)
        while not stop.is_set():
            code = process.poll()
            if code is not None:
                died.append(code)
                process = workers(*args)
            stop.wait(0.2)
        process.terminate()
        process.wait(timeout=30)

    thread = threading.Thread(target=keep_running, daemon=True)
    thread.start()
    try:
        yield died
    finally:
        stop.set()
        thread.join(timeout=40)


def test_a_crashing_handler_costs_only_itself(stack: LocalStack, workers: WorkerFactory) -> None:
    assert stack.clients and stack.config
    sfn, config = stack.clients.sfn, stack.config
    jobs = [{"crash": True, "sleep_s": 0.5}] + [{"n": n, "sleep_s": 1.5} for n in range(1, 4)]
    arn = start(sfn, config.state_machine_arn or "", jobs)
    with restarted(workers, "--handler", HANDLER, "--concurrency", "4", *FAST) as died:
        described = wait_for_execution(sfn, arn, timeout_s=90)
    assert described["status"] == "SUCCEEDED", described
    crashed, *healthy = json.loads(described["output"])
    assert [h["status"] for h in healthy] == ["SUCCEEDED"] * 3, healthy
    assert [h["output"]["n"] for h in healthy] == [1, 2, 3]
    assert crashed["status"] == "FAILED" and crashed["error"] == ERROR_HANDLER_CRASHED, crashed
    assert "killed by signal 9 (SIGKILL)" in crashed["cause"]
    assert died and died[0] == -9  # the first delivery took its whole worker down
    assert depth(stack.clients.sqs, config.jobs_dlq_url or "") == 0
    assert_queues_empty(stack)
