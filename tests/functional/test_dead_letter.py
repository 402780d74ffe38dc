"""The dead-letter handler against moto in-process: real executions, real redrive policies.

Records reach the handler the way an event source mapping delivers them: received from the DLQ
with all attributes, shaped by the local event source mapping's ``to_event_record``, deleted
when the handler acknowledges them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from bridge import dead_letter
from bridge.aws import Clients
from bridge.config import BridgeConfig, ConfigError, load_config
from bridge.contract import ERROR_DEAD_LETTERED, encode, parse_job
from bridge.dead_letter import (
    DEAD_LETTERED_AT_ATTRIBUTE,
    EXECUTION_ATTRIBUTE,
    JOB_ID_ATTRIBUTE,
    RECEIVE_COUNT_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    TASK_TOLD_ATTRIBUTE,
    DeadLetterHandler,
    archive_routes,
)
from bridge.local_stack import compat
from bridge.local_stack.event_source import LocalLambdaContext, to_event_record
from bridge.local_stack.resources import StackSettings, create_resources
from bridge.quarantine import REASON_ATTRIBUTE, SOURCE_ATTRIBUTE, quarantine
from tests.support.aws import depth, receive_all, start
from tests.support.messages import make_job, make_result
from tests.support.polling import wait_for_execution

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


#: The embedded stack's behaviour where moto 5.2.5 differs from AWS in what these tests read.
PATCHES = {
    "sqs-dead-letter-source",
    "sfn-send-task-failure-cause",
    "sfn-closed-token",
    "sfn-integer-tolerated-percentage",  # the template's S3-fed Map renders an integer
}


@pytest.fixture(autouse=True)
def embedded_behaviour() -> Iterator[None]:
    """``DeadLetterQueueSourceArn``, failure causes and ``TaskTimedOut`` as on AWS."""
    compat.apply([p for p in compat.registry() if p.name in PATCHES])
    yield
    compat.revert()


def handler_for(aws: Clients, stack: dict[str, str]) -> DeadLetterHandler:
    return DeadLetterHandler(aws.sfn, aws.sqs, archive_routes(BridgeConfig(**stack)), lambda: NOW)


def arn(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def drain(handler: Any, sqs: Any, dlq_url: str) -> dict[str, Any]:
    """One event source mapping poll: receive, invoke, delete what was acknowledged. The
    visibility is 0 so a failed record can be retried at once."""
    messages = sqs.receive_message(
        QueueUrl=dlq_url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
        WaitTimeSeconds=0,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    records = [to_event_record(m, arn(sqs, dlq_url), "us-east-1") for m in messages]
    response: dict[str, Any] = handler({"Records": records}, LocalLambdaContext())
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    for record in records:
        if record["messageId"] not in failed:
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=record["receiptHandle"])
    return response


def dead_letter_by_receives(sqs: Any, url: str) -> dict[str, Any]:
    """Receive the only message without deleting it until the redrive policy moves it; returns
    the message as last received from ``url``."""
    last: dict[str, Any] = {}
    for _ in range(10):
        messages = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return last
        last = messages[0]
    raise AssertionError("the redrive policy never moved the message")


def attributes(message: dict[str, Any]) -> dict[str, str]:
    return {k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()}


def one_job(aws: Clients, stack: dict[str, str], name: str = "run-1") -> tuple[str, Any, str]:
    """Start an execution with one job; returns (execution ARN, job, job message body)."""
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}], name=name)
    message = receive_all(aws.sqs, stack["jobs_queue_url"], 1)[0]
    aws.sqs.change_message_visibility(
        QueueUrl=stack["jobs_queue_url"],
        ReceiptHandle=message["ReceiptHandle"],
        VisibilityTimeout=0,
    )
    return execution, parse_job(message["Body"]), message["Body"]


def test_a_job_dead_lettered_by_max_receive_count_fails_its_task_and_is_archived(
    aws: Clients, stack: dict[str, str]
) -> None:
    execution, job, body = one_job(aws, stack)
    original_id = dead_letter_by_receives(aws.sqs, stack["jobs_queue_url"])["MessageId"]
    assert depth(aws.sqs, stack["jobs_dlq_url"]) == 1

    assert drain(handler_for(aws, stack).handle, aws.sqs, stack["jobs_dlq_url"]) == {
        "batchItemFailures": []
    }

    output = json.loads(wait_for_execution(aws.sfn, execution)["output"])
    assert output[0]["status"] == "FAILED" and output[0]["error"] == ERROR_DEAD_LETTERED
    cause = output[0]["cause"]
    for fact in (job.job_id, "receive count", "callback-bridge-jobs", "maxReceiveCount 4"):
        assert fact in cause
    archived = receive_all(aws.sqs, stack["jobs_archive_url"], 1)
    assert len(archived) == 1 and archived[0]["Body"] == body  # byte for byte
    said = attributes(archived[0])
    assert said[REASON_ATTRIBUTE] == "exceeded maxReceiveCount 4 on callback-bridge-jobs"
    assert said[TASK_TOLD_ATTRIBUTE] == "failed"
    assert said[JOB_ID_ATTRIBUTE] == job.job_id
    assert said[EXECUTION_ATTRIBUTE] == execution
    assert said[SOURCE_QUEUE_ATTRIBUTE] == "callback-bridge-jobs"
    assert said[SOURCE_ATTRIBUTE] == original_id
    assert int(said[RECEIVE_COUNT_ATTRIBUTE]) >= 1
    assert said[DEAD_LETTERED_AT_ATTRIBUTE] == "2030-01-02T03:04:05.000+00:00"
    assert depth(aws.sqs, stack["jobs_dlq_url"]) == 0


def test_without_a_recorded_source_the_dlq_name_gives_it(
    aws: Clients, stack: dict[str, str]
) -> None:
    """A record without ``DeadLetterQueueSourceArn`` (here: sent straight to the DLQ)."""
    execution, _job, body = one_job(aws, stack)
    aws.sqs.send_message(QueueUrl=stack["jobs_dlq_url"], MessageBody=body)
    drain(handler_for(aws, stack).handle, aws.sqs, stack["jobs_dlq_url"])
    output = json.loads(wait_for_execution(aws.sfn, execution)["output"])
    assert "exceeded maxReceiveCount on callback-bridge-jobs" in output[0]["cause"]


def test_a_quarantined_job_keeps_its_reason_and_attributes(
    aws: Clients, stack: dict[str, str]
) -> None:
    execution, job, body = one_job(aws, stack)
    extra = {"trace": {"DataType": "String", "StringValue": "t-1"}}
    quarantine(aws.sqs, stack["jobs_dlq_url"], "orig-1", body, "job type not served", extra)
    drain(handler_for(aws, stack).handle, aws.sqs, stack["jobs_dlq_url"])

    output = json.loads(wait_for_execution(aws.sfn, execution)["output"])
    assert output[0]["error"] == ERROR_DEAD_LETTERED
    assert "job type not served" in output[0]["cause"] and job.job_id in output[0]["cause"]
    said = attributes(receive_all(aws.sqs, stack["jobs_archive_url"], 1)[0])
    assert said[REASON_ATTRIBUTE] == "job type not served"
    assert said[SOURCE_ATTRIBUTE] == "orig-1"
    assert said["trace"] == "t-1"


def test_a_valid_result_in_the_results_dlq_is_delivered(
    aws: Clients, stack: dict[str, str]
) -> None:
    execution, job, _body = one_job(aws, stack)
    result = make_result(token=job.token, job_id=job.job_id, output={"answer": 42})
    aws.sqs.send_message(QueueUrl=stack["results_queue_url"], MessageBody=encode(result))
    dead_letter_by_receives(aws.sqs, stack["results_queue_url"])

    assert drain(handler_for(aws, stack).handle, aws.sqs, stack["results_dlq_url"]) == {
        "batchItemFailures": []
    }

    described = wait_for_execution(aws.sfn, execution)
    assert json.loads(described["output"]) == [{"status": "SUCCEEDED", "output": {"answer": 42}}]
    said = attributes(receive_all(aws.sqs, stack["results_archive_url"], 1)[0])
    assert said[TASK_TOLD_ATTRIBUTE] == "delivered"
    assert said[REASON_ATTRIBUTE] == "exceeded maxReceiveCount 2 on callback-bridge-results"


def test_a_failed_result_is_delivered_as_its_own_failure(
    aws: Clients, stack: dict[str, str]
) -> None:
    execution, job, _body = one_job(aws, stack)
    failed = make_result(
        token=job.token, job_id=job.job_id, outcome="failed", output=None, error="RenderError"
    )
    aws.sqs.send_message(QueueUrl=stack["results_dlq_url"], MessageBody=encode(failed))
    drain(handler_for(aws, stack).handle, aws.sqs, stack["results_dlq_url"])
    output = json.loads(wait_for_execution(aws.sfn, execution)["output"])
    assert output[0]["error"] == "RenderError"


def test_a_malformed_result_with_a_readable_token_fails_the_task(
    aws: Clients, stack: dict[str, str]
) -> None:
    execution, job, _body = one_job(aws, stack)
    broken = json.dumps({"version": 1, "token": job.token, "job_id": job.job_id})
    aws.sqs.send_message(QueueUrl=stack["results_dlq_url"], MessageBody=broken)
    drain(handler_for(aws, stack).handle, aws.sqs, stack["results_dlq_url"])
    output = json.loads(wait_for_execution(aws.sfn, execution)["output"])
    assert output[0]["error"] == ERROR_DEAD_LETTERED
    assert "callback-bridge-results" in output[0]["cause"]


@pytest.mark.parametrize(
    ("body", "told"),
    [
        (encode(make_job(token="no-such-token")), "already-closed"),
        ("not json at all", "no-token"),
    ],
)
def test_letters_that_cannot_be_told_are_archived_and_acknowledged(
    aws: Clients, stack: dict[str, str], body: str, told: str
) -> None:
    aws.sqs.send_message(QueueUrl=stack["jobs_dlq_url"], MessageBody=body)
    assert drain(handler_for(aws, stack).handle, aws.sqs, stack["jobs_dlq_url"]) == {
        "batchItemFailures": []
    }
    archived = receive_all(aws.sqs, stack["jobs_archive_url"], 1)
    assert archived[0]["Body"] == body
    assert attributes(archived[0])[TASK_TOLD_ATTRIBUTE] == told
    assert depth(aws.sqs, stack["jobs_dlq_url"]) == 0


def test_invalid_output_is_reported_as_a_dead_letter(aws: Clients, stack: dict[str, str]) -> None:
    # moto accepts any output; botocore's Stubber stands in for Step Functions' refusal.
    result = make_result(token="tok-" + "y" * 40)
    aws.sqs.send_message(QueueUrl=stack["results_dlq_url"], MessageBody=encode(result))
    stubber = Stubber(aws.sfn)
    stubber.add_client_error("send_task_success", service_error_code="InvalidOutput")
    stubber.add_response(
        "send_task_failure",
        {},
        {"taskToken": result.token, "error": ERROR_DEAD_LETTERED, "cause": ANY},
    )
    with stubber:
        drain(handler_for(aws, stack).handle, aws.sqs, stack["results_dlq_url"])
    stubber.assert_no_pending_responses()
    said = attributes(receive_all(aws.sqs, stack["results_archive_url"], 1)[0])
    assert said[TASK_TOLD_ATTRIBUTE] == "failed"


def test_throttling_is_retried_then_the_dlq_archives_the_letter_bare(
    aws: Clients, stack: dict[str, str]
) -> None:
    """A letter the handler keeps failing on is moved by the DLQ's own redrive: never lost."""
    _execution, _job, body = one_job(aws, stack)
    dead_letter_by_receives(aws.sqs, stack["jobs_queue_url"])
    stubber = Stubber(aws.sfn)
    for _ in range(dead_letter.HANDLER_ATTEMPTS):
        stubber.add_client_error(
            "send_task_failure", service_error_code="ThrottlingException", http_status_code=400
        )
    handler = handler_for(aws, stack)
    with stubber:
        for _ in range(dead_letter.HANDLER_ATTEMPTS):
            response = drain(handler.handle, aws.sqs, stack["jobs_dlq_url"])
            assert len(response["batchItemFailures"]) == 1
            assert depth(aws.sqs, stack["jobs_archive_url"]) == 0
        drain(handler.handle, aws.sqs, stack["jobs_dlq_url"])  # the next receive moves it
    archived = receive_all(aws.sqs, stack["jobs_archive_url"], 1)
    assert [m["Body"] for m in archived] == [body]
    assert TASK_TOLD_ATTRIBUTE not in attributes(archived[0])  # bare: the DLQ moved it
    assert depth(aws.sqs, stack["jobs_dlq_url"]) == 0


