"""A worker holds at most one thread per running job, plus a constant (issue 21, item 6): no
timer thread per job for deadlines, no reader threads per command (one selector each).
systemd's default TasksMax is 15 % of pid_max; a worker that needed two threads per job hit it
near 1,000 running jobs."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bridge.aws import Clients
from bridge.contract import encode
from consumers.command import CommandRunner
from consumers.runner import PythonRunner, Runner
from consumers.worker import Worker
from tests.support.messages import make_job
from tests.support.polling import eventually
from tests.support.worker import settings

JOBS = 40
#: The worker's own threads: the loop, receiver, keep-alive and its heartbeat pool (8), result
#: sender, deadline scheduler, with room for one more.
WORKER_THREADS = 14


@pytest.mark.parametrize("kind", ["handler", "command"])
def test_forty_running_jobs_hold_at_most_one_thread_each(
    aws: Clients, stack: dict[str, str], kind: str
) -> None:
    def blocked(data: Any, job: Any, context: Any) -> Any:
        context.wait(60)  # like a long job: stops only when asked
        return data

    runner: Runner = PythonRunner(blocked) if kind == "handler" else CommandRunner("sleep 60")
    for n in range(JOBS):
        job = make_job(job_id=f"exec-{n}/RunJob/0/0", execution_arn=f"arn:exec-{n}", input=n)
        aws.sqs.send_message(QueueUrl=stack["jobs_queue_url"], MessageBody=encode(job))
    worker = Worker(
        aws.sqs,
        aws.sfn,
        settings(stack, concurrency=JOBS, job_timeout_s=120, heartbeat_interval_s=3600),
        runner,
    )
    before = threading.active_count()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert eventually(lambda: worker.table.running == JOBS, timeout_s=20)
        held = threading.active_count() - before
        assert held <= JOBS + WORKER_THREADS, f"{held} threads for {JOBS} running jobs"
    finally:
        worker.request_stop()
        worker.request_stop()  # the second stop cancels the jobs and hands them back
        thread.join(timeout=20)
    assert not thread.is_alive()
