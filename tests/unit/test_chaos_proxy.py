"""The fault proxy in front of a real moto server (the embedded server, no stack)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from bridge.chaos.proxy import FaultProxy, FaultRates, api_of, token_key
from bridge.local_stack.server import EmbeddedServer


class Scripted(random.Random):
    """Draws a fixed value: which fault the proxy picks is then known."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    running = EmbeddedServer().start()
    try:
        yield running
    finally:
        running.stop()


def sqs(endpoint: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def proxy_for(server: EmbeddedServer, draw: float, **rates: float) -> FaultProxy:
    return FaultProxy(
        server.endpoint_url, Scripted(draw), FaultRates(**rates), results_queue_name="results"
    ).start()


def test_calls_pass_through_and_are_counted(server: EmbeddedServer) -> None:
    proxy = proxy_for(server, 0.99, throttle=0.0, error5xx=0.0, lost_response=0.0)
    try:
        client = sqs(proxy.endpoint_url)
        url = client.create_queue(QueueName="jobs")["QueueUrl"]
        client.send_message(QueueUrl=url, MessageBody="hello")
        got = client.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
        assert [m["Body"] for m in got] == ["hello"]
        assert proxy.calls["sqs:SendMessage"] == 1
        assert proxy.fault_counts() == {}
        assert proxy.address[0] == "127.0.0.1"
    finally:
        proxy.stop()


def test_throttling_is_answered_before_the_call_reaches_the_server(
    server: EmbeddedServer,
) -> None:
    direct = sqs(server.endpoint_url)
    url = direct.create_queue(QueueName="jobs")["QueueUrl"]
    proxy = proxy_for(server, 0.01, throttle=0.1, error5xx=0.0, lost_response=0.0)
    try:
        with pytest.raises(ClientError) as raised:
            sqs(proxy.endpoint_url).send_message(QueueUrl=url, MessageBody="x")
        assert raised.value.response["Error"]["Code"] == "ThrottlingException"
        assert "Messages" not in direct.receive_message(QueueUrl=url)
        assert proxy.fault_counts() == {"throttle": 1}
    finally:
        proxy.stop()


def test_a_lost_response_hides_a_call_that_took_effect(server: EmbeddedServer) -> None:
    direct = sqs(server.endpoint_url)
    url = direct.create_queue(QueueName="jobs")["QueueUrl"]
    proxy = proxy_for(server, 0.15, throttle=0.1, error5xx=0.0, lost_response=0.1)
    try:
        with pytest.raises(ClientError) as raised:
            sqs(proxy.endpoint_url).send_message(QueueUrl=url, MessageBody="x")
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] >= 500
        assert [m["Body"] for m in direct.receive_message(QueueUrl=url)["Messages"]] == ["x"]
    finally:
        proxy.stop()


def test_an_outage_of_the_results_queue_refuses_only_its_calls(server: EmbeddedServer) -> None:
    direct = sqs(server.endpoint_url)
    jobs = direct.create_queue(QueueName="jobs")["QueueUrl"]
    results = direct.create_queue(QueueName="results")["QueueUrl"]
    proxy = proxy_for(server, 0.99, throttle=0.0, error5xx=0.0, lost_response=0.0)
    try:
        proxy.outage("results", 30)
        client = sqs(proxy.endpoint_url)
        with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
            client.send_message(QueueUrl=results, MessageBody="r")
        client.send_message(QueueUrl=jobs, MessageBody="j")
        assert proxy.fault_counts() == {"outage_refused": 1}
    finally:
        proxy.stop()


def test_a_missing_results_queue_answers_queue_does_not_exist_until_it_is_back(
    server: EmbeddedServer,
) -> None:
    """A permanent error, the server's own: the caller cannot tell it from a deleted queue."""
    direct = sqs(server.endpoint_url)
    jobs = direct.create_queue(QueueName="jobs")["QueueUrl"]
    results = direct.create_queue(QueueName="results")["QueueUrl"]
    direct.create_queue(QueueName="results-dlq")
    proxy = proxy_for(server, 0.99, throttle=0.0, error5xx=0.0, lost_response=0.0)
    try:
        client = sqs(proxy.endpoint_url)
        proxy.missing(0.6)
        with pytest.raises(ClientError) as raised:
            client.send_message_batch(QueueUrl=results, Entries=[{"Id": "0", "MessageBody": "r"}])
        assert raised.value.response["Error"]["Code"] in (
            "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")  # fmt: skip
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        client.send_message(QueueUrl=jobs, MessageBody="j")  # other queues answer
        assert proxy.fault_counts() == {"queue_missing": 1}
        assert "Messages" not in direct.receive_message(QueueUrl=results)
        time.sleep(0.7)
        client.send_message(QueueUrl=results, MessageBody="back")
        assert [m["Body"] for m in direct.receive_message(QueueUrl=results)["Messages"]] == ["back"]
    finally:
        proxy.stop()


def test_accepted_successes_are_counted_per_token_without_keeping_it() -> None:
    proxy = FaultProxy("http://127.0.0.1:9", random.Random(1))
    try:
        body = json.dumps({"taskToken": "t" * 40, "output": "{}"}).encode()
        proxy.record("states:SendTaskSuccess", body, 200)
        proxy.record("states:SendTaskSuccess", body, 400)  # TaskTimedOut: not accepted
        assert proxy.duplicate_successes() == 0
        proxy.record("states:SendTaskSuccess", body, 200)
        assert proxy.duplicate_successes() == 1
        assert "t" * 40 not in repr(proxy.successes) and token_key("t" * 40) in proxy.successes
    finally:
        proxy.stop()


def test_apis_are_named_from_the_target_header() -> None:
    assert api_of({"X-Amz-Target": "AmazonSQS.ReceiveMessage"}) == "sqs:ReceiveMessage"
    assert api_of({"X-Amz-Target": "AWSStepFunctions.SendTaskSuccess"}) == "states:SendTaskSuccess"
    assert api_of({}) is None


def test_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="fault rates"):
        FaultRates(throttle=0.4, error5xx=0.2)
