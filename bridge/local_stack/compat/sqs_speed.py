"""SQS calls whose cost does not grow with the queue's depth.

**AWS.** A standard queue's backlog is unlimited and it can hold about 120,000 messages in flight
(`SQS standard queue quotas`_); it supports "a nearly unlimited number of API calls per second"
for SendMessage, ReceiveMessage and DeleteMessage (`SQS standard queues`_). What one call costs
does not depend on how many messages wait in the queue: a consumer working through a backlog of
10,000 jobs sees the same latency per ReceiveMessage as on a queue of ten. Messages a consumer has
received stay in the queue, invisible, until their visibility timeout ends or they are deleted
(`SQS visibility timeout`_); delayed messages stay invisible until their delay ends
(`SQS delay queues`_).

**moto 5.2.5.** ``Queue._messages`` is one list holding every message, visible, in flight and
delayed. ``Queue.messages`` (the visible ones) and the three ``ApproximateNumberOfMessages*``
counts filter that list, reading the clock (a ``datetime`` subtraction) for each message, and
``Queue.attributes`` computes all three counts. ``SendMessage`` reads ``Queue.attributes`` once per
message, ``ReceiveMessage`` builds ``Queue.messages`` and reads ``Queue.attributes`` three times per
message it returns (the retention check), and ``DeleteMessage`` / ``ChangeMessageVisibility`` scan
the list for the receipt handle. Every call is linear in the queue's depth, so a Map sending to
a queue with a backlog slows down with it (``python -m benchmarks.sqs_depth`` measures both).

**The index** (standard queues; FIFO queues stay on moto's own code). ``Queue._messages`` becomes a
:class:`MessageStore`: the same ``Message`` objects, in the same (arrival) order, behind the same
list methods moto's own code calls (``append``, ``remove``, iteration, ``len``), plus

* ``ready``: the messages receivable now, and a heap of ``(arrival number, message)``: a receive
  pops the oldest ready messages, which are exactly the ones moto's scan in list order returns;
* ``waiting``: the messages in flight or delayed, with the time each becomes receivable
  (``max(visible_at, delayed_until)``), and a heap of those times: every call first *promotes*
  the due ones to ``ready``; ``delayed`` marks the delayed part of ``waiting``;
* ``handles``: every receipt handle a message in the queue has had, to its message (moto deletes
  a message with any handle it ever had; that stays).

A state change (receive, change visibility, delete, move to the dead-letter queue) updates the
dicts in O(1) and pushes one heap entry; entries are never removed in place but skipped when they
surface stale, and a heap is rebuilt when its stale entries outnumber its live ones. So each call
costs O(k log n) for the k messages it touches, the three counts are O(1) (``len`` of the dicts
after promotion), and one clock read serves a whole call. Receipt handles, receive counts,
visibility, delays, ``deleted_messages`` and ``pending_messages`` keep moto's meaning: the patched
calls are moto's own with the scans replaced by lookups, and could go upstream as such.

Two deliberate differences from moto: a message past the retention period is deleted when a
receive reaches it (moto marks it received and ends the receive early, leaving it in the queue),
as SQS deletes such messages; and a long poll wakes when a message becomes visible again, not on
moto's one-second tick.

.. _SQS standard queue quotas:
   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html
.. _SQS standard queues:
   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues.html
.. _SQS visibility timeout:
   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html
.. _SQS delay queues:
   https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html
"""

from __future__ import annotations

import copy
import heapq
import inspect
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect
from bridge.local_stack.compat.version import CompatError

if TYPE_CHECKING:
    from moto.sqs.models import Message, Queue, SQSBackend

PATCH_NAME = "sqs-flat-cost"

#: Bumped by every ``apply()``: a store built under an earlier application (whose index moto's
#: unpatched code may since have bypassed) is rebuilt on first use.
_generation = 0

#: The longest a long poll sleeps before looking again (moto's own tick), in seconds.
_POLL_TICK_S = 1.0


