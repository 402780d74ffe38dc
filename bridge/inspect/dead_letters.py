"""Dead letters that explain themselves: list, show, fail, purge.

A dead letter is a message in a side's DLQ or archive (:mod:`bridge.inspect.queues`). Each one
is described by what it carries (the dead-letter handler's and the quarantine's ``bridge-*``
attributes, the job or result body) and, where the attributes are silent, by what SQS and Step
Functions know: ``DeadLetterQueueSourceArn`` names the queue whose redrive policy moved it, and
the execution's history says what became of its task. Tokens are shown masked only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from bridge.aws import TASK_CLOSED_ERRORS
from bridge.contract import (
    ERROR_DEAD_LETTERED,
    MAX_CAUSE_CHARS,
    ContractError,
    clip,
    mask_token,
    parse_job,
    parse_result,
    read_token,
)
from bridge.dead_letter import (
    EXECUTION_ATTRIBUTE,
    JOB_ID_ATTRIBUTE,
    RECEIVE_COUNT_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    TASK_TOLD_ATTRIBUTE,
)
from bridge.inspect.executions import ExecutionLens, TaskState, details, scrub, tokens_in
from bridge.inspect.peek import Held, held
from bridge.inspect.queues import InspectError, QueueRef, Side, queue_name
from bridge.quarantine import REASON_ATTRIBUTE

#: How long ``fail`` holds the dead letters it works on.
FAIL_VISIBILITY_S = 120


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as an operator sees it (no token: only its masked form)."""

    queue: str
    side: str
    role: str
    message_id: str
    job_id: str | None
    job_type: str | None
    execution_name: str | None
    execution_arn: str | None
    sent_at: str | None
    age_s: float | None
    receive_count: int | None
    reason: str
    reason_source: str  # "attribute" | "derived"
    source_queue: str | None
    execution_status: str | None
    task_state: str
    task_waiting: bool | None
    token: str  # masked

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Found:
    """A dead letter together with what it was built from (raw body and token stay here)."""

    letter: DeadLetter
    ref: QueueRef
    message: dict[str, Any]
    token: str | None
    state: TaskState
    decoded: dict[str, Any] | None = None


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    return {
        name: str(value.get("StringValue", value.get("BinaryValue", "")))
        for name, value in message.get("MessageAttributes", {}).items()
    }


def _decode(body: str) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _execution_arn(state_machine_arn: str | None, job_id: str | None) -> str | None:
    """A job id starts with the execution name: with the state machine's ARN that is the
    execution's ARN (for results from consumers older than ``Result.execution_arn``)."""
    if not state_machine_arn or not job_id or ":stateMachine:" not in state_machine_arn:
        return None
    return state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + job_id.split("/")[0]


class Explainer:
    """Turns received messages into :class:`Found` dead letters (one lens, one clock)."""

    def __init__(
        self,
        lens: ExecutionLens,
        state_machine_arn: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.lens = lens
        self.state_machine_arn = state_machine_arn
        self.now = now

    def explain(self, ref: QueueRef, message: dict[str, Any]) -> Found:
        body = message.get("Body", "")
        attributes = _attributes(message)
        system = message.get("Attributes", {})
        decoded = _decode(body)
        problem = self._problem(ref.side, body)
        token = read_token(body)
        fields = decoded or {}
        job_id = attributes.get(JOB_ID_ATTRIBUTE) or _text(fields.get("job_id"))
        execution_arn = (
            attributes.get(EXECUTION_ATTRIBUTE)
            or _text(fields.get("execution_arn"))
            or _execution_arn(self.state_machine_arn, job_id)
        )
        state = self.lens.task_state(execution_arn, job_id, token)
        job_type = _text(fields.get("type")) or _text((state.message or {}).get("type"))
        source = attributes.get(SOURCE_QUEUE_ATTRIBUTE) or system.get("DeadLetterQueueSourceArn")
        receive_count = _receive_count(ref, attributes, system)
        if attributes.get(REASON_ATTRIBUTE):
            reason, reason_source = attributes[REASON_ATTRIBUTE], "attribute"
        else:
            reason = _derived_reason(ref.side, problem, source, receive_count, state)
            reason_source = "derived"
        task = state.describe()
        if attributes.get(TASK_TOLD_ATTRIBUTE):
            task += f"; handler told the task: {attributes[TASK_TOLD_ATTRIBUTE]}"
        sent_ms = system.get("SentTimestamp")
        letter = DeadLetter(
            queue=ref.name,
            side=ref.side,
            role=ref.role,
            message_id=message["MessageId"],
            job_id=job_id,
            job_type=job_type,
            execution_name=execution_arn.rsplit(":", 1)[-1] if execution_arn else None,
            execution_arn=execution_arn,
            sent_at=_iso(int(sent_ms)) if sent_ms else None,
            age_s=round(self.now() - int(sent_ms) / 1000, 1) if sent_ms else None,
            receive_count=receive_count,
            reason=reason,
            reason_source=reason_source,
            source_queue=queue_name(source) if source else None,
            execution_status=state.execution_status,
            task_state=task,
            task_waiting=state.waiting,
            token=mask_token(token),
        )
        return Found(letter, ref, message, token, state, decoded)

    @staticmethod
    def _problem(side: str, body: str) -> str | None:
        try:
            (parse_job if side == "jobs" else parse_result)(body)
        except ContractError as exc:
            return str(exc)
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _receive_count(ref: QueueRef, attributes: dict[str, str], system: dict[str, str]) -> int | None:
    """Receives before the dead letter stopped: the handler's record for an archived copy,
    else SQS's count minus this peek's own receive."""
    if attributes.get(RECEIVE_COUNT_ATTRIBUTE, "").isdigit():
        return int(attributes[RECEIVE_COUNT_ATTRIBUTE])
    count = system.get("ApproximateReceiveCount")
    return max(int(count) - 1, 0) if count else None


def _derived_reason(
    side: str, problem: str | None, source: str | None, receives: int | None, state: TaskState
) -> str:
    parts = []
    if problem:
        parts.append(f"malformed {side[:-1]} ({problem})")
    if source:
        moved = f"moved from {queue_name(source)} by its redrive policy"
        if receives:
            moved += f" after {receives} receives"
        if side == "jobs" and not problem:
            moved += " (no consumer finished it: crashed, outran its visibility, or kept failing)"
        elif side == "results" and not problem:
            moved += " (the completion handler could not deliver it)"
        parts.append(moved)
    if state.task not in ("unknown", "waiting"):
        parts.append(
            f"Step Functions: task {state.task}" + (f" ({state.detail})" if state.detail else "")
        )
    elif state.task == "waiting":
        parts.append("Step Functions: task still waiting")
    return "; ".join(parts) or "unknown (no reason attribute, no source queue, no task found)"


# --- operations ---------------------------------------------------------------------------


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
            with held(sqs, ref.url, limit=limit) as batch:
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
        with held(sqs, ref.url) as batch:
            message = batch.messages.get(message_id)
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
            "attributes": _attributes(found.message),
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
            if _fail_one(sfn, explainer.explain(ref, message), report):
                done.setdefault(id(batch), (batch, []))[1].append(message["MessageId"])
        for batch, ids in done.values():
            report.not_deleted.extend(batch.delete(ids))
    return report


def _fail_one(sfn: Any, found: Found, report: FailReport) -> bool:
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
        code = exc.response.get("Error", {}).get("Code", "")
        if code in TASK_CLOSED_ERRORS:
            report.already_closed.append(mid)
        else:
            report.errors[mid] = f"{code}: {exc.response.get('Error', {}).get('Message', '')}"
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
