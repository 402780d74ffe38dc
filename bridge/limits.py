"""AWS Step Functions limits a fan-out must fit, as one source of truth.

The embedded stack enforces these (``bridge.local_stack.compat.sfn_limits``) so that a fan-out
that passes locally does not fail on AWS, and the CLI checks a run against them *before* it
starts one, explaining in one line which limit and what to change. Sources (Step Functions
developer guide): "Step Functions service quotas" (payload size, history events), "Map state in
Inline mode" (40 concurrent iterations), "Map state in Distributed mode" (10,000 parallel child
executions), "Handling errors in Step Functions workflows" (error names).

No moto and no AWS clients here: the CLI, the demo and the compatibility patches all import it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

#: An INLINE Map runs at most this many iterations at once, whatever ``MaxConcurrency`` says
#: (0 = "no limit" means 40 on AWS).
INLINE_MAX_CONCURRENCY = 40
#: A DISTRIBUTED Map runs up to this many child executions in parallel.
DISTRIBUTED_MAX_CONCURRENCY = 10_000
#: Events in one execution's history (an INLINE Map's iterations count in its parent's).
HISTORY_EVENTS = 25_000
#: Execution input, state input and output, task output and callback output: bytes, UTF-8.
PAYLOAD_BYTES = 262_144
#: ``MaximumMessageSize`` of the queues Terraform creates (infra/modules/queues default), and
#: so of the embedded stack's queues.
QUEUE_MESSAGE_BYTES = 262_144

#: How AWS fails an execution that reaches ``HISTORY_EVENTS``: event 25,000 is its
#: ExecutionFailed event.
HISTORY_LIMIT_ERROR = "States.Runtime"
HISTORY_LIMIT_CAUSE = (
    f"The execution reached the maximum number of history events ({HISTORY_EVENTS})."
)
#: How AWS fails a state or task whose data exceeds ``PAYLOAD_BYTES``.
DATA_LIMIT_ERROR = "States.DataLimitExceeded"
#: What StartExecution / SendTaskSuccess answer for a field over its length constraint.
VALIDATION_ERROR = "ValidationException"

#: History events of the bridge's template (infra/statemachine/bridge.asl.json) in INLINE mode,
#: measured on the embedded stack from real executions' histories (1, 2 and 10 jobs):
#: ExecutionStarted, Map entered/started/succeeded/exited, the failure check (two Choice states)
#: and Succeed, ExecutionSucceeded = 12; per job MapIterationStarted, TaskStateEntered,
#: TaskScheduled, TaskStarted, TaskSubmitted, TaskSucceeded, TaskStateExited,
#: MapIterationSucceeded = 8; a failed job's JobFailed Pass state adds 2; each retry adds
#: TaskFailed, TaskScheduled, TaskStarted, TaskSubmitted = 4.
TEMPLATE_FIXED_EVENTS = 12
EVENTS_PER_JOB = 8
EVENTS_PER_FAILED_JOB = 2
EVENTS_PER_RETRY = 4
#: Headroom kept below ``HISTORY_EVENTS`` when sizing an INLINE run: a few failures and retries
#: must not tip a run that fits on paper over the limit.
HISTORY_HEADROOM = 0.05

MapMode = Literal["INLINE", "DISTRIBUTED"]

JOBS_FILE_HINT = (
    "put the jobs in S3 for a DISTRIBUTED Map: callback-bridge run --jobs-file FILE "
    "(the demo does it with --map-mode DISTRIBUTED or AUTO)"
)


class LimitError(ValueError):
    """A run that AWS would refuse or fail. ``str()`` is one line: the limit and what to do."""

    def __init__(self, limit: str, aws_error: str, message: str) -> None:
        super().__init__(message)
        #: Which limit: "execution-input", "item", "history-events".
        self.limit = limit
        #: The error name AWS reports for it (``ValidationException``, ``States.Runtime``, ...).
        self.aws_error = aws_error


def payload_bytes(value: Any) -> int:
    """UTF-8 size of a payload: a ``str``/``bytes`` as given, anything else as compact JSON
    (how Step Functions serialises state data)."""
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    # ASCII (the usual case) is one byte a character: no copy needed to measure it.
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def json_bytes(value: Any) -> int:
    """UTF-8 size of ``value`` serialised as compact JSON (a ``str`` item gets its quotes)."""
    return payload_bytes(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str))


def sqs_message_bytes(body: str, attributes: dict[str, Any] | None = None) -> int:
    """A message's size as SQS counts it against ``MaximumMessageSize``: the body's UTF-8 bytes
    plus, per message attribute, its name, data type and value (a binary value's bytes)."""

    def size(value: Any) -> int:
        if isinstance(value, bytes | bytearray):
            return len(value)
        text = str(value)
        return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))

    total = size(body)
    for name, value in (attributes or {}).items():
        total += size(name) + size(value.get("DataType") or "")
        for field in ("StringValue", "BinaryValue"):
            if value.get(field) is not None:
                total += size(value[field])
    return total


