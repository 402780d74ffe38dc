"""The rules of Lambda's SQS event source mapping, as the embedded stack's mapping keeps them.

Each test states one rule of AWS's mapping (Lambda developer guide: "Using Lambda with Amazon
SQS", "Handling errors for an SQS event source", partial batch responses) and checks it against
:class:`bridge.local_stack.event_source.LocalEventSourceMapping` polling a queue on the embedded
server. The mapping is ours, not moto's, so only the ``embedded`` target applies: on AWS the
same rules hold by definition.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from bridge.contract import encode, parse_job
from bridge.local_stack.event_source import (
    EventSourceSettings,
    LocalEventSourceMapping,
    failed_items,
)
from bridge.local_stack.stack import LocalStack
from tests.support.conformance import Target
from tests.support.messages import make_result
from tests.support.polling import eventually, visible, wait_for_execution

pytestmark = [pytest.mark.conformance, pytest.mark.slow]
#: The conformance ``target`` fixture, on the embedded server only.
EMBEDDED = pytest.mark.parametrize("target", ["embedded"], indirect=True)

Respond = Callable[[dict[str, Any], Any], Any]


class Function:
    """A stand-in Lambda function: records every invocation, answers with ``respond``."""

    def __init__(self, respond: Respond | None = None) -> None:
        self.respond = respond or (lambda event, context: {"batchItemFailures": []})
        self.batches: list[list[str]] = []
        self.remaining_ms: list[int] = []
        self.invoked_at: list[float] = []
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self._lock:
            self.batches.append([r["body"] for r in event["Records"]])
            self.remaining_ms.append(context.get_remaining_time_in_millis())
            self.invoked_at.append(time.monotonic())
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            return self.respond(event, context)
        finally:
            with self._lock:
                self.active -= 1

    @property
    def records(self) -> list[str]:
        with self._lock:
            return [body for batch in self.batches for body in batch]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown, so a function held back in a test lets its thread end."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def mapping(target: Target, release: threading.Event) -> Iterator[Any]:
    """``mapping(queue_url, function, **settings)`` starts a mapping, stopped at teardown."""
    started: list[LocalEventSourceMapping] = []

    def start(queue_url: str, function: Function, **settings: Any) -> LocalEventSourceMapping:
        esm = LocalEventSourceMapping(
            target.sqs,
            queue_url,
            function,
            region="us-east-1",
            settings=EventSourceSettings(**settings),
        ).start()
        started.append(esm)
        return esm

    yield start
    release.set()
    for esm in started:
        esm.stop()


def send(target: Target, queue_url: str, *bodies: str) -> None:
    for start in range(0, len(bodies), 10):
        target.sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start:][:10])],
        )


def in_queue(target: Target, queue_url: str) -> int:
    """Messages still in the queue: visible or in flight."""
    return in_queue_of(target.sqs, queue_url)


def in_queue_of(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def receive(sqs: Any, queue_url: str, count: int) -> list[dict[str, Any]]:
    messages: dict[str, dict[str, Any]] = {}

    def probe() -> bool:
        for m in sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            messages[m["MessageId"]] = m
        return len(messages) >= count

    assert eventually(probe, 20), f"{len(messages)} of {count} messages on {queue_url}"
    return list(messages.values())


def inject_throttling(client: Any, throttle: Callable[[], bool]) -> None:
    """Answer SendTaskSuccess with ThrottlingException whenever ``throttle()`` says so
    (a botocore ``before-call`` hook on the real client; other calls reach the server)."""

    def hook(**_: Any) -> Any:
        if not throttle():
            return None
        error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
        parsed = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return AWSResponse("https://states.invalid", 400, {}, None), parsed

    client.meta.events.register("before-call.stepfunctions.SendTaskSuccess", hook)


def fail_bodies(*bodies: str) -> Respond:
    def respond(event: dict[str, Any], context: Any) -> Any:
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] in bodies
            ]
        }

    return respond


@EMBEDDED
def test_records_reported_processed_are_deleted_and_failures_come_back(
    target: Target, mapping: Any
) -> None:
    queue = target.queue("esm-partial", VisibilityTimeout="1")
    function = Function(fail_bodies("b"))
    mapping(queue, function, function_timeout_s=2)
    send(target, queue, "a", "b", "c")
    assert eventually(lambda: function.records.count("b") >= 2, 10), function.batches
    assert function.records.count("a") == 1 and function.records.count("c") == 1
    assert in_queue(target, queue) == 1  # only the failed record is left


@EMBEDDED
@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"messageId": "wrong key name"}]},
        {"batchItemFailures": "not a list"},
        "not a JSON object",
    ],
    ids=["unknown-id", "empty-id", "null-id", "bad-key", "not-a-list", "not-an-object"],
)
def test_an_invalid_partial_response_fails_the_whole_batch(
    target: Target, mapping: Any, response: Any
) -> None:
    queue = target.queue("esm-invalid", VisibilityTimeout="1")
    function = Function(lambda event, context: response)
    mapping(queue, function, function_timeout_s=2)
    send(target, queue, "a", "b")
    assert eventually(lambda: len(function.records) >= 4, 10), function.batches
    assert sorted(function.records[:4]) == ["a", "a", "b", "b"]  # nothing was deleted
    assert in_queue(target, queue) == 2


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"statusCode": 200}],
    ids=["null", "empty", "empty-list", "null-list", "no-key"],
)
def test_responses_that_name_no_failure_delete_the_whole_batch(response: Any) -> None:
    records = [{"messageId": "m-1"}, {"messageId": "m-2"}]
    assert failed_items(response, records) == set()


@EMBEDDED
def test_a_function_that_raises_fails_the_whole_batch(target: Target, mapping: Any) -> None:
    queue = target.queue("esm-raise", VisibilityTimeout="1")

    def respond(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("boom")

    function = Function(respond)
    mapping(queue, function, function_timeout_s=2)
    send(target, queue, "a", "b")
    assert eventually(lambda: len(function.records) >= 4, 10), function.batches
    assert in_queue(target, queue) == 2


@EMBEDDED
def test_an_invocation_past_the_function_timeout_fails_the_whole_batch(
    target: Target, mapping: Any, release: threading.Event
) -> None:
    queue = target.queue("esm-timeout", VisibilityTimeout="1")

    first = iter([True])

    def respond(event: dict[str, Any], context: Any) -> Any:
        if next(first, False):
            release.wait(3)  # overruns the 0.5 s timeout, then claims success: too late
        return {"batchItemFailures": []}

    function = Function(respond)
    mapping(queue, function, function_timeout_s=0.5)
    send(target, queue, "a")
    assert eventually(lambda: len(function.batches) >= 2, 10), function.batches
    assert function.batches[:2] == [["a"], ["a"]]  # redelivered after the visibility timeout
    assert 0 < function.remaining_ms[0] <= 500  # the context counts down from the timeout
    assert eventually(lambda: in_queue(target, queue) == 0, 5)  # the second run deleted it


@EMBEDDED
def test_the_batching_window_gathers_records_until_it_ends(target: Target, mapping: Any) -> None:
    queue = target.queue("esm-window", VisibilityTimeout="10")
    function = Function()
    mapping(queue, function, batch_size=20, maximum_batching_window_s=1.5, function_timeout_s=2)
    sent = time.monotonic()
    send(target, queue, "a", "b", "c")
    time.sleep(0.4)
    send(target, queue, "d", "e")
    assert eventually(lambda: function.batches, 10)
    assert sorted(function.batches[0]) == ["a", "b", "c", "d", "e"]  # one invocation
    assert function.invoked_at[0] - sent >= 1.0  # it waited for the window, not for more


@EMBEDDED
def test_a_full_batch_does_not_wait_for_the_window(target: Target, mapping: Any) -> None:
    queue = target.queue("esm-full", VisibilityTimeout="10")
    function = Function()
    mapping(queue, function, batch_size=3, maximum_batching_window_s=20, function_timeout_s=2)
    sent = time.monotonic()
    send(target, queue, *"abcdefg")
    assert eventually(lambda: len(function.batches) >= 2, 10)
    assert all(len(batch) <= 3 for batch in function.batches)
    assert function.invoked_at[1] - sent < 5  # far less than the 20 s window


@EMBEDDED
def test_without_a_window_records_are_delivered_at_once(target: Target, mapping: Any) -> None:
    queue = target.queue("esm-nowindow", VisibilityTimeout="10")
    function = Function()
    mapping(queue, function, function_timeout_s=2)
    sent = time.monotonic()
    send(target, queue, "a")
    assert eventually(lambda: function.batches, 10)
    assert function.invoked_at[0] - sent < 1.5


@EMBEDDED
def test_maximum_concurrency_caps_concurrent_invocations(
    target: Target, mapping: Any, release: threading.Event
) -> None:
    queue = target.queue("esm-concurrency", VisibilityTimeout="10")
    function = Function(lambda event, context: (release.wait(5), None)[1])
    mapping(queue, function, batch_size=1, maximum_concurrency=3, function_timeout_s=8)
    send(target, queue, *"abcdefgh")
    assert eventually(lambda: function.active == 3, 10)
    time.sleep(0.3)  # a fourth invocation would have started by now
    assert function.active == 3
    assert visible(target.sqs, queue) == 5  # the rest waits in the queue, not in the poller
    release.set()
    assert eventually(lambda: in_queue(target, queue) == 0, 10)
    assert function.peak == 3 and sorted(function.records) == list("abcdefgh")


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"batch_size": 11}, "needs maximum_batching_window_s >= 1"),
        ({"batch_size": 0}, "batch_size must be between 1 and 10000"),
        ({"maximum_batching_window_s": 301}, "maximum_batching_window_s"),
        ({"function_timeout_s": 901}, "function_timeout_s"),
        ({"maximum_concurrency": 0}, "maximum_concurrency"),
    ],
)
def test_settings_aws_would_refuse_are_refused(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        EventSourceSettings(**settings)


@pytest.mark.slow
def test_the_completion_handler_behind_the_embedded_mapping_rides_out_throttling() -> None:
    """The embedded stack end to end: results reach the real completion handler through the
    mapping, whose function timeout bounds the handler's own retries."""
    throttled = iter(range(2))
    with LocalStack(event_source_settings=EventSourceSettings(function_timeout_s=3)) as stack:
        assert stack.clients and stack.config and stack.completion_clients
        inject_throttling(stack.completion_clients.sfn, lambda: next(throttled, None) is not None)
        sqs, config = stack.clients.sqs, stack.config
        execution = stack.clients.sfn.start_execution(
            stateMachineArn=config.state_machine_arn, input='{"jobs": [{"n": 1}, {"n": 2}]}'
        )["executionArn"]
        jobs = [parse_job(m["Body"]) for m in receive(sqs, config.jobs_queue_url or "", 2)]
        for job in jobs:
            result = make_result(token=job.token, job_id=job.job_id, output={"n": job.map_index})
            sqs.send_message(QueueUrl=config.results_queue_url, MessageBody=encode(result))
        described = wait_for_execution(stack.clients.sfn, execution, 20)
        assert described["status"] == "SUCCEEDED"
        assert sorted(o["output"]["n"] for o in json.loads(described["output"])) == [0, 1]
        assert next(throttled, None) is None  # both throttles were answered and ridden out
        assert in_queue_of(sqs, config.results_queue_url or "") == 0
        assert in_queue_of(sqs, config.results_dlq_url or "") == 0
