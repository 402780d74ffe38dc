"""Send dead letters back to the queue they came from (``callback-bridge dlq redrive``).

The first choice is SQS's own redrive, ``StartMessageMoveTask``, from each dead-letter queue of
a side (the DLQ and the archive) with an explicit ``DestinationArn``: the side's source queue,
because a message the dead-letter handler copied into the archive would otherwise "return" to
the DLQ it came from. The task runs inside SQS; this module waits for it and reports
``ListMessageMoveTasks``' counts.

An endpoint without that API (moto as shipped, other emulators) or a queue SQS will not move
from (not a DLQ of any queue) gets the fallback: receive a batch, send it to the destination,
delete from the source only what the destination accepted, release the rest. Copy first, delete
after: an interruption between the two leaves a duplicate of at most one batch, never a loss;
a stop request (SIGTERM, Ctrl-C) is honoured between batches, so a graceful interruption leaves
neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from bridge.ops.inspect.queues import (
    InspectError,
    Side,
    queue_arn,
    queue_attributes,
    queue_name,
    visible_count,
)

Method = Literal["auto", "move-task", "copy"]
BATCH = 10
#: A received message stays hidden this long while it is being copied.
COPY_VISIBILITY_S = 60
MOVING = ("RUNNING", "CANCELLING")
_UNSUPPORTED_CODES = frozenset(
    {"UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "InvalidAction"}
)


@dataclass
class RedriveResult:
    """One queue's redrive: how, how many, and how it ended."""

    queue: str
    destination: str
    method: str  # "move task" | "copy" | "none"
    moved: int = 0
    failed: int = 0
    to_move: int | None = None
    #: COMPLETED | FAILED | CANCELLED | RUNNING (still going when we stopped waiting) |
    #: STOPPED (copy interrupted on request) | EMPTY
    status: str = "COMPLETED"
    note: str = ""


class MoveTaskUnsupported(Exception):
    """The endpoint or the queue cannot run ``StartMessageMoveTask``; the reason is the text."""


def unsupported(exc: BaseException) -> bool:
    """Whether ``exc`` means "no StartMessageMoveTask here": an unknown operation, or a server
    error that outlasted botocore's retries (moto's server answers an unknown action with a
    bare HTTP 500). Copying instead is always safe: it only ever moves what it received."""
    if isinstance(exc, NotImplementedError | AttributeError):
        return True  # in-process moto; a botocore too old to know the operation
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        message = str(error.get("Message", "")).lower()
        return (
            error.get("Code") in _UNSUPPORTED_CODES
            or "not been implemented" in message
            or status >= 500
        )
    return False


