"""SQS dead-letter queue redrive: ``StartMessageMoveTask``, ``ListMessageMoveTasks``,
``CancelMessageMoveTask`` (moto 5.2.5 answers all three with a 500 "not implemented").

AWS behaviour, from the SQS API reference (``API_StartMessageMoveTask``,
``API_ListMessageMoveTasks``, ``API_CancelMessageMoveTask``) and the developer guide page
"Learn how to configure a dead-letter queue redrive in Amazon SQS"
(``sqs-configure-dead-letter-queue-redrive``):

* StartMessageMoveTask "starts an asynchronous task to move messages from a specified source
  queue to a specified destination queue"; the source must be a queue "configured as [a]
  dead-letter queue (DLQ) of other Amazon SQS queues". Without ``DestinationArn`` "the messages
  will be redriven back to their respective original source queues". "The maximum value for
  messages per second is 500. If this field is left blank, the system will optimize the rate".
  "Only one active message movement task is supported per queue at any given time."
* "All redriven messages are considered new messages with a new messageID and enqueueTime"
  (developer guide); body and message attributes are kept.
* ListMessageMoveTasks "gets the most recent message movement tasks (up to 10)", ``MaxResults``
  "default is 1"; ``Status`` is one of RUNNING, COMPLETED, CANCELLING, CANCELLED, FAILED;
  ``TaskHandle`` "is only populated for tasks that are in RUNNING status"; ``DestinationArn`` and
  ``MaxNumberOfMessagesPerSecond`` only if given; ``FailureReason`` only if FAILED.
* CancelMessageMoveTask: "can only be cancelled when the current status is RUNNING. Cancelling
  [...] does not revert the messages that have already been moved."

Error codes and messages are not in the reference's Errors sections; they are AWS's recorded
answers in LocalStack's AWS-validated snapshots
(``localstack/localstack: tests/aws/services/sqs/test_sqs_move_task.snapshot.json``): a source
that is no DLQ and a second start are ``InvalidParameterValue``, unknown queues and tasks
``ResourceNotFoundException``, a task whose destination disappears ends FAILED with
``FailureReason`` ``AWS.SimpleQueueService.NonExistentQueue``. The task handle has the shape
recorded there: base64 of ``{"taskId": ..., "sourceArn": ...}``.

The move runs in a daemon thread per task through moto's own backend operations (receive from
the DLQ, send to the destination, delete from the DLQ), so it composes with patches that change
how a queue stores its messages. Threads stop when the patch is reverted, and on their own when
moto's backends are reset.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

MAX_RATE = 500  # messages per second (API_StartMessageMoveTask)
LISTED = 10  # ListMessageMoveTasks: "up to 10"
BATCH = 10  # an unthrottled task moves up to 10 messages per receive
IN_FLIGHT_S = 30  # a message's visibility between its receive from the DLQ and its delete
_SOURCES = "_compat_dead_letter_sources"  # on a moto Queue: message id -> source queue ARN
_TASKS = "_compat_message_move_tasks"  # on an SQSBackend: source ARN -> tasks, newest first


def _error(message: str, code: str = "InvalidParameterValue") -> Exception:
    from moto.sqs.exceptions import SQSException

    return SQSException(code, message)


def _locate(arn: str, parameter: str) -> tuple[Any, str]:
    """(moto backend, queue name) for a queue ARN; the queue itself may not exist."""
    from moto.sqs.models import sqs_backends

    parts = str(arn).split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise _error(f"Value {arn} for parameter {parameter} is invalid.")
    return sqs_backends[parts[4]][parts[3]], parts[5]


def _require(arn: str, parameter: str) -> tuple[Any, Any]:
    """(moto backend, Queue) for ``arn``, or AWS's ResourceNotFoundException for ``parameter``."""
    from moto.sqs.exceptions import QueueDoesNotExist

    try:
        backend, name = _locate(arn, parameter)
        return backend, backend.get_queue(name)
    except (KeyError, QueueDoesNotExist):  # KeyError: a region moto does not know
        message = f"The resource that you specified for the {parameter} parameter doesn't exist."
        raise _error(message, "ResourceNotFoundException") from None


def _sources(queue: Any) -> dict[str, str]:
    return queue.__dict__.setdefault(_SOURCES, {})  # type: ignore[no-any-return]


def _tasks(backend: Any) -> dict[str, list[MoveTask]]:
    return backend.__dict__.setdefault(_TASKS, {})  # type: ignore[no-any-return]


# --- sqs-dead-letter-source ------------------------------------------------------------------


