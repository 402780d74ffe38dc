"""A real worker killed while its result is spooled (the results queue is gone): a new worker
process on the same state directory takes the job message back, so another worker of the fleet
never runs the job again, and delivers the result once the queue is back. The execution
succeeds; the job ran once."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from bridge.local_stack import LocalStack, StackSettings
from tests.support.aws import start
from tests.support.polling import eventually, wait_for_execution
from tests.support.stack import WorkerFactory, assert_queues_empty, e2e_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAST = ("--visibility-timeout", "2", "--heartbeat-interval", "1", "--cancel-grace", "1")


@pytest.fixture
def stack_settings() -> StackSettings:
    """A killed worker's job message comes back within seconds (the queue's own visibility
    timeout applies until the first extension), with receives to spare."""
    return e2e_settings(jobs_visibility_timeout_s=3, jobs_max_receive_count=4)


def test_a_killed_workers_spooled_result_is_delivered_by_its_successor_without_a_rerun(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    assert stack.clients and stack.config
    sfn, sqs, config = stack.clients.sfn, stack.clients.sqs, stack.config
    results_url = config.results_queue_url or ""
    runs = tmp_path / "runs"
    job = tmp_path / "job.sh"
    job.write_text(f"#!/bin/sh\necho run >> {runs}\nexec cat\n")
    job.chmod(0o755)
    state = tmp_path / "state"
    args = ("--command", str(job), "--state-dir", str(state), *FAST)

    sqs.delete_queue(QueueUrl=results_url)
    first = workers(*args)
    arn = start(sfn, config.state_machine_arn or "", [{"n": 7}])
    spooled = lambda: list(state.glob("results-spool/*/worker-0/*.json"))  # noqa: E731
    assert eventually(spooled, timeout_s=30), (tmp_path / "worker-0.log").read_text()
    assert stat_mode(spooled()[0]) == 0o600 and stat_mode(spooled()[0].parent) == 0o700
    os.kill(first.pid, signal.SIGKILL)  # the host survives, the process does not
    first.wait(timeout=10)

    workers(*args)  # on the same host: the same state directory
    log = tmp_path / "worker-1.log"
    assert eventually(lambda: "before this start" in log.read_text(), 30), log.read_text()
    other = ("--command", str(job), "--state-dir", str(tmp_path / "elsewhere"), *FAST)
    workers(*other)  # another worker of the fleet: it must never get the job
    other_log = tmp_path / "worker-2.log"
    assert eventually(lambda: "polling" in other_log.read_text(), 30)
    # Past the visibility timeout (2 s; the queue's 3 s until the first extension).
    assert not eventually(lambda: runs.read_text() != "run\n", timeout_s=5)
    assert sqs.create_queue(QueueName=results_url.rsplit("/", 1)[1])["QueueUrl"] == results_url
    described = wait_for_execution(sfn, arn, timeout_s=60)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == [{"status": "SUCCEEDED", "output": {"n": 7}}]
    assert runs.read_text() == "run\n"  # ran once, before the kill
    assert eventually(lambda: not spooled(), timeout_s=10)
    assert_queues_empty(stack)


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
