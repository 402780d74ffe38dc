"""The wire contract (version 1) between the state machine, consumers and the completion handler.

This is the only module that knows the field names of job and result messages. The job
message body is produced by the state machine's ``Parameters`` (``infra/statemachine/
bridge.asl.json``), so a change here must be mirrored there; the end-to-end tests run the
real template to prove the two agree. It imports nothing of ours but :mod:`bridge.strict_json`
(the standard library's ``json`` made safe for hostile text).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bridge import strict_json

CONTRACT_VERSION = 1

#: AWS limits the contract enforces before Step Functions would reject a call.
MAX_TOKEN_CHARS = 2048
MAX_ERROR_CHARS = 256
MAX_CAUSE_CHARS = 32_768
MAX_OUTPUT_BYTES = 262_144
#: A result message's limit: the queues' ``MaximumMessageSize`` as Terraform sets it
#: (infra/modules/queues) and the embedded stack mirrors it. Outputs that would not fit go to
#: S3 by claim check (bridge.claim_check).
MAX_MESSAGE_BYTES = 262_144

#: How deeply a message's arrays and objects may nest (``{"input": [1]}`` is 2 levels). Readers
#: refuse deeper text before decoding it (:mod:`bridge.strict_json`): ``json`` recurses per
#: level (a RecursionError near 1,000 levels on Python 3.11), pydantic-core parses and
#: serialises at most about 254, and real jobs nest a dozen levels at most. 64 leaves a factor
#: of four below pydantic-core and of fifteen below ``json``, whatever the caller's own stack.
MAX_JSON_DEPTH = 64
#: A job's input or a result's output: one level less, for the message object around it. The
#: worker refuses a deeper output (``Bridge.InvalidOutput``) rather than send an unreadable result.
MAX_PAYLOAD_DEPTH = MAX_JSON_DEPTH - 1
#: Documents that carry a message or a payload a few levels down (an execution's input and
#: output, a history event's parameters, a Map's result files): room for the envelope, still far
#: below what pydantic-core and ``json`` handle.
MAX_ENVELOPE_DEPTH = MAX_JSON_DEPTH + 16

#: Error names the bridge itself reports through SendTaskFailure.
ERROR_RETRYABLE = "Bridge.Retryable"
ERROR_OUTPUT_TOO_LARGE = "Bridge.OutputTooLarge"
ERROR_COMMAND_FAILED = "Bridge.CommandFailed"
ERROR_DEAD_LETTERED = "Bridge.DeadLettered"
#: The job ran past its per-job timeout; its process group was killed.
ERROR_JOB_TIMEOUT = "Bridge.JobTimeout"
#: The job message carried a readable token but another field broke the contract.
ERROR_INVALID_JOB = "Bridge.InvalidJob"
#: The output is not JSON Step Functions accepts (not serialisable, undecodable bytes, ...).
ERROR_INVALID_OUTPUT = "Bridge.InvalidOutput"
#: A handler run in its own process died (signal, os._exit, crash) without reporting an outcome.
ERROR_HANDLER_CRASHED = "Bridge.HandlerCrashed"
#: The result message carried a readable token but another field broke the contract.
ERROR_INVALID_RESULT = "Bridge.InvalidResult"
#: A large output could not be stored in S3 by claim check (bridge.claim_check).
ERROR_CLAIM_CHECK_FAILED = "Bridge.ClaimCheckFailed"

#: Inserted where :func:`clip` removed the middle of a long text.
CLIP_MARKER = "\n…[{removed} characters removed by callback-bridge]…\n"


class ContractError(ValueError):
    """A message that does not satisfy the contract; ``field`` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class _Message(BaseModel):
    # Unknown fields are ignored so a v1 reader accepts additive changes from a newer writer.
    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Literal[1]
    token: str = Field(min_length=1, max_length=MAX_TOKEN_CHARS)
    job_id: str = Field(min_length=1)


class Job(_Message):
    """One unit of work, as the state machine puts it on the jobs queue."""

    execution_arn: str
    map_index: int = Field(ge=0)
    attempt: int = Field(ge=0)
    type: str = Field(min_length=1)
    input: Any = None
    #: When the task started (``$$.State.EnteredTime``; additive in v1). Step Functions'
    #: ``HeartbeatSeconds`` clock starts here, and a redrive from a DLQ does not reset it the
    #: way it resets SQS's receive count and timestamps: the worker's stale check uses it.
    task_started_at: datetime | None = None


class Worker(BaseModel):
    """Who ran a job: enough to find the machine and process in logs."""

    model_config = ConfigDict(frozen=True)

    id: str
    instance_id: str | None = None


class Timing(BaseModel):
    """When the job was queued, started and finished (UTC); feeds latency metrics."""

    model_config = ConfigDict(frozen=True)

    enqueued_at: datetime | None = None
    started_at: datetime
    finished_at: datetime


class Result(_Message):
    """What a consumer reports for one job; the completion handler turns it into SendTask*."""

    outcome: Literal["succeeded", "failed"]
    #: The execution the job belongs to (additive in v1: older consumers omit it), so a result
    #: in the results DLQ names its execution.
    execution_arn: str | None = None
    output: Any = None
    error: str | None = Field(default=None, max_length=MAX_ERROR_CHARS)
    cause: str | None = Field(default=None, max_length=MAX_CAUSE_CHARS)
    worker: Worker
    timing: Timing | None = None

    @model_validator(mode="after")
    def _outcome_fields(self) -> Result:
        if self.outcome == "failed" and not self.error:
            raise ValueError("a failed result needs 'error'")
        if self.outcome == "succeeded" and (self.error or self.cause):
            raise ValueError("a succeeded result carries no 'error' or 'cause'")
        return self


