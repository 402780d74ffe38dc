"""Dead-letter operations: list, show, fail, purge.

A dead letter is a message in a side's DLQ or archive (:mod:`bridge.ops.inspect.queues`), read
with a peek that consumes nothing (:mod:`bridge.ops.inspect.peek`) and explained by
:mod:`bridge.ops.inspect.explain`. Tokens are shown masked only.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from bridge.contract import ERROR_DEAD_LETTERED, MAX_CAUSE_CHARS, clip
from bridge.errors import describe, is_task_closed
from bridge.ops.inspect.executions import ExecutionLens, details, scrub, tokens_in
from bridge.ops.inspect.explain import DeadLetter, Explainer, Found, attributes_of
from bridge.ops.inspect.peek import Held, held, peek
from bridge.ops.inspect.queues import InspectError, QueueRef, Side

__all__ = [
    "DeadLetter",
    "Explainer",
    "FailReport",
    "Found",
    "Listing",
    "cause_for",
    "detail",
    "fail_dead_letters",
    "find",
    "list_dead_letters",
    "purge",
]

#: How long ``fail`` holds the dead letters it works on.
FAIL_VISIBILITY_S = 120


@dataclass
class Listing:
    """Dead letters of the chosen queues plus what the peek could not see."""

    letters: list[Found] = field(default_factory=list)
    #: queue name -> messages in flight elsewhere (not shown) or "incomplete"
    notes: dict[str, str] = field(default_factory=dict)


def _note(batch: Held) -> str | None:
    notes = []
    if batch.incomplete:
        notes.append("peek incomplete (limit or time reached)")
    if batch.unreleased:
        notes.append(
            f"{len(batch.unreleased)} could not be made visible again "
            "(they return after their visibility timeout)"
        )
    return "; ".join(notes) or None


def list_dead_letters(
    sqs: Any, sides: Iterable[Side], explainer: Explainer, limit: int = 1000
) -> Listing:
    """Peek every DLQ and archive of ``sides``: each message once, all visible afterwards."""
    listing = Listing()
    seen: set[str] = set()
    for side in sides:
        for ref in side.dead_letter_queues():
            batch = peek(sqs, ref.url, limit=limit)  # released before the Step Functions reads
            for message in batch.messages.values():
                if message["MessageId"] not in seen:
                    seen.add(message["MessageId"])
                    listing.letters.append(explainer.explain(ref, message))
            in_flight = _in_flight(sqs, ref.url)
            note = _note(batch)
            if in_flight:
                note = f"{in_flight} in flight (being handled), not shown" + (
                    f"; {note}" if note else ""
                )
            if note:
                listing.notes[ref.name] = note
    return listing


def _in_flight(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))


def find(sqs: Any, sides: Iterable[Side], explainer: Explainer, message_id: str) -> Found:
    """The dead letter with ``message_id``; :class:`InspectError` if no chosen queue has it."""
    refs = [ref for side in sides for ref in side.dead_letter_queues()]
    for ref in refs:
        message = peek(sqs, ref.url).messages.get(message_id)
        if message is not None:
            return explainer.explain(ref, message)
    names = ", ".join(ref.name for ref in refs)
    raise InspectError(f"no dead letter with message id {message_id!r} in {names}")


def detail(found: Found, lens: ExecutionLens, events: int = 10) -> dict[str, Any]:
    """``dlq show``: the dead letter, its decoded message and job input (tokens masked), its
    attributes, the execution's status and its last ``events`` history events."""
    tokens = {found.token} if found.token else set()
    execution: dict[str, Any] | None = None
    last: list[dict[str, Any]] = []
    arn = found.letter.execution_arn
    description = lens.describe(arn) if arn else None
    if arn and description is not None:
        execution = {
            key: description.get(key)
            for key in ("name", "status", "startDate", "stopDate", "error", "cause")
            if description.get(key) is not None
        }
        last = lens.last_events(arn, events)
        tokens |= tokens_in(last) | tokens_in(lens.history(arn)[0])
    job_input = (found.decoded or {}).get("input") if found.ref.side == "jobs" else None
    if job_input is None and found.state.message:
        job_input = found.state.message.get("input")
    shown = found.decoded if found.decoded is not None else found.message.get("Body")
    return scrub(
        {
            **found.letter.to_json(),
            "message": shown,
            "attributes": attributes_of(found.message),
            "job_input": job_input,
            "execution": execution,
            "events": [_event(event) for event in last],
        },
        tokens,
    )


