"""Results are never thrown away (issue 18, item 4), against moto in-process: a result the results
queue refuses (here: the queue is deleted) is spooled on disk, its job held and not run again,
and delivered once the queue is back, in the same run or after a restart on the same host."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.aws import Clients
from bridge.contract import encode, parse_result
from consumers import held_results
from consumers.health import HealthServer
from consumers.jobs import JobState
from consumers.runner import PythonRunner
from consumers.spool import REJECTED_DIR, Spool
from consumers.worker import Worker
from tests.support.aws import depth, receive_all, start
from tests.support.polling import eventually, visible
from tests.support.worker import settings


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spooled results retried every 0.2 s (doubling up to 1 s), not 1 s up to a minute."""
    monkeypatch.setattr(held_results, "SPOOL_RETRY_FIRST_S", 0.2)
    monkeypatch.setattr(held_results, "SPOOL_RETRY_MAX_S", 1.0)


class Runs:
    """A handler that counts its runs per job id."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_job: dict[str, int] = {}

    def __call__(self, data: Any, job: Any) -> Any:
        with self.lock:
            self.by_job[job.job_id] = self.by_job.get(job.job_id, 0) + 1
        return {"done": job.job_id}

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.by_job.values())


class Counts:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def __call__(self, name: str, value: float) -> None:
        self.values[name] = self.values.get(name, 0) + value


def put_jobs(aws: Clients, stack: dict[str, str], count: int) -> None:
    """An execution of ``count`` jobs (real task tokens: a stale check finds them open), once
    the job messages are on the jobs queue."""
    start(aws.sfn, stack["state_machine_arn"], [{"n": n} for n in range(count)])
    assert eventually(lambda: depth(aws.sqs, stack["jobs_queue_url"]) == count, timeout_s=10)


def no_token_in(records: list[logging.LogRecord], messages: list[dict[str, Any]]) -> bool:
    tokens = [parse_result(m["Body"]).token for m in messages]
    assert tokens and all(len(t) > 20 for t in tokens)
    return not any(t in r.getMessage() for r in records for t in tokens)


def delete_results_queue(aws: Clients, stack: dict[str, str]) -> str:
    url = stack["results_queue_url"]
    aws.sqs.delete_queue(QueueUrl=url)
    return url.rsplit("/", 1)[1]


def recreate_results_queue(aws: Clients, stack: dict[str, str], name: str) -> None:
    assert aws.sqs.create_queue(QueueName=name)["QueueUrl"] == stack["results_queue_url"]


def spool_files(spool: Spool) -> list[str]:
    return sorted(p.name for p in spool.directory.glob("*.json"))


@contextmanager
def started(worker: Worker, *, abandon: bool = False) -> Iterator[threading.Thread]:
    """Run ``worker`` in a thread; on exit stop it (``abandon``: at once, as a second signal
    or a crash would) and check it stopped."""
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        worker.request_stop()
        if abandon:
            worker.request_stop()
        thread.join(timeout=20)
        assert not thread.is_alive(), "worker did not stop"


def health(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow  # over 2.5 s: the full suite (make test stays under 3 min)
def test_results_spool_while_the_results_queue_is_gone_and_go_out_when_it_is_back(
    aws: Clients, stack: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = delete_results_queue(aws, stack)
    put_jobs(aws, stack, 3)
    runs, counts = Runs(), Counts()
    spool = Spool(tmp_path / "spool")
    worker = Worker(
        aws.sqs,
        aws.sfn,
        settings(stack, concurrency=2, drain_timeout_s=5),
        PythonRunner(runs),
        count=counts,
        spool=spool,
    )
    with caplog.at_level(logging.INFO), started(worker), HealthServer(0, worker.status) as server:
        assert eventually(lambda: len(spool_files(spool)) == 2, timeout_s=10)
        # Both slots hold a spooled result: the third job is not even received.
        assert not eventually(lambda: runs.total > 2, timeout_s=1.5)
        assert visible(aws.sqs, stack["jobs_queue_url"]) == 1
        assert depth(aws.sqs, stack["jobs_queue_url"]) == 3  # two held, hidden, not deleted
        assert [a.state for a in worker.table.snapshot()] == [JobState.SENDING] * 2
        code, status = health(server.url)
        assert code == 200 and status["state"] == "ready"
        assert status["results"]["spooled"] == 2
        assert "NonExistentQueue" in status["results"]["error"]
        assert status["degraded"].startswith("2 results not sent")

        recreate_results_queue(aws, stack, name)
        delivered = receive_all(aws.sqs, stack["results_queue_url"], 3, timeout_s=15)
        assert eventually(lambda: depth(aws.sqs, stack["jobs_queue_url"]) == 0, timeout_s=10)
        assert eventually(lambda: "degraded" not in worker.status(), timeout_s=5)
        assert worker.status()["results"]["spooled"] == 0
    job_ids = sorted(parse_result(m["Body"]).job_id for m in delivered)
    assert len(set(job_ids)) == 3
    assert runs.by_job == dict.fromkeys(job_ids, 1)  # each ran exactly once
    assert spool_files(spool) == []
    assert counts.values["results_spooled"] == counts.values["results_unspooled"] == 2
    assert worker.completed == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "results" in r.name]
    # One line when results start being refused, one when they flow again: not one per retry.
    assert [r.getMessage().split(":")[0] for r in warnings] == [
        "the results queue refuses results (AWS.SimpleQueueService.NonExistentQueue)",
        "the results queue takes results again",
    ]
    assert no_token_in(caplog.records, delivered)


def run_until_spooled(
    aws: Clients, stack: dict[str, str], spool: Spool, runs: Runs
) -> dict[str, Any]:
    """A worker runs one job while the results queue is gone, spools its result and stops at
    once (a second stop, as for a crash); returns the job message's receipt handle and job."""
    worker = Worker(
        aws.sqs, aws.sfn, settings(stack, concurrency=1), PythonRunner(runs), spool=spool
    )
    with started(worker, abandon=True):
        assert eventually(lambda: len(spool_files(spool)) == 1, timeout_s=10)
        [active] = worker.table.snapshot()
    assert runs.total == 1
    return {"ReceiptHandle": active.receipt_handle, "job": active.job}


