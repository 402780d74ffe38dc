"""Both Lambdas' shared shape (bridge/lambda_batch.py) against moto in-process: partial batch
responses for mixed batches, the deadline, masked tokens, and the measurement behind running
records concurrently rather than with powertools' sequential ``BatchProcessor``.

``MEASURE_RECORDS=100`` runs the measurement with a batch of 100 (default 10; not a ``BRIDGE_``
variable: the suite's conftest clears those)."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from bridge import dead_letter
from bridge.aws import Clients
from bridge.completion import Completion
from bridge.config import BridgeConfig
from bridge.contract import ERROR_DEAD_LETTERED, Job, encode, mask_token, parse_job
from bridge.dead_letter import DeadLetterHandler, archive_routes
from bridge.lambda_batch import Tally
from bridge.local_stack.event_source import LocalLambdaContext
from bridge.retrying import Retrier
from tests.support.aws import depth, receive_all, start
from tests.support.messages import make_job, make_result
from tests.support.messages import sqs_event as event
from tests.support.polling import wait_for_execution

THROTTLED = (400, "ThrottlingException", "Rate exceeded")
#: Injected into every SendTaskSuccess of the measurement (a slow Step Functions endpoint).
LATENCY_S = 0.2


def answer_calls(
    client: Any, operation: str, answer: Callable[[dict[str, Any]], Any | None]
) -> None:
    """``answer(params)`` answers ``operation`` calls itself (status, code, message), or lets
    them through to moto (``None``)."""

    def hook(params: dict[str, Any], **_: Any) -> Any:
        reply = answer(json.loads(params["body"]))
        if reply is None:
            return None
        status, code, message = reply
        parsed = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return AWSResponse("https://states.invalid", status, {}, None), parsed

    client.meta.events.register(f"before-call.stepfunctions.{operation}", hook)


def throttling(token: str) -> Callable[[dict[str, Any]], Any | None]:
    """Answer every call with ``token`` ThrottlingException, let the others through."""
    return lambda params: THROTTLED if params["taskToken"] == token else None


def jobs_of_executions(aws: Clients, stack: dict[str, str], count: int) -> list[tuple[str, Job]]:
    """``count`` executions of one job each: (execution ARN, job), in the same order."""
    arns = [
        start(aws.sfn, stack["state_machine_arn"], [{"n": i}], name=f"r{i}") for i in range(count)
    ]
    jobs = {
        parse_job(m["Body"]).execution_arn: parse_job(m["Body"])
        for m in receive_all(aws.sqs, stack["jobs_queue_url"], count)
    }
    return [(arn, jobs[arn]) for arn in arns]


def result_of(job: Job, **fields: Any) -> str:
    return encode(make_result(token=job.token, job_id=job.job_id, **fields))


def test_a_mixed_batch_reports_only_what_a_retry_can_fix(
    aws: Clients, stack: dict[str, str]
) -> None:
    (ok_arn, ok), (failed_arn, failed), (throttled_arn, throttled), (closed_arn, closed) = (
        jobs_of_executions(aws, stack, 4)
    )
    aws.sfn.stop_execution(executionArn=closed_arn)  # its token answers TaskTimedOut
    answer_calls(
        aws.sfn,
        "SendTaskSuccess",
        lambda p: THROTTLED if p["taskToken"] == throttled.token else None,
    )
    bodies = [
        result_of(ok, output={"answer": 42}),
        "{not json",  # malformed, no token: kept in the results DLQ, acknowledged
        result_of(failed, outcome="failed", output=None, error="RenderError", cause="disk"),
        result_of(throttled),  # throttled for the whole invocation
        result_of(closed),
    ]
    completion = Completion(aws.sfn, aws.sqs, stack["results_dlq_url"])
    response = completion.handle(event(bodies), LocalLambdaContext(timeout_s=2.5))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-3"}]}
    # What Step Functions saw:
    assert json.loads(wait_for_execution(aws.sfn, ok_arn)["output"]) == [
        {"status": "SUCCEEDED", "output": {"answer": 42}}
    ]
    failed_output = json.loads(wait_for_execution(aws.sfn, failed_arn)["output"])[0]
    assert failed_output["error"] == "RenderError"
    assert aws.sfn.describe_execution(executionArn=throttled_arn)["status"] == "RUNNING"
    assert aws.sfn.describe_execution(executionArn=closed_arn)["status"] == "ABORTED"
    (dead,) = receive_all(aws.sqs, stack["results_dlq_url"], 1)
    assert dead["Body"] == "{not json"


def test_an_unexpected_error_is_returned_to_sqs_and_logged_as_the_chaos_campaign_expects(
    aws: Clients, stack: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """bridge/chaos/checks.py counts "result not handled" lines as bugs."""

    def broken(**_: Any) -> None:
        raise RuntimeError("a bug")

    aws.sfn.meta.events.register("before-call.stepfunctions.SendTaskSuccess", broken)
    completion = Completion(aws.sfn, aws.sqs, stack["results_dlq_url"])
    response = completion.handle(event([encode(make_result())]), LocalLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert "result not handled, SQS will retry it" in caplog.text


def test_the_dead_letter_lambda_reports_partial_failures_the_same_way(
    aws: Clients, stack: dict[str, str]
) -> None:
    (arn, job), (throttled_arn, throttled) = jobs_of_executions(aws, stack, 2)
    answer_calls(
        aws.sfn,
        "SendTaskFailure",
        lambda p: THROTTLED if p["taskToken"] == throttled.token else None,
    )
    jobs_dlq_arn = aws.sqs.get_queue_attributes(
        QueueUrl=stack["jobs_dlq_url"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    bodies = [encode(job), encode(throttled), "no token here"]
    handler = DeadLetterHandler(aws.sfn, aws.sqs, archive_routes(BridgeConfig(**stack)))
    response = handler.handle(event(bodies, jobs_dlq_arn), LocalLambdaContext(timeout_s=2.5))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    output = json.loads(wait_for_execution(aws.sfn, arn)["output"])[0]
    assert output["error"] == ERROR_DEAD_LETTERED
    assert aws.sfn.describe_execution(executionArn=throttled_arn)["status"] == "RUNNING"
    archived = receive_all(aws.sqs, stack["jobs_archive_url"], 2)
    assert sorted(m["Body"] for m in archived) == sorted([encode(job), "no token here"])


def test_a_dead_letter_whose_every_record_fails_returns_them_all(
    aws: Clients, stack: dict[str, str]
) -> None:
    """powertools raises when a whole batch fails; the handlers answer it like any other."""
    bodies = [encode(make_job()), encode(make_job())]
    handler = DeadLetterHandler(aws.sfn, aws.sqs, archive_routes(BridgeConfig(**stack)))
    unknown_dlq = "arn:aws:sqs:us-east-1:123456789012:unknown-dlq"
    response = handler.handle(event(bodies, unknown_dlq), LocalLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}, {"itemIdentifier": "m-1"}]}


def test_no_token_appears_in_full_in_the_dead_letter_lambdas_logs(
    aws: Clients, stack: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Not even in the traceback of an error whose message repeats the token."""
    token = "secret-token-" + "q" * 60
    stubber = Stubber(aws.sfn)
    stubber.add_client_error(
        "send_task_failure",
        service_error_code="ValidationException",
        service_message=f"bad token {token}",
    )
    jobs_dlq_arn = f"arn:aws:sqs:us-east-1:123456789012:{stack['jobs_dlq_url'].rsplit('/', 1)[-1]}"
    handler = DeadLetterHandler(aws.sfn, aws.sqs, archive_routes(BridgeConfig(**stack)))
    written = io.StringIO()
    log_handler: Any = dead_letter.logger.registered_handler
    previous = log_handler.setStream(written)
    try:
        with stubber:
            response = handler.handle(
                event([encode(make_job(token=token))], jobs_dlq_arn), LocalLambdaContext()
            )
    finally:
        log_handler.setStream(previous)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert "dead letter not handled" in written.getvalue()
    assert mask_token(token) in written.getvalue()
    assert token not in written.getvalue() + caplog.text