def _now_ms() -> float:
    """moto's clock (read through its module, so a test that patches it is honoured)."""
    from moto.sqs import models

    return float(models.unix_time_millis())


def _receivable(message: Message, now: float) -> bool:
    """moto's ``visible and not delayed``, at ``now``."""
    return now > message.visible_at and now >= message.delayed_until


class MessageStore:
    """``Queue._messages`` of a standard queue, indexed by when each message is receivable.

    See the module docstring for the structure. Every method expects the queue's
    ``_messages_lock`` held, as moto's ``add_message`` holds it around ``append``."""

    def __init__(self, messages: Iterable[Message], generation: int) -> None:
        self.generation = generation
        self._arrivals = itertools.count()
        self._tiebreak = itertools.count()
        self._arrival: dict[Message, int] = {}  # every message; insertion order = list order
        self._ready: dict[Message, int] = {}
        self._ready_heap: list[tuple[int, Message]] = []
        self._waiting: dict[Message, float] = {}
        self._waiting_heap: list[tuple[float, int, Message]] = []
        self._delayed: set[Message] = set()
        self._handles: dict[str, Message] = {}
        self.extend(messages)

    # -- the list methods moto's code uses on Queue._messages ------------------------------------

    def append(self, message: Message) -> None:
        self._add(message, _now_ms())

    def extend(self, messages: Iterable[Message]) -> None:
        now = _now_ms()
        for message in messages:
            self._add(message, now)

    def remove(self, message: Message) -> None:
        if self._arrival.pop(message, None) is None:
            raise ValueError("MessageStore.remove(x): x not in the queue")
        self._unfile(message)
        for handle in message.all_receipt_handles:
            if handle is not None and self._handles.get(handle) is message:
                del self._handles[handle]
        self._compact()

    def __iter__(self) -> Iterator[Message]:
        return iter(list(self._arrival))  # a snapshot: moto removes while it iterates

    def __len__(self) -> int:
        return len(self._arrival)

    def __contains__(self, message: object) -> bool:
        return message in self._arrival

    def __getitem__(self, index: Any) -> Any:
        return list(self._arrival)[index]

    # -- the index ---------------------------------------------------------------------------------

    def place(self, message: Message, now: float) -> None:
        """File ``message`` (already in the store) by its current visibility and delay."""
        self._unfile(message)
        if _receivable(message, now):
            arrival = self._arrival[message]
            self._ready[message] = arrival
            heapq.heappush(self._ready_heap, (arrival, message))
        else:
            due = max(message.visible_at, message.delayed_until)
            self._waiting[message] = due
            heapq.heappush(self._waiting_heap, (due, next(self._tiebreak), message))
            if now < message.delayed_until:
                self._delayed.add(message)
        self._compact()

    def promote(self, now: float) -> None:
        """Move every waiting message that is receivable at ``now`` to ``ready``."""
        while self._waiting_heap and self._waiting_heap[0][0] <= now:
            due, _, message = heapq.heappop(self._waiting_heap)
            if self._waiting.get(message) != due:
                continue  # stale: deleted or re-filed since
            self.place(message, now)  # to ready, or re-filed by its current visibility
            if self._waiting.get(message, now + 1) <= now:
                break  # visible_at == now to the microsecond: ready on the next call

    def pop_ready(self) -> Message | None:
        """The oldest ready message, taken out of ``ready`` (the caller files or removes it)."""
        while self._ready_heap:
            arrival, message = heapq.heappop(self._ready_heap)
            if self._ready.get(message) == arrival:
                del self._ready[message]
                return message
        return None

    def seconds_until_due(self, now: float) -> float:
        """Until the next waiting message may become receivable (an upper bound on a wait)."""
        return max(0.0, (self._waiting_heap[0][0] - now) / 1000) if self._waiting_heap else 1e9

    def is_ready(self, message: Message) -> bool:
        return message in self._ready

    def remember_handle(self, message: Message) -> None:
        if message.receipt_handle is not None:
            self._handles[message.receipt_handle] = message

    def by_handle(self, receipt_handle: str) -> Message | None:
        return self._handles.get(receipt_handle)

    def counts(self, now: float) -> dict[str, int]:
        """moto's three ``approximate_number_of_messages*`` properties, from the index."""
        self.promote(now)
        delayed = len(self._delayed)
        return {
            "visible": len(self._ready),
            "not_visible": len(self._waiting) - delayed,
            "delayed": delayed,
        }

    def _add(self, message: Message, now: float) -> None:
        if message not in self._arrival:  # a list would hold it twice; moto never appends twice
            self._arrival[message] = next(self._arrivals)
        for handle in message.all_receipt_handles:  # a message moved in from another queue
            if handle is not None:
                self._handles[handle] = message
        self.place(message, now)

    def _unfile(self, message: Message) -> None:
        self._ready.pop(message, None)
        self._waiting.pop(message, None)
        self._delayed.discard(message)

    def _compact(self) -> None:
        """Rebuild a heap whose stale entries outnumber its live ones (amortised O(1))."""
        if len(self._ready_heap) > 2 * len(self._ready) + 64:
            self._ready_heap = [(arrival, m) for m, arrival in self._ready.items()]
            heapq.heapify(self._ready_heap)
        if len(self._waiting_heap) > 2 * len(self._waiting) + 64:
            self._waiting_heap = [
                (due, next(self._tiebreak), m) for m, due in self._waiting.items()
            ]
            heapq.heapify(self._waiting_heap)