def _reason(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    message = str(error.get("Message", ""))
    if message.lstrip().startswith("<"):  # an HTML error page says nothing more than its status
        message = ""
    code = str(error.get("Code", ""))
    return f"{code}: {message}" if message else f"HTTP {code}" if code.isdigit() else code


def start_move_task(sqs: Any, source_arn: str, destination_arn: str, rate: int | None) -> str:
    """StartMessageMoveTask; :class:`MoveTaskUnsupported` when the endpoint or queue cannot."""
    kwargs: dict[str, Any] = {"SourceArn": source_arn, "DestinationArn": destination_arn}
    if rate:
        kwargs["MaxNumberOfMessagesPerSecond"] = rate
    try:
        return str(sqs.start_message_move_task(**kwargs)["TaskHandle"])
    except ClientError as exc:
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if unsupported(exc) or "must be configured as a Dead Letter Queue" in message:
            raise MoveTaskUnsupported(_reason(exc)) from exc
        raise
    except (NotImplementedError, AttributeError) as exc:
        raise MoveTaskUnsupported(str(exc) or type(exc).__name__) from exc


def wait_move_task(
    sqs: Any,
    source_arn: str,
    result: RedriveResult,
    timeout_s: float,
    poll_s: float = 0.5,
    stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RedriveResult:
    """Poll ListMessageMoveTasks until the newest task of ``source_arn`` ends, the timeout, or
    ``stop()`` (the task itself goes on inside SQS either way)."""
    deadline = clock() + timeout_s
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1).get("Results", [])
        if tasks:
            task = tasks[0]
            result.status = str(task.get("Status", "RUNNING"))
            result.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
            result.to_move = task.get("ApproximateNumberOfMessagesToMove")
            if task.get("FailureReason"):
                result.note = str(task["FailureReason"])
        if result.status not in MOVING:
            return result
        if clock() >= deadline or stop():
            result.note = "still moving inside SQS; 'callback-bridge status' shows the queues"
            return result
        sleep(poll_s)


def copy_messages(
    sqs: Any,
    source_url: str,
    destination_url: str,
    max_per_second: int | None = None,
    stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RedriveResult:
    """Move every message of ``source_url`` to ``destination_url``: send a batch, delete what
    was sent, release what was not. Stops at the first refused send (the rest stays put),
    when the source is empty, or when ``stop()`` says so between batches."""
    result = RedriveResult(queue_name(source_url), queue_name(destination_url), "copy")
    size = min(BATCH, max_per_second or BATCH)
    started, idle = clock(), 0
    while not stop():
        messages = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=size,
            VisibilityTimeout=COPY_VISIBILITY_S,
            WaitTimeSeconds=1 if idle else 0,  # long-poll only when a short poll came back empty
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            idle += 1
            if idle >= 3 or visible_count(sqs, source_url) == 0:
                return result
            continue
        idle = 0
        sent, refused = _send(sqs, destination_url, messages)
        _delete(sqs, source_url, sent)
        result.moved += len(sent)
        if refused:
            _release(sqs, source_url, refused)
            result.failed += len(refused)
            result.status = "FAILED"
            result.note = _refusal(refused)
            return result
        if max_per_second:
            sleep(max(0.0, started + result.moved / max_per_second - clock()))
    result.status = "STOPPED"
    result.note = "interrupted on request; the rest stays where it was"
    return result


def attributes_for_send(message: dict[str, Any]) -> dict[str, Any]:
    kept = {}
    for name, value in message.get("MessageAttributes", {}).items():
        entry = {"DataType": value["DataType"]}
        for key in ("StringValue", "BinaryValue"):
            if key in value:
                entry[key] = value[key]
        kept[name] = entry
    return kept


def _send(
    sqs: Any, url: str, messages: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """SendMessageBatch; (messages sent, messages refused with their error)."""
    entries = []
    for index, message in enumerate(messages):
        entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
        if attributes := attributes_for_send(message):
            entry["MessageAttributes"] = attributes
        entries.append(entry)
    try:
        answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        text = f"{error.get('Code')}: {error.get('Message')}"
        return [], [{**message, "_error": text} for message in messages]
    refused = {entry["Id"]: entry for entry in answer.get("Failed", [])}
    sent = [m for i, m in enumerate(messages) if str(i) not in refused]
    failed = [
        {**m, "_error": f"{refused[str(i)].get('Code')}: {refused[str(i)].get('Message')}"}
        for i, m in enumerate(messages)
        if str(i) in refused
    ]
    return sent, failed


def _delete(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    if messages:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def _release(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    entries = [
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
        for i, m in enumerate(messages)
    ]
    sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def _refusal(refused: list[dict[str, Any]]) -> str:
    return f"destination refused {len(refused)} message(s): {refused[0]['_error']}"


def redrive_side(
    sqs: Any,
    side: Side,
    max_per_second: int | None = None,
    method: Method = "auto",
    timeout_s: float = 600,
    stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[RedriveResult]:
    """Redrive the DLQ and the archive of ``side`` back to its source queue; one result per
    dead-letter queue. ``method``: ``auto`` (move task, else copy), ``move-task``, ``copy``."""
    if not side.source_url:
        raise InspectError(
            f"no {side.name} queue configured ({side.name}_queue_url): nowhere to redrive to"
        )
    destination = side.source_url
    results = []
    for ref in side.dead_letter_queues():
        if stop():
            break
        waiting = queue_attributes(sqs, ref.url, "ApproximateNumberOfMessages")
        if int(waiting.get("ApproximateNumberOfMessages", 0)) == 0:
            results.append(RedriveResult(ref.name, queue_name(destination), "none", status="EMPTY"))
            continue
        fallback = ""
        if method != "copy":
            source_arn, destination_arn = queue_arn(sqs, ref.url), queue_arn(sqs, destination)
            try:
                start_move_task(sqs, source_arn, destination_arn, max_per_second)
            except MoveTaskUnsupported as exc:
                if method == "move-task":
                    raise InspectError(
                        f"StartMessageMoveTask refused for {ref.name}: {exc}"
                    ) from None
                fallback = f"StartMessageMoveTask unavailable ({exc}); copied instead"
            else:
                moving = RedriveResult(ref.name, queue_name(destination), "move task")
                results.append(
                    wait_move_task(
                        sqs, source_arn, moving, timeout_s, stop=stop, clock=clock, sleep=sleep
                    )
                )
                continue
        copied = copy_messages(sqs, ref.url, destination, max_per_second, stop, clock, sleep)
        copied.note = "; ".join(text for text in (fallback, copied.note) if text)
        results.append(copied)
    return results