def test_a_dlq_without_an_archive_is_retried_and_nobody_is_told(
    aws: Clients, stack: dict[str, str]
) -> None:
    record = to_event_record(
        {"MessageId": "m-0", "ReceiptHandle": "r-0", "Body": encode(make_job())},
        "arn:aws:sqs:us-east-1:123456789012:some-other-dlq",
        "us-east-1",
    )
    stubber = Stubber(aws.sfn)  # no responses: any Step Functions call would fail the test
    with stubber:
        response = handler_for(aws, stack).handle({"Records": [record]}, LocalLambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}


def test_the_archived_copy_keeps_at_most_ten_attributes_ours_first(
    aws: Clients, stack: dict[str, str]
) -> None:
    extra: dict[str, dict[str, Any]] = {"blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
    extra.update({f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(8)})
    aws.sqs.send_message(
        QueueUrl=stack["jobs_dlq_url"],
        MessageBody=encode(make_job(token="no-such-token")),
        MessageAttributes=extra,
    )
    drain(handler_for(aws, stack).handle, aws.sqs, stack["jobs_dlq_url"])
    archived = receive_all(aws.sqs, stack["jobs_archive_url"], 1)[0]["MessageAttributes"]
    assert len(archived) == 10
    assert set(dead_letter.ENRICHED_ATTRIBUTES) <= set(archived)
    # the sender's first ones fill the rest, binary values unchanged
    assert archived["blob"]["BinaryValue"] == b"\x00\x01"
    assert archived["a0"]["StringValue"] == "0" and "a1" not in archived


def test_with_handling_off_there_is_no_archive_and_the_dlq_keeps_its_letters(
    aws: Clients,
) -> None:
    created = create_resources(aws, StackSettings(prefix="off", dead_letter_handling=False))
    assert "jobs_archive_url" not in created and "results_archive_url" not in created
    policy = aws.sqs.get_queue_attributes(QueueUrl=created["jobs_dlq_url"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert "RedrivePolicy" not in policy  # peeks never move a letter anywhere
    assert not [u for u in aws.sqs.list_queues().get("QueueUrls", []) if "dead-letters" in u]


def test_with_handling_on_the_archive_is_a_dlq_of_the_dlq(
    aws: Clients, stack: dict[str, str]
) -> None:
    policy = aws.sqs.get_queue_attributes(
        QueueUrl=stack["jobs_dlq_url"], AttributeNames=["RedrivePolicy"]
    )["Attributes"]["RedrivePolicy"]
    assert json.loads(policy) == {
        "deadLetterTargetArn": arn(aws.sqs, stack["jobs_archive_url"]),
        "maxReceiveCount": 4 + dead_letter.HANDLER_ATTEMPTS,
    }
    assert stack["jobs_archive_url"].endswith("/callback-bridge-jobs-dead-letters")
    assert stack["results_archive_url"].endswith("/callback-bridge-results-dead-letters")


def test_the_lambda_entry_point_reads_its_queues_from_the_environment(
    aws: Clients, stack: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    execution, _job, body = one_job(aws, stack)
    monkeypatch.setenv("BRIDGE_JOBS_DLQ_URL", stack["jobs_dlq_url"])
    monkeypatch.setenv("BRIDGE_JOBS_ARCHIVE_URL", stack["jobs_archive_url"])
    dead_letter._from_environment.cache_clear()
    try:
        aws.sqs.send_message(QueueUrl=stack["jobs_dlq_url"], MessageBody=body)
        drain(dead_letter.lambda_handler, aws.sqs, stack["jobs_dlq_url"])
    finally:
        dead_letter._from_environment.cache_clear()
    output = json.loads(wait_for_execution(aws.sfn, execution)["output"])
    assert output[0]["error"] == ERROR_DEAD_LETTERED
    assert depth(aws.sqs, stack["jobs_archive_url"]) == 1


def test_without_any_archive_configured_the_lambda_names_the_variables() -> None:
    with pytest.raises(ConfigError, match="BRIDGE_JOBS_ARCHIVE_URL"):
        archive_routes(load_config({"BRIDGE_JOBS_DLQ_URL": "https://sqs/1/x-jobs-dlq"}))


def test_each_way_a_dead_letter_ends_is_a_metric(aws: Clients, stack: dict[str, str]) -> None:
    """Alarms on dead-lettered jobs read these (EMF, published by the Lambda)."""
    from aws_lambda_powertools import Metrics

    one_job(aws, stack)
    dead_letter_by_receives(aws.sqs, stack["jobs_queue_url"])
    aws.sqs.send_message(QueueUrl=stack["jobs_dlq_url"], MessageBody="no token here")
    metrics = Metrics(namespace="CallbackBridgeTest", service="dead-letters")
    metrics.clear_metrics()  # powertools keeps one metric set per process
    handler = DeadLetterHandler(
        aws.sfn, aws.sqs, archive_routes(BridgeConfig(**stack)), lambda: NOW, metrics=metrics
    )
    for _ in range(3):
        drain(handler.handle, aws.sqs, stack["jobs_dlq_url"])
    document = metrics.serialize_metric_set()
    metrics.clear_metrics()
    assert document["DeadLettersFailed"] in ([1.0], 1.0)
    assert document["DeadLettersWithoutToken"] in ([1.0], 1.0)