def test_a_restarted_worker_sends_the_spooled_result_and_never_runs_its_job_again(
    aws: Clients, stack: dict[str, str], tmp_path: Path
) -> None:
    """The results queue is back before the restart, which came too late to take the job
    message back: the result goes out at start; the job message, when it reappears, is deleted
    and not run."""
    name = delete_results_queue(aws, stack)
    put_jobs(aws, stack, 1)
    runs = Runs()
    held = run_until_spooled(aws, stack, Spool(tmp_path), runs)
    job_id = held["job"].job_id
    recreate_results_queue(aws, stack, name)
    not_in_flight_once(aws.sqs)

    spool = Spool(tmp_path)  # the same directory, a new process
    worker = Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(runs), spool=spool)
    with started(worker):
        [message] = receive_all(aws.sqs, stack["results_queue_url"], 1, timeout_s=10)
        assert parse_result(message["Body"]).job_id == job_id
        assert worker.status()["results"]["awaiting_job_message"] == 1
        # The old process's visibility lapses: the job message comes back to the new one.
        aws.sqs.change_message_visibility(
            QueueUrl=stack["jobs_queue_url"],
            ReceiptHandle=held["ReceiptHandle"],
            VisibilityTimeout=0,
        )
        assert eventually(lambda: depth(aws.sqs, stack["jobs_queue_url"]) == 0, timeout_s=10)
        assert eventually(lambda: spool_files(spool) == [], timeout_s=5)
    assert runs.total == 1
    assert depth(aws.sqs, stack["results_queue_url"]) == 1  # sent once, not again


