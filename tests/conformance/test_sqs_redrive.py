"""DLQ redrive: StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask.

On stock moto these actions answer 500 "not implemented"; clients for them here do not retry, so
the canaries fail in well under a second instead of backing off for ~15 s.
"""

from __future__ import annotations

import threading
import urllib.parse
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.local_stack import compat
from bridge.local_stack.compat import CompatError, sqs_redrive
from bridge.local_stack.server import EmbeddedServer
from tests.support.aws import loopback_client
from tests.support.conformance import Target, receive_one
from tests.support.polling import eventually

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

MOVE_TASKS = "sqs-message-move-tasks"
QUERY_AUTH = (  # moto routes an unsigned query-protocol request by its credential scope
    "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
TRACE = {"trace": {"DataType": "String", "StringValue": "t-42"}}


def move_client(target: Target) -> Any:
    """``target.sqs``, without retries locally (stock moto answers these actions with a 500)."""
    return target.sqs if target.is_aws else loopback_client("sqs", target.sqs.meta.endpoint_url)


def depth(target: Target, url: str) -> int:
    attributes = target.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def dead_letter(target: Target, source: str, dlq: str, bodies: list[str]) -> None:
    """Send ``bodies`` to ``source`` and receive them until all of them are on ``dlq``."""
    expected = depth(target, dlq) + len(bodies)
    for body in bodies:
        target.sqs.send_message(QueueUrl=source, MessageBody=body, MessageAttributes=TRACE)

    def moved() -> bool:
        target.sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10)
        return depth(target, dlq) >= expected

    assert eventually(moved, timeout_s=30), f"{len(bodies)} messages never reached the DLQ"


def pipe(target: Target, suffix: str, count: int) -> tuple[str, str, str]:
    """A source queue (maxReceiveCount 1, visibility 0) whose DLQ holds ``count`` messages."""
    source, dlq = target.queue_with_dlq(suffix, max_receive_count=1, visibility_timeout_s=0)
    dead_letter(target, source, dlq, [f"{suffix}-{i}" for i in range(count)])
    return source, dlq, target.queue_arn(dlq)


def latest_task(client: Any, source_arn: str) -> dict[str, Any]:
    return dict(client.list_message_move_tasks(SourceArn=source_arn)["Results"][0])


def wait_task(
    client: Any, source_arn: str, status: str, moved: int | None = None
) -> dict[str, Any]:
    """The latest task once it has ``status`` (and ``moved`` messages; AWS's count lags)."""
    last: dict[str, Any] = {}

    def probe() -> bool:
        last.clear()
        last.update(latest_task(client, source_arn))
        count = last["ApproximateNumberOfMessagesMoved"]
        return last["Status"] == status and (moved is None or count == moved)

    assert eventually(probe, 30, every_s=0.2), f"the task never became {status}: {last}"
    return last


def bodies_on(target: Target, url: str, count: int) -> set[str]:
    """Receive (and delete) ``count`` messages from ``url``; their bodies."""
    bodies: set[str] = set()
    while len(bodies) < count:
        message = receive_one(target, url)
        target.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        bodies.add(message["Body"])
    return bodies


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return str(info.value.response["Error"]["Code"])


@pytest.mark.gap(MOVE_TASKS)
def test_redrive_without_destination_returns_messages_to_their_source(target: Target) -> None:
    source, dlq, dlq_arn = pipe(target, "home", 1)
    original = receive_one(target, dlq, VisibilityTimeout=0)
    move_client(target).start_message_move_task(SourceArn=dlq_arn)

    back = receive_one(target, source, MessageAttributeNames=["All"])
    assert back["Body"] == "home-0"
    assert back["MessageAttributes"] == TRACE
    assert back["MessageId"] != original["MessageId"]  # "considered new messages"
    wait_task(move_client(target), dlq_arn, "COMPLETED", moved=1)
    assert depth(target, dlq) == 0


@pytest.mark.gap(MOVE_TASKS)
def test_redrive_without_destination_uses_each_messages_own_source(target: Target) -> None:
    dlq = target.queue("shared-dlq")
    dlq_arn = target.queue_arn(dlq)
    policy = f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": 1}}'
    sources = [target.queue(f"src{i}", VisibilityTimeout="0", RedrivePolicy=policy) for i in (1, 2)]
    for index, source in enumerate(sources):
        dead_letter(target, source, dlq, [f"from-{index}"])
    move_client(target).start_message_move_task(SourceArn=dlq_arn)

    assert receive_one(target, sources[0])["Body"] == "from-0"
    assert receive_one(target, sources[1])["Body"] == "from-1"


@pytest.mark.gap("sqs-dead-letter-source")
def test_dead_lettered_message_carries_its_source_arn(target: Target) -> None:
    source, dlq, _ = pipe(target, "origin", 1)
    dead = receive_one(target, dlq, MessageSystemAttributeNames=["DeadLetterQueueSourceArn"])
    assert dead["Attributes"]["DeadLetterQueueSourceArn"] == target.queue_arn(source)


