"""A real worker process whose internal thread dies: it exits 70, and its job is not lost.

The fault is a real one, from outside the process: the instance metadata serves a spot notice
whose ``time`` is a number, which the metadata client does not expect, and the instance
watcher thread dies of it. (The fault the issue reported, a receiver killed by a crafted
message, is being removed by safe parsing; every thread's death is also covered, with injected
faults, in ``tests/functional/test_thread_death.py``.)

Slow: the watcher polls every 5 s, so the notice takes up to 5 s to be read.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bridge.local_stack import LocalStack, StackSettings
from consumers.threads import EXIT_THREAD_DIED
from tests.e2e.scripts import job_script
from tests.support.aws import start
from tests.support.polling import eventually, visible, wait_for_execution
from tests.support.stack import WorkerFactory, assert_queues_empty, e2e_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAST = ("--visibility-timeout", "2", "--heartbeat-interval", "1", "--cancel-grace", "1")


@pytest.fixture
def stack_settings() -> StackSettings:
    """Room for the receive a stop costs when it races a long poll under way (the message
    comes straight back), besides the dying worker's and the healthy one's."""
    return e2e_settings(jobs_max_receive_count=4)


def test_a_worker_whose_instance_watcher_dies_releases_its_job_and_exits_70(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    assert stack.clients and stack.config and stack.imds
    sfn, sqs, config = stack.clients.sfn, stack.clients.sqs, stack.config
    process = workers("--command", job_script(tmp_path), "--instance-handling", "on", *FAST)
    job = {"marks": str(tmp_path), "mode": "hang"}
    arn = start(sfn, config.state_machine_arn, [job])
    assert eventually(lambda: list(tmp_path.glob("*.started")), timeout_s=20)
    stack.imds.spot_notice = {"action": "terminate", "time": 1_700_000_000}  # type: ignore[dict-item]
    began = time.monotonic()
    assert process.wait(timeout=15) == EXIT_THREAD_DIED
    assert time.monotonic() - began < 5 + 5  # the watcher's poll, then a few seconds
    log = (tmp_path / "worker-0.log").read_text()
    assert "thread instance-watcher died: AttributeError" in log
    assert eventually(lambda: visible(sqs, config.jobs_queue_url) == 1, timeout_s=2)

    # Not lost: a healthy worker (this one echoes its input) completes the job.
    stack.imds.spot_notice = None
    workers("--command", "cat", *FAST)
    described = wait_for_execution(sfn, arn, timeout_s=30)
    assert described["status"] == "SUCCEEDED", described
    [entry] = json.loads(described["output"])
    assert entry["status"] == "SUCCEEDED"
    assert_queues_empty(stack)