def not_in_flight_once(sqs: Any) -> None:
    """The next ChangeMessageVisibilityBatch answers as SQS does for a message that is no
    longer in flight (moto takes any handle it ever issued)."""
    calls: list[int] = []

    def refuse(**_kwargs: Any) -> None:
        if not calls:
            calls.append(1)
            raise ClientError(
                {
                    "Error": {"Code": "AWS.SimpleQueueService.MessageNotInflight"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "ChangeMessageVisibilityBatch",
            )

    sqs.meta.events.register("before-call.sqs.ChangeMessageVisibilityBatch", refuse)


def test_a_redelivered_job_whose_result_is_spooled_is_held_not_run_until_the_queue_is_back(
    aws: Clients, stack: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The results queue is still gone at the restart, which came too late to take the job
    message back: the message comes back to the new worker, which holds it without running it
    (a copy with the same task is held too), and sends the result and deletes both once the
    queue is back. A garbage file beside the result is moved aside and changes nothing."""
    name = delete_results_queue(aws, stack)
    put_jobs(aws, stack, 1)
    runs = Runs()
    held = run_until_spooled(aws, stack, Spool(tmp_path), runs)
    job_id = held["job"].job_id
    (tmp_path / "0c4e7a7e-0000-4000-8000-000000000000.json").write_bytes(b"[" * 100_000)
    copy = encode(held["job"])  # the same task sent again (another message id)
    aws.sqs.send_message(QueueUrl=stack["jobs_queue_url"], MessageBody=copy)

    aws.sqs.change_message_visibility(  # the old process's visibility lapsed
        QueueUrl=stack["jobs_queue_url"], ReceiptHandle=held["ReceiptHandle"], VisibilityTimeout=0
    )
    not_in_flight_once(aws.sqs)

    spool = Spool(tmp_path)
    worker = Worker(
        aws.sqs, aws.sfn, settings(stack, concurrency=2), PythonRunner(runs), spool=spool
    )
    with caplog.at_level(logging.INFO), started(worker):
        assert eventually(lambda: visible(aws.sqs, stack["jobs_queue_url"]) == 0, timeout_s=10)
        assert worker.status()["results"]["spooled"] == 1
        assert not eventually(lambda: runs.total > 1, timeout_s=1)
        assert depth(aws.sqs, stack["jobs_queue_url"]) == 2  # both held, hidden

        recreate_results_queue(aws, stack, name)
        [message] = receive_all(aws.sqs, stack["results_queue_url"], 1, timeout_s=10)
        assert eventually(lambda: depth(aws.sqs, stack["jobs_queue_url"]) == 0, timeout_s=10)
        assert eventually(lambda: spool_files(spool) == [], timeout_s=5)
    assert parse_result(message["Body"]).job_id == job_id
    assert runs.total == 1
    assert len(list((tmp_path / REJECTED_DIR).iterdir())) == 1
    assert sum("is answered by a spooled result" in r.getMessage() for r in caplog.records) == 2
    assert sum("could not take back 1 job messages" in r.getMessage() for r in caplog.records) == 1
    assert no_token_in(caplog.records, [message])


def test_a_drain_keeps_trying_until_its_deadline_then_leaves_the_result_on_disk(
    aws: Clients, stack: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    delete_results_queue(aws, stack)
    put_jobs(aws, stack, 1)
    runs, spool = Runs(), Spool(tmp_path)
    worker = Worker(
        aws.sqs,
        aws.sfn,
        settings(stack, concurrency=1, drain_timeout_s=2, cancel_grace_s=0.1),
        PythonRunner(runs),
        spool=spool,
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    with caplog.at_level(logging.INFO):
        thread.start()
        assert eventually(lambda: worker.sender.spooled == 1, timeout_s=10)
        worker.request_stop()
        thread.join(timeout=1)
        assert thread.is_alive()  # still draining: the host may be going away, keep trying
        thread.join(timeout=15)
    assert not thread.is_alive() and not worker.abandoned and worker.failure is None
    assert len(spool_files(spool)) == 1 and runs.total == 1
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 1  # not released: it stays answered
    assert any("stay spooled in" in r.getMessage() for r in caplog.records)


@pytest.mark.slow  # over 2.5 s: the full suite (make test stays under 3 min)
def test_a_worker_restarted_in_time_takes_its_job_message_back_so_no_other_worker_runs_it(
    aws: Clients, stack: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by the chaos campaign: the restarted worker sent the spooled result but did not
    hold the job message, so another worker received it when its visibility lapsed, found the
    task still open and ran the job again. The spool keeps the message's receipt handle; the
    new worker hides the message again with it at start."""
    fast = {"visibility_timeout_s": 2, "heartbeat_interval_s": 1}
    name = delete_results_queue(aws, stack)
    put_jobs(aws, stack, 1)
    runs = Runs()
    first = Worker(
        aws.sqs, aws.sfn, settings(stack, concurrency=1, **fast), PythonRunner(runs),
        spool=Spool(tmp_path),
    )  # fmt: skip
    with started(first, abandon=True):
        assert eventually(lambda: len(spool_files(Spool(tmp_path))) == 1, timeout_s=10)
    spool = Spool(tmp_path)
    restarted = Worker(
        aws.sqs, aws.sfn, settings(stack, concurrency=1, **fast), PythonRunner(runs), spool=spool
    )
    other = Worker(aws.sqs, aws.sfn, settings(stack, concurrency=1, **fast), PythonRunner(runs))
    with caplog.at_level(logging.INFO), started(restarted), started(other):
        # Well past the visibility timeout: the keep-alive of the restarted worker holds it.
        assert not eventually(lambda: runs.total > 1, timeout_s=2.5)
        assert visible(aws.sqs, stack["jobs_queue_url"]) == 0
        recreate_results_queue(aws, stack, name)
        [message] = receive_all(aws.sqs, stack["results_queue_url"], 1, timeout_s=10)
        assert eventually(lambda: depth(aws.sqs, stack["jobs_queue_url"]) == 0, timeout_s=10)
        assert eventually(lambda: spool_files(spool) == [], timeout_s=5)
    assert runs.total == 1
    assert not any("no longer held" in r.getMessage() for r in caplog.records)
    assert no_token_in(caplog.records, [message])


def test_a_spooled_result_whose_execution_is_stopped_is_dropped_and_frees_its_slot(
    aws: Clients, stack: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The keep-alive's heartbeat tells the task is over: the result can never be taken, so
    holding it (and its slot) until the queue is back would serve nothing."""
    delete_results_queue(aws, stack)
    arn = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    runs, spool = Runs(), Spool(tmp_path)
    worker = Worker(
        aws.sqs, aws.sfn, settings(stack, concurrency=1, heartbeat_interval_s=1),
        PythonRunner(runs), spool=spool,
    )  # fmt: skip
    with caplog.at_level(logging.INFO), started(worker):
        assert eventually(lambda: len(spool_files(spool)) == 1, timeout_s=10)
        aws.sfn.stop_execution(executionArn=arn)
        assert eventually(lambda: worker.table.busy == 0, timeout_s=10)
        assert spool_files(spool) == [] and worker.sender.spooled == 0
        assert eventually(lambda: depth(aws.sqs, stack["jobs_queue_url"]) == 0, timeout_s=5)
    assert runs.total == 1
    assert any("is over (its execution stopped" in r.getMessage() for r in caplog.records)
