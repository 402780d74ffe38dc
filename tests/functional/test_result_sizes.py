"""Result sizes against moto in-process, with the queues' MaximumMessageSize as Terraform sets
it: large outputs by claim check, batches split by bytes, one bad entry never re-running its
neighbours."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from bridge.aws import Clients
from bridge.claim_check import (
    ClaimCheck,
    ClaimCheckError,
    Pointer,
    fetch,
    is_pointer,
    queue_limit,
)
from bridge.contract import CLIP_MARKER, Result, encode, parse_result
from bridge.local_stack.resources import StackSettings, create_resources
from consumers.results import LINGER_S, MAX_BATCH_BYTES, Pending, ResultSender
from consumers.runner import PythonRunner
from consumers.worker import Worker
from tests.support.aws import depth, embedded_moto, receive_all
from tests.support.messages import make_job, make_result
from tests.support.worker import running, settings

ROOT = Path(__file__).resolve().parents[2]
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:callback-bridge:run-1"
TOKEN = "t" * 1500  # real task tokens run to hundreds of characters and more


@pytest.fixture
def aws() -> Iterator[Clients]:
    with embedded_moto():
        yield Clients(
            sqs=boto3.client("sqs"), sfn=boto3.client("stepfunctions"), s3=boto3.client("s3")
        )


@pytest.fixture
def stack(aws: Clients) -> dict[str, str]:
    return create_resources(aws, StackSettings(results_visibility_timeout_s=1))


class Outcomes:
    """The sender's on_done calls: message id -> delivered."""

    def __init__(self) -> None:
        self.done: dict[str, bool] = {}

    def __call__(self, message_id: str, delivered: bool) -> None:
        assert message_id not in self.done, f"{message_id} reported twice"
        self.done[message_id] = delivered


def received_jobs(aws: Clients, stack: dict[str, str], count: int) -> list[dict[str, Any]]:
    """Put ``count`` jobs on the jobs queue and hold them, as a worker does."""
    for n in range(count):
        aws.sqs.send_message(
            QueueUrl=stack["jobs_queue_url"], MessageBody=encode(make_job(job_id=f"run-1/j/{n}"))
        )
    messages = receive_all(aws.sqs, stack["jobs_queue_url"], count)
    assert len(messages) == count
    return messages


def results_for(messages: list[dict[str, Any]], outputs: list[Any]) -> list[Pending]:
    return [
        Pending(
            make_result(job_id=f"run-1/j/{n}", output=output, token=TOKEN, execution_arn=EXECUTION),
            message["MessageId"],
            message["ReceiptHandle"],
        )
        for n, (message, output) in enumerate(zip(messages, outputs, strict=True))
    ]


def sent_results(aws: Clients, url: str, count: int) -> dict[str, Result]:
    return {
        r.job_id: r for r in (parse_result(m["Body"]) for m in receive_all(aws.sqs, url, count))
    }


def count_batches(sqs: Any) -> list[int]:
    """Record the total body bytes of every SendMessageBatch the client makes."""
    totals: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        totals.append(sum(len(e["MessageBody"].encode()) for e in params["Entries"]))

    sqs.meta.events.register("provide-client-params.sqs.SendMessageBatch", record)
    return totals


def test_embedded_queues_have_terraforms_maximum_message_size(
    aws: Clients, stack: dict[str, str]
) -> None:
    variables = (ROOT / "infra/modules/queues/variables.tf").read_text()
    block = variables[variables.index('variable "max_message_size"') :]
    terraform = int(re.search(r"default\s*=\s*(\d+)", block).group(1))  # type: ignore[union-attr]
    urls = [url for key, url in stack.items() if key.endswith("_url")]
    assert len(urls) == 6  # jobs, results, their DLQs and dead-letter archives
    for url in urls:
        attributes = aws.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["MaximumMessageSize"]
        )["Attributes"]
        assert int(attributes["MaximumMessageSize"]) == terraform == 262_144, url
    assert stack["claim_check_bucket"] == "callback-bridge-claim-checks"


def test_a_262000_byte_output_next_to_small_ones_all_delivered_none_rerun(
    aws: Clients, stack: dict[str, str]
) -> None:
    big = "x" * 261_998  # 262,000 bytes as JSON: Step Functions would take it, the queue not
    messages = received_jobs(aws, stack, 4)
    batch = results_for(messages, [{"n": 0}, big, {"n": 2}, {"n": 3}])
    with pytest.raises(aws.sqs.exceptions.ClientError, match="shorter than 262144"):
        aws.sqs.send_message(
            QueueUrl=stack["results_queue_url"], MessageBody=encode(batch[1].result)
        )
    done = Outcomes()
    claim_check = ClaimCheck(aws.s3, stack["claim_check_bucket"])
    sender = ResultSender(
        aws.sqs, stack["results_queue_url"], stack["jobs_queue_url"], done, claim_check=claim_check
    )
    for pending in batch:
        pending.result = sender.prepare(pending.result)
    sender.send(batch)  # one batch, as the sender thread would gather it
    sender.flush_deletes()  # the answered jobs' batch of deletes, due within its window

    assert done.done == {m["MessageId"]: True for m in messages}
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 0  # every job answered and deleted
    results = sent_results(aws, stack["results_queue_url"], 4)
    assert [results[f"run-1/j/{n}"].output for n in (0, 2, 3)] == [{"n": 0}, {"n": 2}, {"n": 3}]
    pointer = results["run-1/j/1"].output
    assert results["run-1/j/1"].outcome == "succeeded" and is_pointer(pointer)
    assert pointer["s3"]["key"].startswith("claim-checks/run-1/run-1/j/1/")
    assert fetch(aws.s3, pointer) == big