def _event(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event.get("id"),
        "timestamp": str(event.get("timestamp")),
        "type": event.get("type"),
        "details": details(event),
    }


@dataclass
class FailReport:
    """What ``dlq fail`` did: tasks failed (dead letters deleted) and what it left alone."""

    failed: list[str] = field(default_factory=list)
    already_closed: list[str] = field(default_factory=list)
    no_token: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    not_deleted: list[str] = field(default_factory=list)


def cause_for(letter: DeadLetter) -> str:
    """The SendTaskFailure cause: what an execution's reader needs to find the dead letter."""
    text = (
        f"job {letter.job_id or '?'} dead-lettered in {letter.queue}"
        f" after {letter.receive_count if letter.receive_count is not None else '?'} receives"
        f" (source queue {letter.source_queue or '?'}; message {letter.message_id}); "
        f"reason: {letter.reason}; failed by an operator (callback-bridge dlq fail)"
    )
    return clip(text, MAX_CAUSE_CHARS)


def fail_dead_letters(
    sqs: Any,
    sfn: Any,
    sides: Iterable[Side],
    explainer: Explainer,
    message_ids: set[str] | None = None,
) -> FailReport:
    """End the waiting task of each chosen dead letter (all when ``message_ids`` is None) with
    ``Bridge.DeadLettered``, then delete the dead letters whose task it failed. A dead letter
    without a readable token, whose task is already over, or whose call failed is kept.

    Every queue is held first, so an unknown message id is an :class:`InspectError` before
    anything is done (all released)."""
    report = FailReport()
    sides = list(sides)
    with ExitStack() as stack:
        chosen: list[tuple[Held, QueueRef, dict[str, Any]]] = []
        seen: set[str] = set()
        for side in sides:
            for ref in side.dead_letter_queues():
                batch = stack.enter_context(held(sqs, ref.url, visibility_s=FAIL_VISIBILITY_S))
                for mid, message in batch.messages.items():
                    if mid not in seen and (message_ids is None or mid in message_ids):
                        seen.add(mid)
                        chosen.append((batch, ref, message))
        if message_ids is not None and (missing := set(message_ids) - seen):
            names = ", ".join(ref.name for side in sides for ref in side.dead_letter_queues())
            unknown = ", ".join(sorted(missing))
            raise InspectError(f"no dead letter with message id {unknown} in {names}")
        done: dict[int, tuple[Held, list[str]]] = {}
        for batch, ref, message in chosen:
            if fail_one(sfn, explainer.explain(ref, message), report):
                done.setdefault(id(batch), (batch, []))[1].append(message["MessageId"])
        for batch, ids in done.values():
            report.not_deleted.extend(batch.delete(ids))
    return report


def fail_one(sfn: Any, found: Found, report: FailReport) -> bool:
    """Fail ``found``'s waiting task (``Bridge.DeadLettered``); whether it did, and the
    outcome recorded in ``report`` either way."""
    mid = found.letter.message_id
    if not found.token:
        report.no_token.append(mid)
        return False
    if found.state.waiting is False:
        report.already_closed.append(mid)
        return False
    try:
        sfn.send_task_failure(
            taskToken=found.token, error=ERROR_DEAD_LETTERED, cause=cause_for(found.letter)
        )
    except ClientError as exc:
        if is_task_closed(exc):
            report.already_closed.append(mid)
        else:
            report.errors[mid] = describe(exc)
        return False
    report.failed.append(mid)
    return True


def purge(sqs: Any, sides: Iterable[Side]) -> dict[str, int]:
    """PurgeQueue every DLQ and archive of ``sides``; returns the approximate count each held."""
    purged: dict[str, int] = {}
    for side in sides:
        for ref in side.dead_letter_queues():
            attributes = sqs.get_queue_attributes(
                QueueUrl=ref.url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            sqs.purge_queue(QueueUrl=ref.url)
            purged[ref.name] = sum(int(value) for value in attributes.values())
    return purged
