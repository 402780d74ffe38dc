"""Read a queue's messages without consuming them.

SQS has no peek: ReceiveMessage is the only way to read a message, and it hides the message for
a visibility timeout. :func:`held` receives everything visible while *holding* what it got (so
each further receive returns new messages, not the same ten again), lets the caller act on the
messages (delete some), and on exit makes every message it did not delete visible again at once
with ``ChangeMessageVisibilityBatch`` (timeout 0), even when the caller raised.

What an operator should know (the CLI says it too):

* every peek counts one receive per message (``ApproximateReceiveCount`` + 1). On a queue with a
  redrive policy that counts toward ``maxReceiveCount``, so callers never peek a source queue
  in a loop, and a dead letter peeked often enough in the DLQ moves on to the archive, where
  it is still listed;
* a message in flight (received by someone else) cannot be seen; the queue's
  ``ApproximateNumberOfMessagesNotVisible`` says how many;
* one ReceiveMessage may return only some of the visible messages (short polls sample a subset
  of servers), hence the loop: long polls until a round brings nothing new.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bridge.ops.inspect.queues import visible_count

BATCH = 10
#: How long each received message stays hidden while the peek goes on.
PEEK_VISIBILITY_S = 30
DEFAULT_LIMIT = 1000


@dataclass
class Held:
    """Messages received from one queue and held invisible until :meth:`release`."""

    sqs: Any
    url: str
    #: MessageId -> the message as ReceiveMessage returned it (latest receipt).
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Messages the queue reported visible before the peek (approximate).
    expected: int = 0
    #: The peek stopped before it saw everything (limit or time).
    incomplete: bool = False
    #: Message ids whose visibility could not be released (they reappear after the timeout).
    unreleased: list[str] = field(default_factory=list)

    def delete(self, message_ids: Iterable[str]) -> list[str]:
        """Delete held messages; returns the ids SQS refused to delete (they stay held)."""
        ids = [mid for mid in message_ids if mid in self.messages]
        failed: list[str] = []
        for chunk in _chunks(ids):
            entries = [
                {"Id": str(i), "ReceiptHandle": self.messages[mid]["ReceiptHandle"]}
                for i, mid in enumerate(chunk)
            ]
            answer = self.sqs.delete_message_batch(QueueUrl=self.url, Entries=entries)
            refused = {int(entry["Id"]) for entry in answer.get("Failed", [])}
            for i, mid in enumerate(chunk):
                if i in refused:
                    failed.append(mid)
                else:
                    del self.messages[mid]
        return failed

    def release(self) -> None:
        """Make every message still held visible again at once."""
        ids = list(self.messages)
        for chunk in _chunks(ids):
            entries = [
                {
                    "Id": str(i),
                    "ReceiptHandle": self.messages[mid]["ReceiptHandle"],
                    "VisibilityTimeout": 0,
                }
                for i, mid in enumerate(chunk)
            ]
            try:
                answer = self.sqs.change_message_visibility_batch(
                    QueueUrl=self.url, Entries=entries
                )
            except Exception:
                self.unreleased.extend(chunk)
                continue
            self.unreleased.extend(chunk[int(entry["Id"])] for entry in answer.get("Failed", []))


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


@contextmanager
def held(
    sqs: Any,
    url: str,
    *,
    limit: int = DEFAULT_LIMIT,
    visibility_s: int = PEEK_VISIBILITY_S,
    wait_s: int = 1,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Held]:
    """Receive up to ``limit`` visible messages of ``url`` and hold them for the ``with`` block.

    Receiving stops when a round brings no new message id once the queue's approximate count
    is reached, after two rounds in a row with nothing new, at ``limit``, or before the first
    messages' visibility would lapse (then ``incomplete`` is set)."""
    batch = Held(sqs, url, expected=visible_count(sqs, url))
    deadline = clock() + visibility_s * 0.8
    try:
        idle_rounds = 0
        while len(batch.messages) < limit:
            if clock() > deadline:
                batch.incomplete = True
                break
            # Long polls (every server answers) until the count is reached; then one short
            # poll confirms nothing is left.
            reached = len(batch.messages) >= batch.expected
            answer = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(BATCH, limit - len(batch.messages)),
                VisibilityTimeout=visibility_s,
                WaitTimeSeconds=0 if reached else wait_s,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            new = 0
            for message in answer.get("Messages", []):
                new += message["MessageId"] not in batch.messages
                batch.messages[message["MessageId"]] = message
            idle_rounds = 0 if new else idle_rounds + 1
            if not new and (reached or idle_rounds >= 2):
                break
        else:
            batch.incomplete = batch.expected > limit
        yield batch
    finally:
        batch.release()


def peek(sqs: Any, url: str, **options: Any) -> Held:
    """The messages of ``url``, all visible again when this returns (see :func:`held`)."""
    with held(sqs, url, **options) as batch:
        return batch