def test_without_a_bucket_the_large_output_fails_alone_and_its_neighbours_succeed(
    aws: Clients, stack: dict[str, str]
) -> None:
    messages = received_jobs(aws, stack, 3)
    batch = results_for(messages, [{"n": 0}, "x" * 261_998, {"n": 2}])
    done = Outcomes()
    sender = ResultSender(aws.sqs, stack["results_queue_url"], stack["jobs_queue_url"], done)
    sender.send(batch)  # even without prepare(): the sender fits every message
    sender.flush_deletes()
    assert done.done == {m["MessageId"]: True for m in messages}
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 0
    results = sent_results(aws, stack["results_queue_url"], 3)
    assert results["run-1/j/0"].outcome == results["run-1/j/2"].outcome == "succeeded"
    failed = results["run-1/j/1"]
    assert failed.outcome == "failed" and failed.error == "Bridge.OutputTooLarge"
    assert "BRIDGE_CLAIM_CHECK_BUCKET" in (failed.cause or "")


def test_batches_are_split_so_no_request_carries_more_than_the_limit(
    aws: Clients, stack: dict[str, str]
) -> None:
    messages = received_jobs(aws, stack, 10)
    outputs = ["y" * 100_000 for _ in range(10)]  # each fits a message; together ~1 MB
    done = Outcomes()
    totals = count_batches(aws.sqs)
    sender = ResultSender(aws.sqs, stack["results_queue_url"], stack["jobs_queue_url"], done)
    sender.send(results_for(messages, outputs))
    sender.flush_deletes()
    assert len(totals) >= 4 and max(totals) <= MAX_BATCH_BYTES
    assert all(done.done.values()) and len(done.done) == 10
    assert len(sent_results(aws, stack["results_queue_url"], 10)) == 10
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 0


def test_a_huge_cause_is_clipped_to_the_queue_limit_not_failing_its_batch(
    aws: Clients, stack: dict[str, str]
) -> None:
    small_queue = aws.sqs.create_queue(
        QueueName="small-results", Attributes={"MaximumMessageSize": "8192"}
    )["QueueUrl"]
    messages = received_jobs(aws, stack, 2)
    batch = results_for(messages, [{"n": 0}, None])
    batch[1].result = make_result(
        job_id="run-1/j/1", outcome="failed", output=None, error="Boom", cause="a" * 30_000 + "END"
    )
    done = Outcomes()
    sender = ResultSender(
        aws.sqs,
        small_queue,
        stack["jobs_queue_url"],
        done,
        claim_check=ClaimCheck(max_message_bytes=8192),
    )
    sender.send(batch)
    sender.flush_deletes()
    assert all(done.done.values()) and len(done.done) == 2
    results = sent_results(aws, small_queue, 2)
    clipped = results["run-1/j/1"]
    assert clipped.error == "Boom" and (clipped.cause or "").endswith("END")
    assert CLIP_MARKER.split("{")[0] in (clipped.cause or "")
    assert results["run-1/j/0"].output == {"n": 0}


def test_when_sqs_refuses_a_whole_batch_only_the_entry_at_fault_is_redelivered(
    aws: Clients, stack: dict[str, str]
) -> None:
    """A sender told the wrong limit (the queue allows 4 KiB): SQS refuses the whole request;
    the entries then go one by one and only the oversized one's job stays to run again."""
    tiny_queue = aws.sqs.create_queue(
        QueueName="tiny-results", Attributes={"MaximumMessageSize": "4096"}
    )["QueueUrl"]
    messages = received_jobs(aws, stack, 3)
    batch = results_for(messages, [{"n": 0}, "z" * 5000, {"n": 2}])
    done = Outcomes()
    sender = ResultSender(aws.sqs, tiny_queue, stack["jobs_queue_url"], done)
    sender.send(batch)
    sender.flush_deletes()
    ids = [m["MessageId"] for m in messages]
    assert done.done == {ids[0]: True, ids[1]: False, ids[2]: True}
    assert set(sent_results(aws, tiny_queue, 2)) == {"run-1/j/0", "run-1/j/2"}
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 1  # only the one at fault remains


def megabyte(data: Any, job: Any) -> Any:
    return {"rows": ["r" * 1000 for _ in range(1049)], "job": job.job_id}


