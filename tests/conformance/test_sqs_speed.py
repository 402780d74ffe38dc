"""SQS cost flat in queue depth (patch ``sqs-flat-cost``) without a change in SQS semantics.

The canary counts work, not time: how many distinct moto ``Message`` objects one call touches
(any attribute read) at a depth of 2,000. Stock moto scans the whole queue on every call; the
index touches the messages the call returns or adds. The functional tests state the semantics
the index must keep; they run on the embedded stack, on moto as shipped, and (opt-in) on AWS.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.local_stack import compat
from tests.support.conformance import Target, local_only, receive_all, receive_one, send_batch
from tests.support.polling import eventually

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

PATCH = "sqs-flat-cost"
DEPTH = 2_000
#: A 10-message call touches its 10 messages and their 10 response copies; anything
#: proportional to the depth is far above this.
BOUND = 50
REGION = "us-east-1"


def moto_queue(url: str) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    return sqs_backends[DEFAULT_ACCOUNT_ID][REGION].get_queue(url.rsplit("/", 1)[1])


def fill(url: str, count: int) -> None:
    """Queue ``count`` messages as SendMessage leaves them, straight into moto's backend: through
    the API, stock moto would take minutes (each send scans the queue) to build the depth."""
    from moto.sqs.models import Message

    queue = moto_queue(url)
    for n in range(count):
        message = Message(str(uuid.uuid4()), f"filler-{n}")
        message.mark_sent()
        queue.add_message(message)


def counts(target: Target, url: str) -> tuple[int, int, int]:
    """(visible, not visible, delayed)."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = target.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    visible, not_visible, delayed = (int(attributes[name]) for name in names)
    return visible, not_visible, delayed


@contextmanager
def messages_touched() -> Iterator[set[int]]:
    """The ids of the moto ``Message`` objects whose attributes anything reads meanwhile."""
    from moto.sqs.models import Message

    touched: set[int] = set()

    def spy(self: Any, name: str) -> Any:
        touched.add(id(self))
        return object.__getattribute__(self, name)

    Message.__getattribute__ = spy  # type: ignore[method-assign,assignment]
    try:
        yield touched
    finally:
        del Message.__getattribute__


# --- the canary: work per call does not grow with depth --------------------------------------


@pytest.mark.gap(PATCH)
def test_a_call_touches_only_the_messages_it_returns_or_adds(target: Target) -> None:
    local_only(target)
    url = target.queue("depth", VisibilityTimeout="300")
    fill(url, DEPTH)
    assert counts(target, url) == (DEPTH, 0, 0)  # (also builds the index: not measured)

    with messages_touched() as touched:
        received = target.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 10
    assert len(touched) <= BOUND, f"ReceiveMessage touched {len(touched)} of {DEPTH} messages"

    with messages_touched() as touched:
        send_batch(target, url, [f"new-{n}" for n in range(10)])
    assert len(touched) <= BOUND, f"SendMessageBatch touched {len(touched)} of {DEPTH} messages"

    handles = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)]
    with messages_touched() as touched:
        target.sqs.change_message_visibility_batch(
            QueueUrl=url, Entries=[{**h, "VisibilityTimeout": 600} for h in handles]
        )
        target.sqs.delete_message_batch(QueueUrl=url, Entries=handles)
    assert len(touched) <= BOUND, f"change/delete touched {len(touched)} of {DEPTH} messages"
    assert counts(target, url) == (DEPTH, 0, 0)


# --- semantics the index keeps ---------------------------------------------------------------


def test_a_received_message_is_invisible_until_its_visibility_timeout_ends(target: Target) -> None:
    url = target.queue("visibility", VisibilityTimeout="300")
    target.sqs.send_message(QueueUrl=url, MessageBody="job")
    first = receive_one(target, url, VisibilityTimeout=2, AttributeNames=["All"])
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    assert target.sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    assert counts(target, url) == (0, 1, 0)
    # A long poll wakes when the timeout ends.
    again = receive_one(target, url, AttributeNames=["All"])
    assert again["Body"] == "job"
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_a_delayed_message_is_counted_as_delayed_then_delivered(target: Target) -> None:
    url = target.queue("delay")
    target.sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)
    target.sqs.send_message(QueueUrl=url, MessageBody="now")
    assert eventually(lambda: counts(target, url) == (1, 0, 1), timeout_s=1)
    first = receive_one(target, url, VisibilityTimeout=300)
    assert first["Body"] == "now"
    assert target.sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    later = receive_one(target, url, VisibilityTimeout=300)
    assert later["Body"] == "later"
    assert eventually(lambda: counts(target, url) == (0, 2, 0), timeout_s=10)


