"""A real worker process whose internal thread dies: it exits 70, and its job is not lost.

The fault comes from a handler, which in thread mode runs in the worker's own process and can
break it: it replaces the keep-alive's heartbeat with one that raises. (The faults found from
outside the process, a receiver killed by a crafted message and an instance watcher killed by
a spot notice with a numeric time, are gone; every thread's death is also covered, with
injected faults, in ``tests/functional/test_thread_death.py``.)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bridge.local_stack import LocalStack, StackSettings
from consumers.threads import EXIT_THREAD_DIED
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


def test_a_worker_whose_keepalive_dies_releases_its_job_and_exits_70(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    assert stack.clients and stack.config
    sfn, sqs, config = stack.clients.sfn, stack.clients.sqs, stack.config
    process = workers("--handler", "tests.e2e.handlers:break_the_keepalive", *FAST)
    arn = start(sfn, config.state_machine_arn or "", [{"sleep_s": 30}])
    began = time.monotonic()
    assert process.wait(timeout=20) == EXIT_THREAD_DIED
    log = (tmp_path / "worker-0.log").read_text()
    assert "thread keepalive died: RuntimeError" in log
    assert eventually(lambda: visible(sqs, config.jobs_queue_url or "") == 1, timeout_s=2)
    assert time.monotonic() - began < 15

    # Not lost: a healthy worker (this one echoes its input) completes the job.
    workers("--command", "cat", *FAST)
    described = wait_for_execution(sfn, arn, timeout_s=30)
    assert described["status"] == "SUCCEEDED", described
    [entry] = json.loads(described["output"])
    assert entry == {"status": "SUCCEEDED", "output": {"sleep_s": 30}}
    assert_queues_empty(stack)