def _current(queue: Queue) -> MessageStore | None:
    messages: object = queue._messages
    if isinstance(messages, MessageStore) and messages.generation == _generation:
        return messages
    return None


def indexed(queue: Queue) -> MessageStore | None:
    """``queue``'s store, built on first use (or after moto replaced its list, as PurgeQueue
    does); ``None`` for FIFO queues, which keep moto's own list and code."""
    if queue.fifo_queue:
        return None
    store = _current(queue)
    if store is None:
        with queue._messages_lock:
            store = _current(queue)
            if store is None:
                store = MessageStore(queue._messages, _generation)
                queue._messages = store  # type: ignore[assignment]
    return store


def _take(
    queue: Queue,
    store: MessageStore,
    count: int,
    visibility_timeout: int,
    attribute_names: list[str],
) -> tuple[list[Message], list[Message]]:
    """moto's receive loop over the ready messages only: up to ``count`` received copies, and the
    messages past ``maxReceiveCount`` to move to the dead-letter queue."""
    from moto.sqs.models import _filter_message_attributes

    now = _now_ms()
    store.promote(now)
    retention_ms = int(queue.message_retention_period) * 1000  # type: ignore[attr-defined]
    max_receives = (
        int(queue.redrive_policy["maxReceiveCount"])  # type: ignore[attr-defined]
        if queue.dead_letter_queue is not None and queue.redrive_policy  # type: ignore[attr-defined]
        else None
    )
    result: list[Message] = []
    dead: list[Message] = []
    received: list[Message] = []
    try:
        while len(result) < count and (message := store.pop_ready()) is not None:
            queue.pending_messages.discard(message)  # visible again: its consumer timed out
            if message.sent_timestamp + retention_ms <= now:  # type: ignore[operator]
                store.remove(message)  # past the retention period: SQS deletes it
                queue.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]
                continue
            if max_receives is not None and message.approximate_receive_count >= max_receives:
                store.remove(message)
                dead.append(message)
                continue
            queue.pending_messages.add(message)
            message.mark_received(visibility_timeout=visibility_timeout)
            received.append(message)
            # moto deep-copies, so that filtering the attributes does not touch the stored
            # message; a shallow copy does as much (the filter replaces ``message_attributes``,
            # it does not change the dict) and keeps what the response reads as of now (the
            # receipt handle, receive count and timestamps are replaced, never changed in place).
            received_copy = copy.copy(message)
            _filter_message_attributes(received_copy, attribute_names)
            result.append(received_copy)
    finally:
        # Filed only now, so a message received with VisibilityTimeout=0 (still visible) is
        # returned once per call, as by moto's single pass.
        for message in received:
            store.place(message, now)
            store.remember_handle(message)
    return result, dead