def test_batch_visibility_changes_and_deletes_keep_the_counts(target: Target) -> None:
    url = target.queue("batches", VisibilityTimeout="300")
    send_batch(target, url, [f"m{n}" for n in range(40)])
    received = receive_all(target, url, 40)
    assert sorted(m["Body"] for m in received) == sorted(f"m{n}" for n in range(40))
    assert eventually(lambda: counts(target, url) == (0, 40, 0), timeout_s=10)

    back, done = received[:20], received[20:]
    for start in range(0, 20, 10):
        response = target.sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(back[start : start + 10])
            ],
        )
        assert not response.get("Failed")
        response = target.sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[start : start + 10])
            ],
        )
        assert not response.get("Failed")
    assert eventually(lambda: counts(target, url) == (20, 0, 0), timeout_s=10)
    again = receive_all(target, url, 20)
    assert sorted(m["Body"] for m in again) == sorted(m["Body"] for m in back)


def test_receive_counts_grow_with_each_receive(target: Target) -> None:
    url = target.queue("counts")
    target.sqs.send_message(QueueUrl=url, MessageBody="job")
    for expected in ("1", "2", "3"):
        message = receive_one(target, url, VisibilityTimeout=0, AttributeNames=["All"])
        assert message["Attributes"]["ApproximateReceiveCount"] == expected


def test_redrive_keeps_attributes_and_leaves_other_messages(target: Target) -> None:
    source, dlq = target.queue_with_dlq(
        "redrive-depth", max_receive_count=1, visibility_timeout_s=1
    )
    target.sqs.send_message(
        QueueUrl=source,
        MessageBody="poison",
        MessageAttributes={"trace": {"DataType": "String", "StringValue": "t-7"}},
    )
    receive_one(target, source)  # received once, never deleted
    send_batch(target, source, [f"ok-{n}" for n in range(5)])

    ok = receive_all(target, source, 5, VisibilityTimeout=300, WaitTimeSeconds=1)
    assert sorted(m["Body"] for m in ok if m["Body"] != "poison") == [f"ok-{n}" for n in range(5)]

    def moved() -> list[dict[str, Any]]:
        target.sqs.receive_message(QueueUrl=source, WaitTimeSeconds=1)
        return target.sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"]).get(
            "Messages", []
        )

    dead = eventually(moved, timeout_s=20)
    assert [m["Body"] for m in dead] == ["poison"]
    assert dead[0]["MessageAttributes"]["trace"]["StringValue"] == "t-7"


def test_purge_empties_the_queue_and_it_works_afterwards(target: Target) -> None:
    url = target.queue("purge", VisibilityTimeout="300")
    send_batch(target, url, [f"m{n}" for n in range(12)])
    receive_all(target, url, 3)
    target.sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)
    target.sqs.purge_queue(QueueUrl=url)
    assert eventually(lambda: counts(target, url) == (0, 0, 0), timeout_s=70)
    assert target.sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    target.sqs.send_message(QueueUrl=url, MessageBody="after")
    assert receive_one(target, url)["Body"] == "after"


def test_delete_with_stale_and_repeated_receipt_handles(target: Target) -> None:
    url = target.queue("stale")
    target.sqs.send_message(QueueUrl=url, MessageBody="job")
    old = receive_one(target, url, VisibilityTimeout=1)["ReceiptHandle"]
    new = receive_one(target, url, VisibilityTimeout=300)["ReceiptHandle"]
    assert new != old
    target.sqs.delete_message(QueueUrl=url, ReceiptHandle=old)  # accepted (stale handle)
    target.sqs.delete_message(QueueUrl=url, ReceiptHandle=new)
    target.sqs.delete_message(QueueUrl=url, ReceiptHandle=new)  # a repeat is accepted too
    assert eventually(lambda: counts(target, url) == (0, 0, 0), timeout_s=10)
    with pytest.raises(ClientError) as error:
        target.sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-receipt-handle")
    assert "ReceiptHandleIsInvalid" in str(error.value)


