"""Found by the chaos campaign (issue 18, item 8): a worker (re)started while the results queue is
missing refused to start, so the results it spooled before its restart stayed on disk. Now it
names the queue in a warning and starts.

At ``20aa26c`` the worker checked the results queue at start, like the jobs queue, and exits 2
("results queue ... cannot be used: AWS.SimpleQueueService.NonExistentQueue"). A worker SIGKILLed
(the OOM killer) while the queue was missing, deleted, or denied then could not come back: systemd
restarts it again and again (and gives up after its start limit), the spool it holds is neither
sent nor are its jobs' messages held, and those jobs run again elsewhere. Issue 18 asks that the
spool survive a restart and go out when the queue is back. In the campaign
(``callback-bridge chaos --seed 2026`` at e9e3520, the results queue missing for 60 s): 15
consumer exits with status 2 while the queue was missing, 33 restarts.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bridge.chaos.proxy import FaultProxy, FaultRates
from bridge.local_stack import LocalStack
from tests.support.polling import eventually
from tests.support.stack import WorkerFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_worker_starts_while_the_results_queue_is_missing(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    assert stack.config
    results = (stack.config.results_queue_url or "").rstrip("/").rsplit("/", 1)[-1]
    proxy = FaultProxy(
        stack.server.endpoint_url,
        random.Random(0),
        FaultRates(throttle=0, error5xx=0, lost_response=0),
        results_queue_name=results,
    ).start()
    try:
        proxy.missing(600)  # the results queue "does not exist" for the worker
        worker = workers("--handler", "bridge.chaos.work:run", "--state-dir",
                         str(tmp_path / "state"), "--endpoint-url", proxy.endpoint_url)  # fmt: skip
        log = tmp_path / "worker-0.log"
        eventually(lambda: worker.poll() is not None or "polling" in log.read_text(), timeout_s=30)
        assert worker.poll() is None, log.read_text()[-2000:]
    finally:
        proxy.stop()