def test_a_1_mib_output_round_trips_through_the_claim_check(
    aws: Clients, stack: dict[str, str]
) -> None:
    aws.sqs.send_message(
        QueueUrl=stack["jobs_queue_url"],
        MessageBody=encode(make_job(job_id="run-1/RunJob/0/0", execution_arn=EXECUTION)),
    )
    claim_check = ClaimCheck(aws.s3, stack["claim_check_bucket"])
    worker = Worker(
        aws.sqs, aws.sfn, settings(stack), PythonRunner(megabyte), claim_check=claim_check
    )
    with running(worker):
        [message] = receive_all(aws.sqs, stack["results_queue_url"], 1)
    result = parse_result(message["Body"])
    assert result.outcome == "succeeded" and is_pointer(result.output)
    pointer = Pointer.parse(result.output)
    assert pointer.size > 1_048_576 and len(message["Body"]) < 4096
    assert pointer.key == f"claim-checks/run-1/run-1/RunJob/0/0/{pointer.sha256}.json"
    assert fetch(aws.s3, result.output) == megabyte(None, make_job(job_id="run-1/RunJob/0/0"))
    head = aws.s3.head_object(Bucket=pointer.bucket, Key=pointer.key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "application/json"

    aws.s3.put_object(Bucket=pointer.bucket, Key=pointer.key, Body=b'{"rows": []}')
    with pytest.raises(ClaimCheckError, match="holds 12 bytes"):
        fetch(aws.s3, result.output)
    aws.s3.delete_object(Bucket=pointer.bucket, Key=pointer.key)
    with pytest.raises(ClaimCheckError, match="cannot be read"):
        fetch(aws.s3, result.output)


def test_a_tampered_object_of_the_same_size_fails_its_sha256(
    aws: Clients, stack: dict[str, str]
) -> None:
    check = ClaimCheck(aws.s3, stack["claim_check_bucket"], threshold_bytes=0)
    sent = check.apply(make_result(output={"v": 1}, execution_arn=EXECUTION))
    pointer = Pointer.parse(sent.output)
    aws.s3.put_object(Bucket=pointer.bucket, Key=pointer.key, Body=b'{"v":2}')
    with pytest.raises(ClaimCheckError, match="does not match its pointer"):
        fetch(aws.s3, sent.output)


def test_a_1_mib_output_without_a_bucket_fails_naming_the_setting(
    aws: Clients, stack: dict[str, str]
) -> None:
    aws.sqs.send_message(QueueUrl=stack["jobs_queue_url"], MessageBody=encode(make_job()))
    with running(Worker(aws.sqs, aws.sfn, settings(stack), PythonRunner(megabyte))):
        [message] = receive_all(aws.sqs, stack["results_queue_url"], 1)
    result = parse_result(message["Body"])
    assert result.outcome == "failed" and result.error == "Bridge.OutputTooLarge"
    assert "--claim-check-bucket (BRIDGE_CLAIM_CHECK_BUCKET)" in (result.cause or "")


def test_an_s3_failure_fails_the_task_with_a_named_error(
    aws: Clients, stack: dict[str, str]
) -> None:
    check = ClaimCheck(aws.s3, "no-such-bucket")
    sent = check.apply(make_result(output="x" * 300_000, execution_arn=EXECUTION))
    assert sent.outcome == "failed" and sent.error == "Bridge.ClaimCheckFailed"
    assert "s3://no-such-bucket/claim-checks/run-1/" in (sent.cause or "")
    assert "NoSuchBucket" in (sent.cause or "")


def test_the_limit_is_read_from_the_results_queue(aws: Clients, stack: dict[str, str]) -> None:
    small = aws.sqs.create_queue(QueueName="q-8k", Attributes={"MaximumMessageSize": "8192"})
    large = aws.sqs.create_queue(QueueName="q-1m", Attributes={"MaximumMessageSize": "1048576"})
    assert queue_limit(aws.sqs, stack["results_queue_url"]) == 262_144
    assert queue_limit(aws.sqs, small["QueueUrl"]) == 8192
    assert queue_limit(aws.sqs, large["QueueUrl"]) == 262_144  # batches stay at 256 KiB
    missing = stack["results_queue_url"] + "-missing"
    assert queue_limit(aws.sqs, missing) == 262_144


def test_results_finishing_close_together_share_one_request(
    aws: Clients, stack: dict[str, str]
) -> None:
    """A burst of short jobs (a Map's fan-out) sends one SendMessageBatch for the results that
    finish within LINGER_S of the first, however they are spaced inside that window."""
    assert LINGER_S >= 0.1  # the three below arrive over 0.06 s
    messages = received_jobs(aws, stack, 3)
    done = Outcomes()
    totals = count_batches(aws.sqs)
    sender = ResultSender(aws.sqs, stack["results_queue_url"], stack["jobs_queue_url"], done)
    sender.start()
    for pending in results_for(messages, [{"n": n} for n in range(3)]):
        sender.submit(pending.result, pending.message_id, pending.receipt_handle)
        time.sleep(0.03)  # slower than a per-result linger, well within the window
    assert sender.stop(timeout_s=10)
    assert len(totals) == 1
    assert all(done.done.values()) and len(done.done) == 3
    assert len(sent_results(aws, stack["results_queue_url"], 3)) == 3
    assert depth(aws.sqs, stack["jobs_queue_url"]) == 0