def test_a_long_poll_returns_a_message_sent_while_it_waits(target: Target) -> None:
    url = target.queue("long-poll")
    received: list[dict[str, Any]] = []

    def poll() -> None:
        received.extend(
            target.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10).get("Messages", [])
        )

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)
    started = time.monotonic()
    target.sqs.send_message(QueueUrl=url, MessageBody="wake")
    poller.join(timeout=15)
    assert [m["Body"] for m in received] == ["wake"]
    assert time.monotonic() - started < 8  # woken by the send, not by the end of the poll


def test_a_message_past_the_retention_period_is_not_delivered(target: Target) -> None:
    local_only(target)  # the shortest retention is 60 s: age the message in moto instead
    url = target.queue("retention", MessageRetentionPeriod="60")
    target.sqs.send_message(QueueUrl=url, MessageBody="expired")
    target.sqs.send_message(QueueUrl=url, MessageBody="fresh")
    expired = next(m for m in moto_queue(url)._messages if m.body == "expired")
    expired.sent_timestamp -= 61_000
    bodies: list[str] = []

    def probe() -> bool:
        bodies.extend(
            m["Body"]
            for m in target.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300
            ).get("Messages", [])
        )
        return "fresh" in bodies

    assert eventually(probe, timeout_s=40, every_s=0.5)
    assert "expired" not in bodies


def test_fifo_queues_keep_group_order(target: Target) -> None:
    url = target.queue(
        "order.fifo", FifoQueue="true", ContentBasedDeduplication="true", VisibilityTimeout="300"
    )
    for body in ("a", "b", "c"):
        target.sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    first = target.sqs.receive_message(QueueUrl=url)["Messages"]
    assert [m["Body"] for m in first] == ["a"]
    # The group is locked while "a" is in flight.
    assert target.sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    target.sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    assert [m["Body"] for m in target.sqs.receive_message(QueueUrl=url)["Messages"]] == ["b"]


# --- the patch itself --------------------------------------------------------------------------


def test_a_queue_indexed_before_revert_works_with_moto_as_shipped() -> None:
    """Patches are reverted when a stack stops: a queue the index served keeps working on moto's
    own code, and the next apply() rebuilds its index from what that code did to it."""
    from moto.sqs.models import SQSBackend

    backend = SQSBackend(REGION, "000000000042")
    try:
        compat.apply()
        queue = backend.create_queue("revert", VisibilityTimeout="300")
        for n in range(6):
            backend.send_message(queue.name, f"m{n}")
        in_flight = backend.receive_message(queue.name, 2, 0, 300)
        assert [m.body for m in in_flight] == ["m0", "m1"]
        assert (
            queue.approximate_number_of_messages,
            queue.approximate_number_of_messages_not_visible,
        ) == (4, 2)
        compat.revert()

        # moto's own code, on the store, behind the index's back:
        assert [m.body for m in backend.receive_message(queue.name, 2, 0, 300)] == ["m2", "m3"]
        backend.change_message_visibility(queue.name, in_flight[1].receipt_handle, 0)
        assert (
            queue.approximate_number_of_messages,
            queue.approximate_number_of_messages_not_visible,
        ) == (3, 3)

        compat.apply()
        assert (
            queue.approximate_number_of_messages,
            queue.approximate_number_of_messages_not_visible,
        ) == (3, 3)
        assert [m.body for m in backend.receive_message(queue.name, 10, 0, 300)] == [
            "m1",
            "m4",
            "m5",
        ]
        backend.delete_message(queue.name, in_flight[0].receipt_handle)
        assert queue.approximate_number_of_messages_not_visible == 5
        backend.purge_queue(queue.name)
        assert (
            queue.approximate_number_of_messages,
            queue.approximate_number_of_messages_not_visible,
        ) == (0, 0)
    finally:
        compat.revert()