def dead_letter_source() -> list[Replacement]:
    """A message SQS moves to a dead-letter queue keeps where it came from: ReceiveMessage
    returns it as the ``DeadLetterQueueSourceArn`` system attribute (a MessageSystemAttributeName
    in the SQS API reference), and StartMessageMoveTask without ``DestinationArn`` sends the
    message back "to their respective original source queues" (StartMessageMoveTask API
    reference). moto 5.2.5 moves the Message object to the DLQ and forgets the source; this
    records it (per DLQ, by message id) when moto adds a message that was in another queue."""
    from moto.sqs.models import Queue
    from moto.sqs.responses import SQSResponse

    add_message = expect(Queue, "add_message")
    receive_response = expect(SQSResponse, "receive_message")

    def recording_add_message(self: Any, message: Any) -> None:
        # moto dead-letters by adding the same Message object to the DLQ: a message that
        # arrives from another queue is being dead-lettered from that queue.
        previous = message.__dict__.get("_compat_queue_arn")
        if previous is not None and previous != self.queue_arn:
            _sources(self)[message.id] = previous
        message._compat_queue_arn = self.queue_arn
        add_message(self, message)

    def receive_message(self: Any) -> Any:
        result = receive_response(self)
        names = {*self._get_param("MessageSystemAttributeNames", [])}
        names.update(self._get_param("AttributeNames", []))
        messages = (result.result or {}).get("Messages", [])
        if messages and names & {"All", "DeadLetterQueueSourceArn"}:
            sources = _sources(self.sqs_backend.get_queue(self._get_queue_name()))
            for message in messages:
                if message["MessageId"] in sources:
                    attributes = message.setdefault("Attributes", {})
                    attributes["DeadLetterQueueSourceArn"] = sources[message["MessageId"]]
        return result

    return [
        Replacement(Queue, "add_message", recording_add_message),
        Replacement(SQSResponse, "receive_message", receive_message),
    ]


# --- sqs-message-move-tasks ------------------------------------------------------------------


@dataclass(eq=False)
class MoveTask:
    """One message movement task; its thread moves batches through moto's backend."""

    source_arn: str
    destination_arn: str | None
    rate: int | None
    to_move: int
    task_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    moved: int = 0
    status: str = "RUNNING"
    failure_reason: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None

    @property
    def handle(self) -> str:
        doc = json.dumps({"taskId": self.task_id, "sourceArn": self.source_arn})
        return base64.b64encode(doc.encode()).decode()

    def describe(self) -> dict[str, Any]:
        """A ListMessageMoveTasks result entry (optional fields only when AWS includes them)."""
        entry = {
            "Status": self.status,
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
            "TaskHandle": self.handle if self.status == "RUNNING" else None,
            "DestinationArn": self.destination_arn,
            "MaxNumberOfMessagesPerSecond": self.rate,
            "FailureReason": self.failure_reason,
        }
        return {key: value for key, value in entry.items() if value is not None}

    def run(self, backend: Any) -> None:
        """Move batches until the DLQ has no visible message, the task is cancelled, or moto's
        backends are reset (``backend`` then no longer knows this task)."""
        started, status, reason = time.monotonic(), "COMPLETED", None
        try:
            while not self.cancel.is_set() and self.registered(backend) and self.move_batch():
                if self.rate:
                    self.cancel.wait(started + self.moved / self.rate - time.monotonic())
        except Exception as exc:  # any failure ends the task, reported as AWS reports it
            status, reason = "FAILED", getattr(exc, "code", None) or f"{type(exc).__name__}: {exc}"
        with self.lock:
            cancelled = self.cancel.is_set() and status == "COMPLETED"
            self.status, self.failure_reason = ("CANCELLED" if cancelled else status), reason
        with _running_lock:
            _running.discard(self)

    def registered(self, backend: Any) -> bool:
        return self in _tasks(backend).get(self.source_arn, [])

    def move_batch(self) -> int:
        backend, name = _locate(self.source_arn, "SourceArn")
        count = min(BATCH, self.rate or BATCH)
        messages = backend.receive_message(name, count, 0, IN_FLIGHT_S, ["All"])
        for index, message in enumerate(messages):
            try:
                self.send_on(message, backend.get_queue(name))
            except Exception:
                for unmoved in messages[index:]:  # visible again at once
                    backend.change_message_visibility(name, unmoved.receipt_handle, 0)
                raise
            backend.delete_message(name, message.receipt_handle)
            self.moved += 1
        return len(messages)

    def send_on(self, message: Any, dlq: Any) -> None:
        """Send ``message`` as a new message (same body and attributes) to its destination."""
        arn = self.destination_arn or _original_source(message, dlq)
        backend, name = _locate(arn, "DestinationArn")
        backend.send_message(
            name,
            message.body,
            message_attributes=message.message_attributes,
            group_id=message.group_id,
            deduplication_id=message.deduplication_id,
            system_attributes=message.system_attributes,
        )
        _sources(dlq).pop(message.id, None)


def _original_source(message: Any, dlq: Any) -> str:
    """Where ``message`` was dead-lettered from; for one that was not (sent straight to the
    DLQ), the DLQ's only source queue."""
    if recorded := _sources(dlq).get(message.id):
        return recorded
    candidates = _locate(dlq.queue_arn, "SourceArn")[0].list_dead_letter_source_queues(dlq.name)
    if len(candidates) != 1:
        raise LookupError(f"message {message.id} has no DeadLetterQueueSourceArn")
    return str(candidates[0].queue_arn)


