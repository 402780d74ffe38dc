"""What the results queue's event source mapping does, called by hand in the functional tier."""

from __future__ import annotations

from typing import Any

from bridge.aws import Clients
from bridge.completion import Completion, make_handler
from bridge.local_stack.event_source import LocalLambdaContext, to_event_record
from tests.support.aws import receive_all


def lambda_event(queue_url: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    arn = "arn:aws:sqs:us-east-1:123456789012:" + queue_url.rsplit("/", 1)[-1]
    return {"Records": [to_event_record(m, arn, "us-east-1") for m in messages]}


def complete(aws: Clients, stack: dict[str, str], count: int) -> dict[str, Any]:
    """Hand ``count`` results to the completion handler; delete what it acknowledged."""
    url = stack["results_queue_url"]
    messages = receive_all(aws.sqs, url, count)
    completion = Completion(aws.sfn, aws.sqs, stack["results_dlq_url"])
    response: dict[str, Any] = make_handler(completion)(
        lambda_event(url, messages), LocalLambdaContext(timeout_s=10)
    )
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return response
