"""Found by ``callback-bridge chaos``: a stale job whose one stale check fell in a Step Functions
outage was presumed alive and ran in full. The worker now asks again until Step Functions
answers (moto in-process; the outage is a botocore ``before-call`` hook on the worker's client).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.aws import Clients
from bridge.local_stack.resources import StackSettings, create_resources
from tests.support.aws import depth, start
from tests.support.polling import eventually
from tests.support.worker import running, settings


@pytest.fixture
def stack(aws: Clients) -> dict[str, str]:
    return create_resources(aws, StackSettings(dead_letter_handling=False))


def outage(client: Any, calls: int) -> list[int]:
    """The first ``calls`` heartbeats of ``client`` answer 503; returns a call counter."""
    seen = [0]

    def refuse(**_kwargs: Any) -> None:
        seen[0] += 1
        if seen[0] <= calls:
            raise ClientError(
                {
                    "Error": {"Code": "ServiceUnavailable"},
                    "ResponseMetadata": {"HTTPStatusCode": 503},
                },
                "SendTaskHeartbeat",
            )

    client.meta.events.register("before-call.sfn.SendTaskHeartbeat", refuse)
    return seen


def test_a_stale_check_in_an_outage_is_asked_again_not_run(
    aws: Clients, stack: dict[str, str]
) -> None:
    from consumers.runner import PythonRunner
    from consumers.worker import Worker

    start(aws.sfn, stack["state_machine_arn"], [{"n": 0}])
    message = aws.sqs.receive_message(QueueUrl=stack["jobs_queue_url"], WaitTimeSeconds=5)
    body = message["Messages"][0]["Body"]
    aws.sqs.delete_message(
        QueueUrl=stack["jobs_queue_url"], ReceiptHandle=message["Messages"][0]["ReceiptHandle"]
    )
    aws.sfn.send_task_success(taskToken=json.loads(body)["token"], output="{}")
    aws.sqs.send_message(QueueUrl=stack["jobs_queue_url"], MessageBody=body)  # a late copy
    ran = threading.Event()

    def handler(data: Any, job: Any) -> Any:
        ran.set()
        return {}

    heartbeats = outage(aws.sfn, calls=2)
    worker = Worker(aws.sqs, aws.sfn, settings(stack, stale_check_age_s=0), PythonRunner(handler))
    with running(worker):
        assert eventually(lambda: depth(aws.sqs, stack["jobs_queue_url"]) == 0, timeout_s=10)
    assert not ran.is_set(), "the stale job ran"
    assert heartbeats[0] >= 3  # two unanswered, then TaskTimedOut
    assert depth(aws.sqs, stack["results_queue_url"]) == 0
