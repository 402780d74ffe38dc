"""The completion handler against moto in-process: real tokens from a real execution."""

from __future__ import annotations

import json
from typing import Any

from botocore.stub import Stubber

from bridge.aws import Clients
from bridge.completion import Completion, make_handler
from bridge.contract import encode, parse_job
from bridge.local_stack.event_source import LocalLambdaContext, to_event_record
from bridge.quarantine import REASON_ATTRIBUTE
from tests.conftest import make_result
from tests.functional.conftest import depth, receive_all, start, wait_for_execution

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:callback-bridge-results"


def event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            to_event_record(
                {"MessageId": f"m-{i}", "ReceiptHandle": f"r-{i}", "Body": b},
                QUEUE_ARN,
                "us-east-1",
            )
            for i, b in enumerate(bodies)
        ]
    }


def invoke(completion: Completion, *bodies: str) -> dict[str, Any]:
    return make_handler(completion)(event(*bodies), LocalLambdaContext())


def test_results_complete_the_execution(aws: Clients, stack: dict[str, str]) -> None:
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}, {"n": 1}])
    jobs = [parse_job(m["Body"]) for m in receive_all(aws.sqs, stack["jobs_queue_url"], 2)]
    jobs.sort(key=lambda job: job.map_index)
    ok = make_result(token=jobs[0].token, job_id=jobs[0].job_id, output={"answer": 42})
    failed = make_result(
        token=jobs[1].token,
        job_id=jobs[1].job_id,
        outcome="failed",
        output=None,
        error="RenderError",
        cause="disk full",
    )
    response = invoke(
        Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]), encode(ok), encode(failed)
    )
    assert response == {"batchItemFailures": []}
    described = wait_for_execution(aws.sfn, execution)
    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output[0] == {"status": "SUCCEEDED", "output": {"answer": 42}}
    assert output[1]["status"] == "FAILED" and output[1]["error"] == "RenderError"


def test_malformed_results_go_to_the_dlq_with_a_reason(aws: Clients, stack: dict[str, str]) -> None:
    no_token = json.loads(encode(make_result()))
    del no_token["token"]
    response = invoke(
        Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]),
        "{not json",
        json.dumps(no_token),
        json.dumps({**no_token, "version": 9}),
    )
    assert response == {"batchItemFailures": []}  # acknowledged: retrying cannot help
    dead = receive_all(aws.sqs, stack["results_dlq_url"], 3)
    reasons = sorted(m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] for m in dead)
    assert len(dead) == 3
    assert any("body" in r for r in reasons)
    assert any("token" in r for r in reasons)
    assert any("version" in r for r in reasons)
    assert {m["Body"] for m in dead} >= {"{not json"}  # the body is kept as it was


def test_without_a_dlq_url_a_malformed_result_is_left_for_the_redrive_policy(aws: Clients) -> None:
    response = invoke(Completion(aws.sfn, aws.sqs, None), "garbage")
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}


def test_unknown_tokens_are_acknowledged_not_retried(aws: Clients, stack: dict[str, str]) -> None:
    stale = make_result(token="no-such-token")
    response = invoke(Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]), encode(stale))
    assert response == {"batchItemFailures": []}
    assert depth(aws.sqs, stack["results_dlq_url"]) == 0


def test_throttling_is_reported_back_for_retry(aws: Clients, stack: dict[str, str]) -> None:
    # moto cannot throttle; botocore's own Stubber stands in for that one answer.
    stubber = Stubber(aws.sfn)
    stubber.add_client_error(
        "send_task_success", service_error_code="ThrottlingException", http_status_code=400
    )
    with stubber:
        response = invoke(
            Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]), encode(make_result())
        )
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}


def test_output_over_the_step_functions_limit_fails_the_task(
    aws: Clients, stack: dict[str, str]
) -> None:
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    job = parse_job(receive_all(aws.sqs, stack["jobs_queue_url"], 1)[0]["Body"])
    huge = make_result(token=job.token, job_id=job.job_id, output="x" * 300_000)
    invoke(Completion(aws.sfn, aws.sqs, stack["results_dlq_url"]), encode(huge))
    output = json.loads(wait_for_execution(aws.sfn, execution)["output"])
    assert output[0]["error"] == "Bridge.OutputTooLarge"
