"""The worker loop against moto in-process: what ends up in each queue."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from bridge.aws import Clients
from bridge.contract import encode, parse_result
from bridge.quarantine import REASON_ATTRIBUTE
from bridge.timing import TimingModel
from consumers.jobs import JobState
from consumers.runner import PythonRunner
from consumers.worker import ERROR_WORKER, Worker
from tests.support.aws import depth, receive_all, start
from tests.support.messages import make_job
from tests.support.polling import eventually, visible, wait_for_execution
from tests.support.worker import running, settings


def start_and_wait(worker: Worker, started: threading.Event) -> threading.Thread:
    """Run ``worker`` in a thread until its handler signals it has a job in hand."""
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert started.wait(10), "the worker never started the job"
    return thread


def echo(data: Any, job: Any) -> Any:
    return {"echo": data}


def test_jobs_from_an_execution_become_results_and_are_deleted(
    aws: Clients, stack: dict[str, str]
) -> None:
    start(aws.sfn, stack["state_machine_arn"], [{"n": 0}, {"n": 1, "type": "render"}])
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(echo))
    with running(worker):
        results = receive_all(aws.sqs, stack["results_queue_url"], 2)
        assert eventually(lambda: depth(aws.sqs, stack["jobs_queue_url"]) == 0, timeout_s=10)
    parsed = sorted((parse_result(m["Body"]) for m in results), key=lambda r: r.job_id)
    assert [r.outcome for r in parsed] == ["succeeded", "succeeded"]
    assert [r.output for r in parsed] == [{"echo": {"n": 0}}, {"echo": {"n": 1, "type": "render"}}]
    assert all(r.timing and r.timing.enqueued_at for r in parsed)
    assert parsed[0].worker.id == worker.identity.id


def test_malformed_job_goes_to_the_dlq_and_the_worker_carries_on(
    aws: Clients, stack: dict[str, str]
) -> None:
    aws.sqs.send_message(
        QueueUrl=stack["jobs_queue_url"],
        MessageBody='{"version": 1}',
        MessageAttributes={"trace": {"DataType": "String", "StringValue": "t-1"}},
    )
    aws.sqs.send_message(QueueUrl=stack["jobs_queue_url"], MessageBody=encode(make_job()))
    with running(Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(echo))):
        assert len(receive_all(aws.sqs, stack["results_queue_url"], 1)) == 1
        dead = receive_all(aws.sqs, stack["jobs_dlq_url"], 1)
    assert dead[0]["Body"] == '{"version": 1}'
    assert "token" in dead[0]["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert dead[0]["MessageAttributes"]["trace"]["StringValue"] == "t-1"  # the sender's kept
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 0


def test_never_runs_more_jobs_than_its_slots(aws: Clients, stack: dict[str, str]) -> None:
    lock, active, peak = threading.Lock(), [0], [0]

    def slow(data: Any, job: Any) -> Any:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.1)
        with lock:
            active[0] -= 1
        return data

    for n in range(9):
        aws.sqs.send_message(
            QueueUrl=stack["jobs_queue_url"], MessageBody=encode(make_job(job_id=f"j{n}", input=n))
        )
    with running(Worker(aws.sqs, aws.sfn, settings(stack, concurrency=3), PythonRunner(slow))):
        assert len(receive_all(aws.sqs, stack["results_queue_url"], 9)) == 9
    assert peak[0] == 3


def test_stop_drains_running_jobs(aws: Clients, stack: dict[str, str]) -> None:
    started = threading.Event()

    def slow(data: Any, job: Any) -> Any:
        started.set()
        time.sleep(0.5)
        return "done"

    aws.sqs.send_message(QueueUrl=stack["jobs_queue_url"], MessageBody=encode(make_job()))
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(slow))
    thread = start_and_wait(worker, started)
    worker.request_stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert (
        parse_result(receive_all(aws.sqs, stack["results_queue_url"], 1)[0]["Body"]).output
        == "done"
    )
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 0


def test_second_stop_hands_running_jobs_back_to_the_queue(
    aws: Clients, stack: dict[str, str]
) -> None:
    started, release = threading.Event(), threading.Event()

    def stuck(data: Any, job: Any) -> Any:
        started.set()
        release.wait(10)
        return "late"

    aws.sqs.send_message(QueueUrl=stack["jobs_queue_url"], MessageBody=encode(make_job()))
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(stuck))
    thread = start_and_wait(worker, started)
    worker.request_stop()
    worker.request_stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    visible_again = receive_all(aws.sqs, stack["jobs_queue_url"], 1, timeout_s=2)
    release.set()
    assert len(visible_again) == 1  # visible at once, not after the visibility timeout
    assert depth(aws.sqs, stack["results_queue_url"]) == 0


@pytest.mark.slow  # about 5 s: it outlasts a real visibility timeout
def test_keepalive_keeps_a_running_job_hidden_past_its_visibility_timeout(
    aws: Clients, stack: dict[str, str]
) -> None:
    from consumers.keepalive import Keepalive

    url = aws.sqs.create_queue(QueueName="short", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    aws.sqs.send_message(QueueUrl=url, MessageBody=encode(make_job()))
    message = receive_all(aws.sqs, url, 1)[0]
    timing = TimingModel(visibility_timeout_s=2, heartbeat_interval_s=600, task_timeout_s=None)
    keepalive = Keepalive(aws.sqs, aws.sfn, url, timing)
    keepalive.track(message["MessageId"], message["ReceiptHandle"], "t", "j")
    keepalive.start()
    try:
        time.sleep(4)  # twice the visibility timeout
        assert aws.sqs.receive_message(QueueUrl=url).get("Messages", []) == []
        keepalive.untrack(message["MessageId"])  # the job ended without deleting it
        assert eventually(lambda: visible(aws.sqs, url) == 1, timeout_s=6)
    finally:
        keepalive.stop()


def test_a_job_with_a_readable_token_but_a_bad_field_fails_its_task_at_once(
    aws: Clients, stack: dict[str, str]
) -> None:
    """Not left to time out: the task fails with Bridge.InvalidJob naming the field, and the
    message is in the jobs DLQ with the reason."""
    import json

    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    (message,) = receive_all(aws.sqs, stack["jobs_queue_url"], 1)
    broken = {**json.loads(message["Body"]), "map_index": -1}
    aws.sqs.delete_message(QueueUrl=stack["jobs_queue_url"], ReceiptHandle=message["ReceiptHandle"])
    aws.sqs.send_message(QueueUrl=stack["jobs_queue_url"], MessageBody=json.dumps(broken))
    with running(Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(echo))):
        described = wait_for_execution(aws.sfn, execution, timeout_s=15)
        dead = receive_all(aws.sqs, stack["jobs_dlq_url"], 1)
    assert described["status"] == "SUCCEEDED"
    (entry,) = json.loads(described["output"])
    assert (entry["status"], entry["error"]) == ("FAILED", "Bridge.InvalidJob")
    assert "map_index" in dead[0]["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 0


def test_jobs_arriving_one_by_one_share_receives(aws: Clients, stack: dict[str, str]) -> None:
    """A fan-out's jobs reach the queue one at a time; a receive that comes back short pauses
    before the next, so they share requests (each receive is a billed request) instead of
    costing one receive each."""
    receives: list[int] = []  # jobs each receive from the jobs queue returned; empty ones
    # are left out: idle long polls after the last job (more on a slow machine) share nothing

    def mark(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["queue_url"] = params.get("QueueUrl")

    def count(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get("queue_url") == stack["jobs_queue_url"] and parsed.get("Messages"):
            receives.append(len(parsed["Messages"]))

    aws.sqs.meta.events.register("before-parameter-build.sqs.ReceiveMessage", mark)
    aws.sqs.meta.events.register("after-call.sqs.ReceiveMessage", count)
    jobs = 30
    worker = Worker(
        aws.sqs, aws.sfn, settings(stack, wait_seconds=1, concurrency=jobs), PythonRunner(echo)
    )
    with running(worker):
        for n in range(jobs):
            job = make_job(job_id=f"exec-1/RunJob/{n}/0", map_index=n)
            aws.sqs.send_message(QueueUrl=stack["jobs_queue_url"], MessageBody=encode(job))
            time.sleep(0.01)
        results = receive_all(aws.sqs, stack["results_queue_url"], jobs)
    assert len(results) == jobs
    assert sum(receives) == jobs
    assert len(receives) <= jobs / 3, f"{len(receives)} receives for {jobs} jobs: {receives}"


def test_a_result_that_cannot_be_prepared_releases_the_job_and_frees_its_slot(
    aws: Clients, stack: dict[str, str]
) -> None:
    """The job ends released (back in the queue at once), never stuck half-concluded."""
    aws.sqs.send_message(QueueUrl=stack["jobs_queue_url"], MessageBody=encode(make_job()))
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(echo))
    counted: list[str] = []
    worker.count = lambda name, _value: counted.append(name)
    states: list[JobState] = []

    def broken_prepare(result: Any, oversized_output: Any = None) -> Any:
        [active] = worker.table.snapshot()
        states.append(active.state)
        raise OSError("S3 is down")

    worker.sender.prepare = broken_prepare  # type: ignore[method-assign]
    with running(worker):
        assert eventually(lambda: "jobs_released" in counted, timeout_s=10)
        assert eventually(lambda: worker.table.busy == 0, timeout_s=5)
    assert states == [JobState.FINISHED]
    assert "jobs_succeeded" not in counted
    assert depth(aws.sqs, stack["results_queue_url"]) == 0
    assert visible(aws.sqs, stack["jobs_queue_url"]) == 1  # released: visible again at once


def test_a_runner_that_fails_reports_bridge_worker_error(
    aws: Clients, stack: dict[str, str]
) -> None:
    class Broken:
        def run(self, job: Any, context: Any) -> Any:
            raise RuntimeError("runner bug")

    aws.sqs.send_message(QueueUrl=stack["jobs_queue_url"], MessageBody=encode(make_job()))
    worker = Worker(aws.sqs, aws.sfn, settings(stack), Broken())
    with running(worker):
        [message] = receive_all(aws.sqs, stack["results_queue_url"], 1)
        assert eventually(lambda: worker.table.busy == 0, timeout_s=5)
    result = parse_result(message["Body"])
    assert (result.outcome, result.error) == ("failed", ERROR_WORKER)
    assert "runner bug" in (result.cause or "")
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 0


def test_a_message_delivered_again_while_its_job_runs_is_not_run_twice(
    aws: Clients, stack: dict[str, str]
) -> None:
    """SQS delivers at least once, and a held message whose visibility lapsed (a paused
    worker) comes back to whoever asks, this worker too: one run, and the worker lives on."""
    runs, started, release = [], threading.Event(), threading.Event()

    def held(data: Any, job: Any) -> Any:
        runs.append(job.job_id)
        started.set()
        release.wait(10)
        return data

    start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(held))
    with running(worker):
        assert started.wait(10)
        [active] = worker.table.snapshot()
        first_handle = active.receipt_handle
        aws.sqs.change_message_visibility(  # as if its visibility lapsed
            QueueUrl=stack["jobs_queue_url"], ReceiptHandle=first_handle, VisibilityTimeout=0
        )
        assert eventually(lambda: active.receipt_handle != first_handle, timeout_s=10)
        release.set()
        [result] = receive_all(aws.sqs, stack["results_queue_url"], 1)
        assert eventually(lambda: depth(aws.sqs, stack["jobs_queue_url"]) == 0, timeout_s=10)
        assert worker.failure is None
    assert runs == ["run-1/RunJob/0/0"]
    assert parse_result(result["Body"]).output == {"n": 0}
