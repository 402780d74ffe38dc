"""Heartbeats per execution in a real worker (moto in-process): the jobs of one execution share
one heartbeat per interval, and stopping the execution still cancels every one of them."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from bridge.aws import Clients
from consumers.context import JobContext
from consumers.runner import PythonRunner
from consumers.worker import Worker
from tests.support.aws import start
from tests.support.polling import eventually
from tests.support.worker import running, settings

JOBS = 4


@pytest.mark.slow  # about 6 s: a few heartbeat intervals of 1 s, then the stop
def test_jobs_of_one_execution_share_heartbeats_and_all_stop_with_it(
    aws: Clients, stack: dict[str, str]
) -> None:
    beats: list[float] = []
    aws.sfn.meta.events.register(
        "before-call.states.SendTaskHeartbeat", lambda **_: beats.append(time.monotonic())
    )
    lock, reasons = threading.Lock(), []

    def long_job(data: Any, job: Any, context: JobContext) -> Any:
        context.wait(60)
        with lock:
            reasons.append(context.reason)
        return data

    arn = start(aws.sfn, stack["state_machine_arn"], [{"n": n} for n in range(JOBS)])
    worker = Worker(
        aws.sqs,
        aws.sfn,
        settings(stack, concurrency=JOBS, heartbeat_interval_s=1, stale_check_age_s=3600),
        PythonRunner(long_job),
    )
    with running(worker):
        assert eventually(lambda: worker.table.running == JOBS, timeout_s=10)
        beats.clear()
        time.sleep(3.5)
        # Per job it would be about 4 x 3.5 = 14; per execution about 3.5.
        assert 2 <= len(beats) <= 5, f"{len(beats)} heartbeats in 3.5 s for one execution"
        aws.sfn.stop_execution(executionArn=arn)
        assert eventually(lambda: len(reasons) == JOBS, timeout_s=5)
    assert reasons == ["task-closed"] * JOBS