def effective_concurrency(max_concurrency: int, mode: MapMode = "INLINE") -> int:
    """How many iterations AWS runs at once for a Map's ``MaxConcurrency`` (0 = no limit)."""
    cap = INLINE_MAX_CONCURRENCY if mode == "INLINE" else DISTRIBUTED_MAX_CONCURRENCY
    return cap if max_concurrency <= 0 or max_concurrency > cap else max_concurrency


def inline_history_events(jobs: int, failed_jobs: int = 0, retries: int = 0) -> int:
    """Estimated history events of one INLINE execution of the bridge's template."""
    return (
        TEMPLATE_FIXED_EVENTS
        + EVENTS_PER_JOB * jobs
        + EVENTS_PER_FAILED_JOB * failed_jobs
        + EVENTS_PER_RETRY * retries
    )


def max_inline_jobs(headroom: float = HISTORY_HEADROOM) -> int:
    """The largest INLINE fan-out whose estimated history stays ``headroom`` below 25,000."""
    budget = math.floor(HISTORY_EVENTS * (1 - headroom)) - TEMPLATE_FIXED_EVENTS
    return max(budget // EVENTS_PER_JOB, 0)


def check_execution_input(document: str | bytes) -> None:
    """Raise :class:`LimitError` if StartExecution would refuse ``document``."""
    size = payload_bytes(document)
    if size > PAYLOAD_BYTES:
        raise LimitError(
            "execution-input",
            VALIDATION_ERROR,
            f"execution input is {size:,} bytes; Step Functions accepts at most "
            f"{PAYLOAD_BYTES:,} (256 KiB): {JOBS_FILE_HINT}",
        )


def check_items(items: Iterable[Any]) -> int:
    """Raise :class:`LimitError` for the first item over ``PAYLOAD_BYTES`` (each item is one
    iteration's or child execution's input); return the number of items."""
    count = 0
    for index, item in enumerate(items):
        count += 1
        size = json_bytes(item)
        if size > PAYLOAD_BYTES:
            raise LimitError(
                "item",
                DATA_LIMIT_ERROR,
                f"job {index} is {size:,} bytes; a Map item (one job's input) may be at most "
                f"{PAYLOAD_BYTES:,} (256 KiB): put the job's data in S3 and pass its key",
            )
    return count


def check_inline_jobs(jobs: int, headroom: float = HISTORY_HEADROOM) -> None:
    """Raise :class:`LimitError` if an INLINE run of ``jobs`` would likely exceed 25,000
    history events (with ``headroom`` kept for failures and retries)."""
    limit = max_inline_jobs(headroom)
    if jobs > limit:
        raise LimitError(
            "history-events",
            HISTORY_LIMIT_ERROR,
            f"an INLINE run of {jobs:,} jobs writes about {inline_history_events(jobs):,} "
            f"history events; an execution holds at most {HISTORY_EVENTS:,} (INLINE fits "
            f"about {limit:,} jobs): use --map-mode DISTRIBUTED",
        )


@dataclass(frozen=True)
class FanOutPlan:
    """What AWS would accept for a fan-out: the mode and whether jobs must come from S3."""

    mode: MapMode
    #: The execution input would exceed 256 KiB: jobs must be read from S3 (ItemReader).
    needs_item_file: bool


def plan_fan_out(jobs: list[Any], requested: MapMode | None = None) -> FanOutPlan:
    """Pick a mode AWS accepts for ``jobs`` (``requested`` wins when it fits), or raise
    :class:`LimitError` with the one line to show. Checks each job's size, the execution input
    ``{"jobs": [...]}`` and, for INLINE, the history estimate."""
    check_items(jobs)
    needs_item_file = payload_bytes({"jobs": jobs}) > PAYLOAD_BYTES
    fits_inline = len(jobs) <= max_inline_jobs()
    if requested == "INLINE":
        if needs_item_file:
            check_execution_input(json.dumps({"jobs": jobs}, separators=(",", ":")))
        check_inline_jobs(len(jobs))
        return FanOutPlan("INLINE", False)
    if requested == "DISTRIBUTED" or needs_item_file or not fits_inline:
        return FanOutPlan("DISTRIBUTED", needs_item_file)
    return FanOutPlan("INLINE", False)