def test_the_dead_letter_entry_point_has_the_completion_handlers_name() -> None:
    assert dead_letter.lambda_handler is dead_letter.handler


@pytest.mark.slow  # a measurement, not a check of behaviour
def test_measure_the_pool_against_powertools_sequential_batch_processor(
    aws: Clients, stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The completion function has a 10 s timeout. Every SendTaskSuccess here takes
    :data:`LATENCY_S` longer (injected); the tokens are unknown to moto, so each record makes
    one call and is acknowledged as stale. The pool must at least halve the batch's time."""
    records = int(os.environ.get("MEASURE_RECORDS", "10"))
    bodies = [
        encode(make_result(token=f"unknown-{i:05d}-" + "z" * 40, job_id=f"e/{i}"))
        for i in range(records)
    ]

    def slow(**_: Any) -> None:
        time.sleep(LATENCY_S)

    aws.sfn.meta.events.register("before-call.stepfunctions.SendTaskSuccess", slow)
    completion = Completion(aws.sfn, aws.sqs, stack["results_dlq_url"])

    began = time.perf_counter()
    pooled = completion.handle(event(bodies), LocalLambdaContext(timeout_s=900))
    pooled_s = time.perf_counter() - began

    def one(record: SQSRecord) -> None:
        completion.record(record.raw_event, Retrier(time.monotonic() + 900), Tally())

    began = time.perf_counter()
    processor = BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
    sequential = process_partial_response(event(bodies), one, processor, LocalLambdaContext())
    sequential_s = time.perf_counter() - began

    with capsys.disabled():
        print(
            f"\n{records} records, {LATENCY_S * 1000:.0f} ms per SendTaskSuccess: "
            f"BatchProcessor (sequential) {sequential_s:.2f} s, "
            f"AsyncBatchProcessor + {completion.runner.workers} threads {pooled_s:.2f} s"
        )
    assert pooled == sequential == {"batchItemFailures": []}
    assert depth(aws.sqs, stack["results_dlq_url"]) == 0
    assert pooled_s < sequential_s / 2