M = TypeVar("M", bound=_Message)


def _parse(model: type[M], body: str) -> M:
    try:
        # A result's NaN can only survive validation inside ``output`` (typed fields refuse a
        # float): the callback then fails the task with Bridge.InvalidOutput naming its path,
        # as for an output Step Functions refuses. A job's input is refused here.
        data = strict_json.loads(body, max_depth=MAX_JSON_DEPTH, allow_non_finite=model is Result)
    except strict_json.JSONError as exc:
        raise ContractError("body", str(exc)) from None
    if not isinstance(data, dict):
        raise ContractError("body", f"expected a JSON object, got {type(data).__name__}")
    # Exactly the integer 1: JSON true and 1.0 compare equal to 1 in Python (and pydantic's
    # lax mode takes them), but no writer of contract v1 sends them (found by chaos fuzzing).
    version = data.get("version")
    if "version" in data and not (type(version) is int and version == CONTRACT_VERSION):
        raise ContractError(
            "version", f"unsupported contract version {data['version']!r}, expected 1"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise ContractError(field, first["msg"]) from None


def parse_job(body: str) -> Job:
    """Validate a job message body; raises :class:`ContractError` naming the bad field."""
    return _parse(Job, body)


def parse_result(body: str) -> Result:
    """Validate a result message body; raises :class:`ContractError` naming the bad field."""
    return _parse(Result, body)


def payload_problem(payload: Any) -> str | None:
    """Why a job input or task output cannot travel as JSON unchanged (a NaN or ±Infinity, which
    JSON lacks and serialisers write as ``null``; nesting deeper than
    :data:`MAX_PAYLOAD_DEPTH`; a lone surrogate), naming its path (``$.items[3].score``), or
    ``None`` when it can."""
    return strict_json.value_problem(payload, MAX_PAYLOAD_DEPTH)


#: Characters a JSON writer leaves raw that SQS refuses in a message body (controls are escaped
#: by JSON itself, lone surrogates are refused by :func:`payload_problem`).
_SQS_REFUSED = re.compile("[\ufffe\uffff]")


def encode(message: _Message) -> str:
    """Serialise a job or result for SQS. Raises :class:`ContractError` for a payload that would
    not arrive unchanged (pydantic writes NaN as ``null``): nothing is silently altered."""
    field = "output" if isinstance(message, Result) else "input"
    problem = payload_problem(getattr(message, field, None))
    if problem:
        raise ContractError(field, problem)
    text = message.model_dump_json(exclude_none=True)
    # SQS refuses U+FFFE and U+FFFF anywhere in a body (InvalidMessageContents): written as JSON
    # escapes they arrive as the same string. JSON text holds them only inside strings.
    return _SQS_REFUSED.sub(lambda hit: f"\\u{ord(hit.group()):04x}", text)


def output_size(output: Any) -> int:
    """UTF-8 size of an output as SendTaskSuccess carries it (:func:`output_json`; ValueError
    for NaN, which has no JSON form)."""
    return len(output_json(output).encode("utf-8"))


def output_json(output: Any) -> str:
    """An output as the JSON text SendTaskSuccess is given: compact, and non-ASCII characters
    as themselves (``\\u00e9`` would take 6 bytes of Step Functions' 256 KiB where ``é`` takes
    2). Raises ValueError for NaN and ±Infinity, which JSON has no form for."""
    return json.dumps(output, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def clip(text: str, limit: int) -> str:
    """Fit ``text`` in ``limit`` characters keeping its head and its tail (a traceback's first
    frames and its final exception line both matter), with a visible marker in between."""
    if len(text) <= limit:
        return text
    keep, marker = limit, ""
    for _ in range(3):  # the marker's own length depends on the count it prints
        marker = CLIP_MARKER.format(removed=len(text) - keep)
        keep = limit - len(marker)
    if keep <= 0:
        return text[:limit]
    head = keep // 2
    return text[:head] + marker + text[len(text) - (keep - head) :]


def read_token(body: str, path: str = "token") -> str | None:
    """The task token of a message that may otherwise break the contract, or ``None``.

    A job or result whose token is readable can still be answered (``Bridge.InvalidJob`` /
    ``Bridge.InvalidResult``) instead of leaving its task waiting for a timeout. ``path`` is a
    dot-separated key path (``token``, ``MessageBody.TaskToken``). An over-deep body, or one
    where a key on the path appears twice (which token would be meant?), has none."""
    data = read_text(body, path)
    return data if data is not None and len(data) <= MAX_TOKEN_CHARS else None


def read_text(body: str, path: str) -> str | None:
    """The non-empty string at ``path`` (dot-separated keys) of a message that may otherwise
    break the contract, or ``None``: never raises. Depth is enforced and a duplicated key on the
    path makes the value unreadable; NaN or a duplicate elsewhere does not."""
    try:
        data: Any = strict_json.loads_lenient(body, max_depth=MAX_JSON_DEPTH)
    except strict_json.JSONError:
        return None
    for key in path.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data if isinstance(data, str) and data else None


def mask_token(token: str | None) -> str:
    """A task token is a bearer credential: logs get only its tail and length."""
    if not token:
        return "<none>"
    return f"…{token[-6:]}({len(token)})"
