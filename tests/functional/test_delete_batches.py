"""Answered jobs are deleted in batches over a window (consumers.deletes), on the real worker
against moto in-process: jobs finishing apart share DeleteMessageBatch requests, a slot is free
as soon as its result is sent, a stop leaves nothing in flight, and nothing runs twice."""

from __future__ import annotations

import threading
import time
from typing import Any

from bridge.aws import Clients
from bridge.contract import encode, parse_result
from consumers.jobs import JobState
from consumers.runner import PythonRunner
from consumers.worker import Worker
from tests.support.aws import depth, receive_all
from tests.support.messages import make_job
from tests.support.polling import eventually
from tests.support.worker import running, settings


def in_flight(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def record_deletes(sqs: Any) -> list[list[str]]:
    """The receipt handles of every DeleteMessageBatch the client makes, per request."""
    requests: list[list[str]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        requests.append([entry["ReceiptHandle"] for entry in params["Entries"]])

    sqs.meta.events.register("provide-client-params.sqs.DeleteMessageBatch", record)
    return requests


def queue_jobs(aws: Clients, stack: dict[str, str], count: int) -> None:
    for n in range(count):
        aws.sqs.send_message(
            QueueUrl=stack["jobs_queue_url"],
            MessageBody=encode(make_job(job_id=f"run-1/j/{n}", input={"n": n})),
        )


def test_jobs_finishing_apart_share_delete_batches_and_a_stop_flushes_the_rest(
    aws: Clients, stack: dict[str, str]
) -> None:
    """Twelve jobs finishing 0.1 s apart (results go out in several batches): the first ten
    deletes go in one request once ten are pending, the last two wait for their window and are
    flushed by the stop; every slot is free before the deletes; each job ran once."""
    runs: list[int] = []
    lock = threading.Lock()

    def spread(data: Any, job: Any) -> Any:
        time.sleep(0.1 * data["n"])
        with lock:
            runs.append(data["n"])
        return data

    queue_jobs(aws, stack, 12)
    deletes = record_deletes(aws.sqs)
    worker = Worker(
        aws.sqs, aws.sfn, settings(stack, concurrency=12, delete_window_s=30), PythonRunner(spread)
    )
    with running(worker):
        results = receive_all(aws.sqs, stack["results_queue_url"], 12)
        assert eventually(lambda: [len(r) for r in deletes] == [10], timeout_s=5)
        # The last two are answered and their slots free, their messages still hidden.
        assert eventually(lambda: worker.table.busy == 0, timeout_s=5)
        assert eventually(lambda: in_flight(aws.sqs, stack["jobs_queue_url"]) == 2, timeout_s=5)
        assert {a.state for a in worker.table.snapshot()} == {JobState.DELETING}
        assert [len(r) for r in deletes] == [10]
    assert [len(r) for r in deletes] == [10, 2]
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 0  # visible + in flight
    assert sorted(runs) == list(range(12))
    assert sorted(parse_result(m["Body"]).output["n"] for m in results) == list(range(12))
    assert worker.table.completed == 12


def test_a_slot_is_free_while_its_delete_waits_so_the_next_job_runs(
    aws: Clients, stack: dict[str, str]
) -> None:
    """One slot, two jobs: the second runs while the first's message awaits its delete, and
    both messages go in one DeleteMessageBatch."""
    queue_jobs(aws, stack, 2)
    deletes = record_deletes(aws.sqs)
    worker = Worker(
        aws.sqs,
        aws.sfn,
        settings(stack, concurrency=1, delete_window_s=30),
        PythonRunner(lambda data, job: data),
    )
    with running(worker):
        assert len(receive_all(aws.sqs, stack["results_queue_url"], 2)) == 2
        assert deletes == []
    assert [len(r) for r in deletes] == [2]
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 0


#: A window a fleet opts into (--delete-window).
WINDOW_S = 30.0


def test_a_stop_does_not_wait_for_the_window(aws: Clients, stack: dict[str, str]) -> None:
    """With a window of 30 s a drained stop deletes what is pending at once."""
    queue_jobs(aws, stack, 1)
    worker = Worker(
        aws.sqs,
        aws.sfn,
        settings(stack, delete_window_s=WINDOW_S),
        PythonRunner(lambda data, job: data),
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert len(receive_all(aws.sqs, stack["results_queue_url"], 1)) == 1
        assert eventually(lambda: worker.table.busy == 0, timeout_s=5)
        assert in_flight(aws.sqs, stack["jobs_queue_url"]) == 1  # answered, delete pending
    finally:
        stopped_at = time.monotonic()
        worker.request_stop()
        thread.join(timeout=20)
    assert not thread.is_alive()
    assert time.monotonic() - stopped_at < WINDOW_S
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 0


def test_a_message_delivered_again_while_its_delete_waits_is_not_run_and_is_deleted(
    aws: Clients, stack: dict[str, str]
) -> None:
    """Its visibility lapsed after the result went out: the worker holds it still, runs
    nothing, and deletes it by the newest receipt handle (SQS ignores older ones)."""
    runs: list[str] = []
    queue_jobs(aws, stack, 1)
    deletes = record_deletes(aws.sqs)
    worker = Worker(
        aws.sqs,
        aws.sfn,
        settings(stack, delete_window_s=30),
        PythonRunner(lambda data, job: runs.append(job.job_id)),
    )
    with running(worker):
        assert len(receive_all(aws.sqs, stack["results_queue_url"], 1)) == 1
        assert eventually(lambda: worker.table.busy == 0, timeout_s=5)
        [active] = worker.table.snapshot()
        assert active.state is JobState.DELETING
        first = active.receipt_handle
        aws.sqs.change_message_visibility(  # as if its visibility lapsed
            QueueUrl=stack["jobs_queue_url"], ReceiptHandle=first, VisibilityTimeout=0
        )
        assert eventually(lambda: active.receipt_handle != first, timeout_s=5)
        time.sleep(0.3)  # a second run, if any, would start now
    assert runs == ["run-1/j/0"]
    assert deletes == [[active.receipt_handle]]
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 0
    assert worker.failure is None