def test_fifo_queues_keep_moto_s_list() -> None:
    from moto.sqs.models import SQSBackend

    from bridge.local_stack.compat.sqs_speed import MessageStore

    backend = SQSBackend(REGION, "000000000043")
    try:
        compat.apply()
        fifo = backend.create_queue("keep.fifo", FifoQueue="true", ContentBasedDeduplication="true")
        backend.send_message(fifo.name, "x", group_id="g")
        assert type(fifo._messages) is list
        standard = backend.create_queue("standard")
        backend.send_message(standard.name, "x")
        assert isinstance(standard._messages, MessageStore)
    finally:
        compat.revert()


def test_the_index_agrees_with_moto_s_own_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random sends (some delayed), receives (visibility 0, 1 or 5 s), visibility changes and
    deletes (some with stale handles) on a fake clock: after each step, what the index returns
    and counts is what moto's scan with ``Message.visible`` / ``Message.delayed`` finds."""
    import random

    from moto.sqs import models
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    clock = [1_700_000_000_000.0]
    monkeypatch.setattr(models, "unix_time_millis", lambda dt=None: clock[0])
    rng = random.Random(20240611)
    backend = models.SQSBackend(REGION, "000000000044")
    live: set[str] = set()
    handles: list[tuple[str, str]] = []  # (receipt handle, message id), stale ones included
    try:
        compat.apply()
        queue = backend.create_queue("oracle", VisibilityTimeout="5")
        for step in range(800):
            operation = rng.choice(
                ["send", "send", "receive", "receive", "change", "delete", "tick"]
            )
            if operation == "send":
                delay = rng.choice([0, 0, 0, 2])
                live.add(backend.send_message(queue.name, f"m{step}", delay_seconds=delay).id)
            elif operation == "receive":
                scan = [m.id for m in queue._messages if m.visible and not m.delayed]
                got = backend.receive_message(queue.name, 3, 0, rng.choice([0, 1, 5]))
                assert [m.id for m in got] == scan[:3], f"step {step}"
                handles += [(str(m.receipt_handle), m.id) for m in got]
            elif operation == "change" and handles:
                handle, message_id = rng.choice(handles)
                try:
                    backend.change_message_visibility(queue.name, handle, rng.choice([0, 3]))
                except ReceiptHandleIsInvalid:
                    assert message_id not in live
            elif operation == "delete" and handles:
                handle, message_id = handles.pop(rng.randrange(len(handles)))
                backend.delete_message(queue.name, handle)
                live.discard(message_id)
            else:
                clock[0] += rng.choice([1, 500, 1000, 3000])
            messages = list(queue._messages)
            assert {m.id for m in messages} == live, f"step {step}"
            expected = (
                sum(m.visible and not m.delayed for m in messages),
                sum(not m.visible for m in messages),
                sum(m.delayed for m in messages),
            )
            found = (
                queue.approximate_number_of_messages,
                queue.approximate_number_of_messages_not_visible,
                queue.approximate_number_of_messages_delayed,
            )
            assert found == expected, f"step {step}: {operation}"
    finally:
        compat.revert()


@pytest.mark.gap("moto-random-strings")
def test_receipt_handles_and_request_ids_are_not_drawn_a_character_at_a_time(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counts work, not time: stock moto draws each of a message's 185 receipt-handle
    characters (and each response's 52 request-id characters) with its own ``choice``."""
    local_only(target)
    from moto.moto_api._internal.moto_random import MotoRandom

    url = target.queue("handles")
    send_batch(target, url, [f"m-{n}" for n in range(10)])
    drawn: list[int] = []
    original = MotoRandom.choice

    def counting(self: Any, sequence: Any) -> Any:
        drawn.append(1)
        return original(self, sequence)

    monkeypatch.setattr(MotoRandom, "choice", counting)
    received = receive_all(target, url, 10)
    handles = {message["ReceiptHandle"] for message in received}
    assert len(handles) == len(received) == 10  # every receive its own handle
    assert len(drawn) < len(received), f"{len(drawn)} draws for {len(received)} messages"