_running: set[MoveTask] = set()
_running_lock = threading.Lock()


def _stop_all() -> None:
    with _running_lock:
        tasks = list(_running)
    for task in tasks:
        task.cancel.set()
    for task in tasks:
        if task.thread is not None:
            task.thread.join(timeout=5)


def start_message_move_task(
    self: Any, source_arn: str, destination_arn: str | None = None, rate: int | None = None
) -> str:
    backend, source = _require(source_arn, "SourceArn")
    if not backend.list_dead_letter_source_queues(source.name):
        raise _error("Source queue must be configured as a Dead Letter Queue.")
    if destination_arn:
        _require(destination_arn, "DestinationArn")
    if rate is not None and not 1 <= rate <= MAX_RATE:
        raise _error(f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid.")
    registry = _tasks(self).setdefault(source_arn, [])
    if any(task.status in ("RUNNING", "CANCELLING") for task in registry):
        raise _error(
            "There is already a task running. Only one active task is allowed for a source "
            "queue arn at a given time."
        )
    depth = source.approximate_number_of_messages
    task = MoveTask(source_arn, destination_arn or None, rate, depth)
    registry.insert(0, task)
    del registry[LISTED:]
    task.thread = threading.Thread(
        target=task.run, args=(self,), name=f"sqs-move-task-{task.task_id}", daemon=True
    )
    with _running_lock:
        _running.add(task)
    task.thread.start()
    return task.handle


def list_message_move_tasks(
    self: Any, source_arn: str, max_results: int | None = None
) -> list[dict[str, Any]]:
    _require(source_arn, "SourceArn")
    limit = 1 if max_results is None else max_results  # "The default is 1"
    if not 1 <= limit <= LISTED:
        raise _error(f"Value {limit} for parameter MaxResults is invalid.")
    return [task.describe() for task in _tasks(self).get(source_arn, [])[:limit]]


def cancel_message_move_task(self: Any, handle: str) -> int:
    try:
        doc = json.loads(base64.b64decode(handle, validate=True))
        task_id, source_arn = str(doc["taskId"]), str(doc["sourceArn"])
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise _error("Value for parameter TaskHandle is invalid.") from None
    _require(source_arn, "SourceArn")
    for task in _tasks(self).get(source_arn, []):
        with task.lock:
            if task.task_id == task_id and task.status == "RUNNING":
                task.status = "CANCELLING"
                task.cancel.set()
                return task.moved
    raise _error("Task does not exist.", "ResourceNotFoundException")


ACTIONS = {  # SQSResponse/SQSBackend method: (result key, request parameters)
    "start_message_move_task": (
        "TaskHandle",
        "SourceArn DestinationArn MaxNumberOfMessagesPerSecond",
    ),
    "list_message_move_tasks": ("Results", "SourceArn MaxResults"),
    "cancel_message_move_task": ("ApproximateNumberOfMessagesMoved", "TaskHandle"),
}


def _response(action: str) -> Callable[[Any], Any]:
    """The SQSResponse method for ``action``: request parameters in, backend result out."""
    result_key, parameters = ACTIONS[action]

    def respond(self: Any) -> Any:
        from moto.core.responses import ActionResult

        values = [self._get_param(parameter) for parameter in parameters.split()]
        return ActionResult({result_key: getattr(self.sqs_backend, action)(*values)})

    respond.__name__ = action
    return respond


def message_move_tasks() -> list[Replacement]:
    """StartMessageMoveTask, ListMessageMoveTasks and CancelMessageMoveTask as the SQS API
    reference and the developer guide's "configure a dead-letter queue redrive" page describe
    them (quoted in this module's docstring). moto 5.2.5 has none of the three: its server
    answers 500 "The start_message_move_task action has not been implemented". This adds them to
    SQSResponse and SQSBackend, and refuses to apply once moto defines any of them itself."""
    from moto.sqs.models import Queue, SQSBackend
    from moto.sqs.responses import SQSResponse

    for used in ("get_queue", "receive_message", "send_message", "delete_message"):
        expect(SQSBackend, used)
    expect(SQSBackend, "change_message_visibility")
    expect(SQSBackend, "list_dead_letter_source_queues")
    expect(Queue, "approximate_number_of_messages")
    return [
        replacement
        for name in ACTIONS
        for replacement in (
            Replacement(SQSBackend, name, globals()[name], adds=True),
            Replacement(SQSResponse, name, _response(name), adds=True),
        )
    ]


PATCHES: list[Patch] = [
    Patch(
        "sqs-dead-letter-source",
        "a dead-lettered message keeps its source queue (DeadLetterQueueSourceArn)",
        dead_letter_source,
    ),
    Patch(
        "sqs-message-move-tasks",
        "StartMessageMoveTask / ListMessageMoveTasks / CancelMessageMoveTask redrive a DLQ",
        message_move_tasks,
        cleanup=_stop_all,  # no task thread outlives the patch
    ),
]
