"""What one dead letter says about itself, and what SQS and Step Functions say about it.

The ``bridge-*`` attributes the dead-letter handler and the quarantine put on a message come
first (the handler saw the message when it was dead-lettered); where they are silent, the body
(job or result: ``job_id``, ``execution_arn``, ``type``), ``DeadLetterQueueSourceArn`` (the
queue whose redrive policy moved it) and the execution's history (what became of the task)
fill in. The token is read to look the task up and kept out of everything printable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from bridge import strict_json
from bridge.contract import (
    MAX_JSON_DEPTH,
    ContractError,
    mask_token,
    parse_job,
    parse_result,
    read_text,
    read_token,
)
from bridge.dead_letter import (
    EXECUTION_ATTRIBUTE,
    JOB_ID_ATTRIBUTE,
    RECEIVE_COUNT_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    TASK_TOLD_ATTRIBUTE,
)
from bridge.ops.inspect.executions import ExecutionLens, TaskState
from bridge.ops.inspect.queues import QueueRef, queue_name
from bridge.quarantine import REASON_ATTRIBUTE, SOURCE_ATTRIBUTE


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as an operator sees it (no token: only its masked form)."""

    queue: str
    side: str
    role: str
    message_id: str
    #: The id first logged for the message (``bridge-source-message-id``), when recorded.
    source_message_id: str | None
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


def attributes_of(message: dict[str, Any]) -> dict[str, str]:
    return {
        name: str(value.get("StringValue", value.get("BinaryValue", "")))
        for name, value in message.get("MessageAttributes", {}).items()
    }


def _decode(body: str) -> dict[str, Any] | None:
    """The body as a document to show, when it is strict JSON (else the raw body is shown)."""
    try:
        data = strict_json.loads(body, max_depth=MAX_JSON_DEPTH)
    except strict_json.JSONError:
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
        attributes = attributes_of(message)
        system = message.get("Attributes", {})
        decoded = _decode(body)
        problem = self.problem(ref.side, body)
        token = read_token(body)
        job_id = attributes.get(JOB_ID_ATTRIBUTE) or read_text(body, "job_id")
        execution_arn = (
            attributes.get(EXECUTION_ATTRIBUTE)
            or read_text(body, "execution_arn")
            or _execution_arn(self.state_machine_arn, job_id)
        )
        state = self.lens.task_state(execution_arn, job_id, token)
        job_type = read_text(body, "type") or _text((state.message or {}).get("type"))
        source = attributes.get(SOURCE_QUEUE_ATTRIBUTE) or system.get("DeadLetterQueueSourceArn")
        receive_count = _receive_count(attributes, system)
        if attributes.get(REASON_ATTRIBUTE):
            reason, reason_source = attributes[REASON_ATTRIBUTE], "attribute"
        else:
            reason = _derived_reason(ref, problem, source, receive_count, state)
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
            source_message_id=attributes.get(SOURCE_ATTRIBUTE) or None,
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
    def problem(side: str, body: str) -> str | None:
        """Why ``body`` breaks the contract of its side, or None."""
        try:
            (parse_job if side == "jobs" else parse_result)(body)
        except ContractError as exc:
            return str(exc)
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _receive_count(attributes: dict[str, str], system: dict[str, str]) -> int | None:
    """Receives before the dead letter stopped: the handler's record for an archived copy,
    else SQS's count minus this peek's own receive."""
    if attributes.get(RECEIVE_COUNT_ATTRIBUTE, "").isdigit():
        return int(attributes[RECEIVE_COUNT_ATTRIBUTE])
    count = system.get("ApproximateReceiveCount")
    return max(int(count) - 1, 0) if count else None


def _derived_reason(
    ref: QueueRef, problem: str | None, source: str | None, receives: int | None, state: TaskState
) -> str:
    """No recorded reason: say what the body, the source queue and the history show."""
    side = ref.side
    parts = []
    if problem:
        parts.append(f"malformed {side[:-1]} ({problem})")
    if source:
        moved = f"moved from {queue_name(source)} by its redrive policy"
        if receives:
            moved += f" after {receives} receives"
        if ref.role == "archive":  # the DLQ's own redrive: the handler never finished it
            moved += " (the dead-letter handler kept failing on it)"
        elif side == "jobs" and not problem:
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
