"""A restart over the spool: take over the results an earlier worker on this host spooled.

A new worker on the same host (a restart) loads the spool at start and sends what is there
(:meth:`consumers.held_results.HeldResults.load_spool`). It hides the job messages again with
the receipt handles the spool kept (SQS takes a handle while its message is in flight), so no
other worker receives them meanwhile. A message whose visibility lapsed first comes back through
the queue, and the worker that receives it holds it without running it
(:meth:`~consumers.held_results.HeldResults.answer_delivery`), then deletes it once the result
is out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge.batching import SQS_MAX_BATCH
from bridge.contract import ContractError, parse_result
from consumers.pending import Pending
from consumers.spool import Spool

log = logging.getLogger(__name__)

#: Told of each job message taken back: (its result, the receipt handle that hid it again).
TakenCallback = Callable[[Pending, str], None]


def load(spool: Spool) -> list[Pending]:
    """What the spool holds, as results whose job is not in this worker's table: unsent ones
    to send, and sent markers (their job message is deleted when it comes back)."""
    pendings = []
    for entry in spool.load():
        try:
            result = parse_result(entry.body)
        except ContractError:  # Spool.load checked it: cannot happen
            log.exception("spooled result of %s unreadable", entry.describe())
            continue
        pending = Pending(result, entry.message_id, None, entry.body, spooled=entry)
        pending.in_table, pending.sent = False, entry.sent
        pendings.append(pending)
    return pendings


def take_back(
    sqs: Any, jobs_queue_url: str, hold_s: int, pendings: list[Pending], taken: TakenCallback
) -> None:
    """Hide again the job messages of results spooled before this start, with the receipt
    handles the spool kept: while a message's visibility timeout has not lapsed, SQS still
    takes its last handle, and no other worker can receive (and run) it meanwhile. A message
    no longer in flight is taken when it comes back."""
    for start in range(0, len(pendings), SQS_MAX_BATCH):
        chunk = pendings[start : start + SQS_MAX_BATCH]
        handles = [p.spooled.receipt_handle if p.spooled else None for p in chunk]
        try:
            response = sqs.change_message_visibility_batch(
                QueueUrl=jobs_queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": hold_s}
                    for i, h in enumerate(handles)
                ],
            )
        except (BotoCoreError, ClientError) as exc:
            log.warning(
                "could not take back %d job messages held before this start (%s); each "
                "is taken when it comes back",
                len(chunk),
                exc,
            )
            continue
        refused = {int(f["Id"]): f.get("Code") for f in response.get("Failed", [])}
        for i, (pending, handle) in enumerate(zip(chunk, handles, strict=True)):
            if i in refused or handle is None:
                log.info(
                    "the job message of %s is no longer held (%s): taken when it comes back",
                    pending.spooled.describe() if pending.spooled else pending.message_id,
                    refused.get(i),
                )
                continue
            taken(pending, handle)