def _receive_message(original: Callable[..., list[Message]]) -> Callable[..., list[Message]]:
    def receive_message(
        self: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Message]:
        queue = self.get_queue(queue_name)
        if indexed(queue) is None:
            return original(
                self,
                queue_name,
                count,
                wait_seconds_timeout,
                visibility_timeout,
                message_attribute_names,
            )
        deadline = time.monotonic() + wait_seconds_timeout
        while True:
            with queue._messages_lock:
                store = indexed(queue)
                assert store is not None
                result, dead = _take(
                    queue, store, count, visibility_timeout, message_attribute_names or []
                )
                remaining = deadline - time.monotonic()
                if not (result or dead) and remaining > 0:
                    # add_message and ChangeMessageVisibility notify; in-flight messages are due
                    # at a known time.
                    queue._messages_lock.wait(
                        min(remaining, store.seconds_until_due(_now_ms()), _POLL_TICK_S)
                    )
                    continue
            for message in dead:  # outside the lock: the dead-letter queue takes its own
                queue.dead_letter_queue.add_message(message)  # type: ignore[union-attr]
            if result or remaining <= 0:
                return result

    return receive_message


def _delete_message(original: Callable[..., None]) -> Callable[..., None]:
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    def delete_message(self: Queue, receipt_handle: str) -> None:
        store = indexed(self)
        if store is None:
            return original(self, receipt_handle)
        if receipt_handle in self.deleted_messages:
            return  # already deleted: moto (and SQS) accept the repeat
        with self._messages_lock:
            message = store.by_handle(receipt_handle)
            if message is None:
                raise ReceiptHandleIsInvalid()
            store.remove(message)
            self.pending_messages.discard(message)
            self.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]
        return None

    return delete_message


def _change_message_visibility(original: Callable[..., None]) -> Callable[..., None]:
    from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid

    def change_message_visibility(
        self: SQSBackend, queue_name: str, receipt_handle: str, visibility_timeout: int
    ) -> None:
        queue = self.get_queue(queue_name)
        store = indexed(queue)
        if store is None:
            return original(self, queue_name, receipt_handle, visibility_timeout)
        with queue._messages_lock:
            message = store.by_handle(receipt_handle)
            if message is None:
                raise ReceiptHandleIsInvalid()
            given = _now_ms() + int(visibility_timeout) * 1000
            if given - message.sent_timestamp > 43200 * 1000:  # type: ignore[operator]
                raise InvalidParameterValue(  # moto's check and text
                    f"Value {visibility_timeout} for parameter VisibilityTimeout is invalid. "
                    "Reason: Total VisibilityTimeout for the message is beyond the limit "
                    "[43200 seconds]"
                )
            message.change_visibility(visibility_timeout)
            store.place(message, _now_ms())
            if store.is_ready(message):
                queue.pending_messages.discard(message)
                queue._messages_lock.notify_all()  # a long poll can take it now
        return None

    return change_message_visibility


def _count(original: property, key: str) -> property:
    def count(self: Queue) -> int:
        store = indexed(self)
        if store is None:
            return int(original.fget(self))  # type: ignore[misc]
        with self._messages_lock:
            return store.counts(_now_ms())[key]

    return property(count, doc=original.__doc__)