@pytest.mark.gap(MOVE_TASKS)
def test_redrive_to_a_destination_runs_then_completes(target: Target) -> None:
    _, dlq, dlq_arn = pipe(target, "dest", 2)
    destination = target.queue("elsewhere")
    destination_arn = target.queue_arn(destination)
    client = move_client(target)
    handle = client.start_message_move_task(
        SourceArn=dlq_arn, DestinationArn=destination_arn, MaxNumberOfMessagesPerSecond=1
    )["TaskHandle"]

    running = latest_task(client, dlq_arn)  # 2 messages at 1/s: still running
    assert running["Status"] == "RUNNING"
    assert running["TaskHandle"] == handle
    assert running["ApproximateNumberOfMessagesToMove"] == 2
    assert running["DestinationArn"] == destination_arn
    assert running["MaxNumberOfMessagesPerSecond"] == 1

    done = wait_task(client, dlq_arn, "COMPLETED", moved=2)
    assert "TaskHandle" not in done  # "only populated for tasks that are in RUNNING status"
    assert done["SourceArn"] == dlq_arn
    assert done["StartedTimestamp"]
    assert bodies_on(target, destination, 2) == {"dest-0", "dest-1"}
    assert depth(target, dlq) == 0


@pytest.mark.gap(MOVE_TASKS)
def test_only_one_active_task_per_source_queue(target: Target) -> None:
    _, _, dlq_arn = pipe(target, "twice", 3)
    client = move_client(target)
    handle = client.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=1)[
        "TaskHandle"
    ]
    try:
        code = error_code(client.start_message_move_task, SourceArn=dlq_arn)
        assert code == "InvalidParameterValue"
    finally:
        client.cancel_message_move_task(TaskHandle=handle)


@pytest.mark.gap(MOVE_TASKS)
def test_source_must_be_a_dead_letter_queue(target: Target) -> None:
    plain_arn = target.queue_arn(target.queue("plain"))
    client = move_client(target)
    assert error_code(client.start_message_move_task, SourceArn=plain_arn) == (
        "InvalidParameterValue"
    )
    _, _, dlq_arn = pipe(target, "nodest", 1)
    missing = plain_arn + "-missing"
    code = error_code(client.start_message_move_task, SourceArn=dlq_arn, DestinationArn=missing)
    assert code == "ResourceNotFoundException"


@pytest.mark.gap(MOVE_TASKS)
def test_cancel_stops_a_running_task(target: Target) -> None:
    _, dlq, dlq_arn = pipe(target, "cancel", 5)
    client = move_client(target)
    handle = client.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=1)[
        "TaskHandle"
    ]
    moved = client.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    assert moved < 5

    cancelled = wait_task(client, dlq_arn, "CANCELLED")
    assert cancelled["ApproximateNumberOfMessagesMoved"] < 5
    assert depth(target, dlq) > 0  # it "can only stop the messages that have not been moved yet"


# --- the patch itself (not a conformance behaviour) -------------------------------------------


def _move_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sqs-move-task-")]


def _post(url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
    """POST ``form`` (SQS query protocol) or ``{}`` (moto API) to ``url``."""
    data = urllib.parse.urlencode(form).encode() if form is not None else b"{}"
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": QUERY_AUTH}
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def test_tasks_stop_on_reset_and_on_revert_which_removes_the_actions() -> None:
    compat.apply(sqs_redrive.PATCHES)
    server = EmbeddedServer().start()
    try:
        target = Target("embedded", loopback_client("sqs", server.endpoint_url), None, "")
        _, _, dlq_arn = pipe(target, "reset", 3)
        target.sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=1)
        assert _move_threads()
        _post(server.endpoint_url + "/moto-api/reset")  # a new stack resets moto's backends
        assert eventually(lambda: not _move_threads(), timeout_s=5)

        _, _, dlq_arn = pipe(target, "revert", 3)
        form = {"Action": "StartMessageMoveTask", "Version": "2012-11-05", "SourceArn": dlq_arn}
        status, body = _post(
            server.endpoint_url + "/", form | {"MaxNumberOfMessagesPerSecond": "1"}
        )
        assert status == 200 and "<TaskHandle>" in body  # the query protocol works too
        assert _move_threads()

        compat.revert()
        assert not _move_threads()
        with pytest.raises(ClientError) as info:
            target.sqs.list_message_move_tasks(SourceArn=dlq_arn)
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    finally:
        server.stop()
        compat.revert()


def test_patch_refuses_to_apply_once_moto_implements_the_actions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.sqs.responses import SQSResponse

    monkeypatch.setattr(SQSResponse, "list_message_move_tasks", lambda self: None, raising=False)
    with pytest.raises(CompatError, match="sqs-message-move-tasks"):
        compat.apply(sqs_redrive.PATCHES)
    assert compat.applied() == []
