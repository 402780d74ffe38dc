"""Found by the chaos campaign (issue 18, item 8): a daemon started by a handler running in the
worker's thread (the default ``--isolation thread``, every first delivery) outlives its job.

The worker is the child subreaper of its jobs, so the daemon re-parents to it, but it was swept
only by ``consumers.process.run_process`` (commands and isolated handlers). The campaign's
``daemons_escaped`` counted it (``callback-bridge chaos --quick --seed 7``: a daemon of job
``chaos-007-.../RunJob/1/0``, parent the consumer, alive after every job had ended). Now, when
the last in-thread handler returns, the worker stops its unmarked children
(``consumers.reaper.sweep_unmarked``).
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from bridge.chaos.checks import live_daemons
from bridge.local_stack import LocalStack
from tests.support.aws import start
from tests.support.polling import eventually, wait_for_execution
from tests.support.stack import WorkerFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_daemon_started_by_an_in_thread_handler_does_not_outlive_its_job(
    stack: LocalStack, workers: WorkerFactory
) -> None:
    assert stack.clients and stack.config and stack.config.state_machine_arn
    sfn, machine = stack.clients.sfn, stack.config.state_machine_arn
    worker = workers("--handler", "bridge.chaos.work:run", "--concurrency", "2",
                     "--visibility-timeout", "4", "--heartbeat-interval", "1")  # fmt: skip
    name = "thread-daemon"
    try:
        arn = start(sfn, machine, [{"mode": "daemon", "sleep_ms": 50, "n": 0}], name)
        described = wait_for_execution(sfn, arn, timeout_s=60)
        assert described["status"] == "SUCCEEDED", described
        (entry,) = json.loads(described["output"])
        assert entry["status"] == "SUCCEEDED", entry
        assert worker.poll() is None
        # The job is over and the worker idle: its daemon must be gone.
        assert eventually(lambda: not live_daemons([name]), timeout_s=10), live_daemons([name])
    finally:
        for daemon in live_daemons([name]):
            os.kill(daemon.pid, signal.SIGKILL)