#: What the index uses of moto's objects, besides the attributes it replaces.
_MESSAGE_FIELDS = [
    "visible_at",
    "delayed_until",
    "receipt_handle",
    "all_receipt_handles",
    "sent_timestamp",
    "approximate_receive_count",
    "mark_received",
    "change_visibility",
]
_QUEUE_FIELDS = ["_messages", "_messages_lock", "_pending_messages", "deleted_messages"]
_SIGNATURES = {  # the replacements take (and pass on) exactly these parameters
    ("SQSBackend", "receive_message"): (
        "self queue_name count wait_seconds_timeout visibility_timeout message_attribute_names"
    ),
    ("SQSBackend", "change_message_visibility"): (
        "self queue_name receipt_handle visibility_timeout"
    ),
    ("Queue", "delete_message"): "self receipt_handle",
}


def _check_layout(models: Any) -> None:
    expect(models, "_filter_message_attributes")
    expect(models, "unix_time_millis")
    probe = models.Message("compat-probe", "")
    for name in _MESSAGE_FIELDS:
        expect(probe, name)
    init = inspect.getsource(models.Queue.__init__)
    missing = [name for name in _QUEUE_FIELDS if f"self.{name}" not in init]
    if missing:
        raise CompatError(f"Queue.__init__ no longer sets {missing}")
    for (owner, name), parameters in _SIGNATURES.items():
        found = " ".join(inspect.signature(expect(getattr(models, owner), name)).parameters)
        if found != parameters:
            raise CompatError(f"{owner}.{name}({found}) is not ({parameters})")


def _build() -> list[Replacement]:
    """AWS: what an SQS call costs does not depend on the queue's depth (SQS Developer Guide,
    "Amazon SQS standard queue quotas": unlimited backlog, ~120,000 in flight; "Amazon SQS
    standard queues": nearly unlimited API calls per second); a received message stays invisible
    for its visibility timeout ("Amazon SQS visibility timeout"), a delayed one for its delay.

    moto 5.2.5 filters the queue's one message list, reading the clock per message, on every
    SendMessage (through ``Queue.attributes``), ReceiveMessage, DeleteMessage and
    ChangeMessageVisibility: each call is linear in the depth.

    The patch (standard queues; FIFO queues fall through to moto's own code) turns
    ``Queue._messages`` into a :class:`MessageStore` (ready heap by arrival, waiting heap by due
    time, receipt-handle dict; see the module docstring) and replaces
    ``Queue.approximate_number_of_messages{,_not_visible,_delayed}``, ``Queue.delete_message``,
    ``SQSBackend.receive_message`` and ``SQSBackend.change_message_visibility`` (the batch calls
    loop over these; SendMessage is moto's, appending to the store through ``add_message``)."""
    global _generation
    from moto.sqs import models

    _check_layout(models)
    queue, backend = models.Queue, models.SQSBackend
    _generation += 1
    return [
        *(
            Replacement(
                queue,
                f"approximate_number_of_messages{suffix}",
                _count(expect(queue, f"approximate_number_of_messages{suffix}"), key),
            )
            for suffix, key in (
                ("", "visible"),
                ("_not_visible", "not_visible"),
                ("_delayed", "delayed"),
            )
        ),
        Replacement(queue, "delete_message", _delete_message(expect(queue, "delete_message"))),
        Replacement(
            backend, "receive_message", _receive_message(expect(backend, "receive_message"))
        ),
        Replacement(
            backend,
            "change_message_visibility",
            _change_message_visibility(expect(backend, "change_message_visibility")),
        ),
    ]


PATCHES: list[Patch] = [
    Patch(
        name=PATCH_NAME,
        aws_behaviour=(
            "SQS call cost does not depend on queue depth (standard queues: unlimited backlog, "
            "~120,000 in flight, nearly unlimited API calls per second; SQS Developer Guide, "
            "'Amazon SQS standard queue quotas' and 'Amazon SQS standard queues'); visibility "
            "timeouts and delays as in 'Amazon SQS visibility timeout' and 'Amazon SQS delay "
            "queues'. FIFO queues keep moto's own code."
        ),
        build=_build,
    )
]
