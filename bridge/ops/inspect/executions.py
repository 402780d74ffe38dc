"""What Step Functions says about an execution and about one job's task in it.

The history is the only record of a task: its ``TaskScheduled`` event holds the resolved
parameters (the job message, with ``job_id`` and token), and the events chained after it by
``previousEventId`` say whether it was submitted, succeeded, failed or timed out. Histories
can hold 25,000 events, so reads are capped (``max_events``); a task not found within the cap
is "unknown", never guessed. One :class:`ExecutionLens` caches what it read, so listing fifty
dead letters of one execution reads its history once.

Under a Distributed Map the tasks run in child executions; the parent's history then has a
``MapRunStarted`` event and no ``TaskScheduled``, and job counts come from ``DescribeMapRun``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bridge import strict_json
from bridge.contract import MAX_ENVELOPE_DEPTH, mask_token
from bridge.errors import error_code

PAGE = 1000
DEFAULT_MAX_EVENTS = 5000
#: A task's history ends with one of these (everything else means it may still wait).
TASK_ENDS = {
    "TaskSucceeded": "succeeded",
    "TaskFailed": "failed",
    "TaskTimedOut": "timed out",
    "TaskSubmitFailed": "failed to submit",
    "TaskStartFailed": "failed to start",
}
ITERATION_ENDS = ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted")
#: Step Functions answers meaning "no such execution" (not an operator or access error).
MISSING = frozenset({"ExecutionDoesNotExist", "InvalidArn"})


def details(event: dict[str, Any]) -> dict[str, Any]:
    """The ``...EventDetails`` member of a history event (each type names its own)."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _json(text: Any) -> Any:
    """An execution's input or output, or a task's parameters, read back from Step Functions:
    they carry messages the bridge did not write, so strictly, and ``None`` when unreadable."""
    if not isinstance(text, str):
        return text
    try:
        return strict_json.loads(text, max_depth=MAX_ENVELOPE_DEPTH)
    except strict_json.JSONError:
        return None


def scheduled_message(event: dict[str, Any]) -> dict[str, Any] | None:
    """The job message a ``TaskScheduled`` event sent (``Parameters.MessageBody``)."""
    if event.get("type") != "TaskScheduled":
        return None
    parameters = _json(details(event).get("parameters"))
    body = _json(parameters.get("MessageBody")) if isinstance(parameters, dict) else None
    return body if isinstance(body, dict) else None


@dataclass(frozen=True)
class TaskState:
    """A job's task as the history shows it."""

    #: Execution status (RUNNING, SUCCEEDED, ...) or None when the execution is unknown.
    execution_status: str | None
    #: waiting | succeeded | failed | timed out | ... | closed | unknown
    task: str
    #: The error of a failed or timed-out task, or why the state is unknown.
    detail: str = ""
    #: The job message Step Functions sent, when found (type and input of a result's job).
    message: dict[str, Any] | None = None

    @property
    def waiting(self) -> bool | None:
        """Whether the task still waits for a callback (None: cannot tell)."""
        if self.execution_status is not None and self.execution_status != "RUNNING":
            return False
        if self.task == "waiting":
            return True
        return None if self.task == "unknown" else False

    def describe(self) -> str:
        text = self.task + (f" ({self.detail})" if self.detail else "")
        if self.execution_status:
            text += f"; execution {self.execution_status}"
        return text


@dataclass(frozen=True)
class JobCounts:
    """Jobs of one execution: not started (Map concurrency), running (task open: queued or on
    a consumer), done. ``partial``: the history was capped, counts are lower bounds."""

    total: int | None
    waiting: int | None
    running: int | None
    done: int | None
    source: str
    partial: bool = False


class ExecutionLens:
    """Cached reads of executions and their histories through one Step Functions client."""

    def __init__(self, sfn: Any, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self.sfn = sfn
        self.max_events = max_events
        self._descriptions: dict[str, dict[str, Any] | None] = {}
        self._histories: dict[str, tuple[list[dict[str, Any]], bool]] = {}

    def describe(self, arn: str) -> dict[str, Any] | None:
        """DescribeExecution, or None for an execution that does not exist."""
        if arn not in self._descriptions:
            try:
                self._descriptions[arn] = self.sfn.describe_execution(executionArn=arn)
            except ClientError as exc:
                if error_code(exc) not in MISSING:
                    raise
                self._descriptions[arn] = None
        return self._descriptions[arn]

    def history(self, arn: str) -> tuple[list[dict[str, Any]], bool]:
        """(events oldest first, truncated?) up to ``max_events``."""
        if arn not in self._histories:
            events: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": PAGE}
            truncated = False
            while True:
                page = self.sfn.get_execution_history(**kwargs)
                events.extend(page.get("events", []))
                token = page.get("nextToken")
                if not token:
                    break
                if len(events) >= self.max_events:
                    truncated = True
                    break
                kwargs["nextToken"] = token
            self._histories[arn] = (events, truncated)
        return self._histories[arn]

    def last_events(self, arn: str, count: int) -> list[dict[str, Any]]:
        """The newest ``count`` events, oldest first (one reverse-order read)."""
        page = self.sfn.get_execution_history(
            executionArn=arn, maxResults=max(1, min(count, PAGE)), reverseOrder=True
        )
        return list(reversed(page.get("events", [])))

    def task_state(self, arn: str | None, job_id: str | None, token: str | None) -> TaskState:
        if not arn:
            return TaskState(None, "unknown", "the message names no execution")
        description = self.describe(arn)
        if description is None:
            return TaskState(None, "unknown", "execution not found")
        status = str(description.get("status"))
        events, truncated = self.history(arn)
        found = find_task(events, job_id, token)
        if found is None:
            if status != "RUNNING":
                return TaskState(status, "closed")
            if any(event.get("type") == "MapRunStarted" for event in events):
                why = "Distributed Map: the task runs in a child execution"
            elif truncated:
                why = f"not in the first {len(events)} history events"
            else:
                why = "no task for this job in the history"
            return TaskState(status, "unknown", why)
        message, end = found
        if end is None:
            task = "waiting" if status == "RUNNING" else "closed"
            return TaskState(status, task, message=message)
        # The error names what happened; the cause (long) is in the history ('dlq show').
        error = str(details(end).get("error") or "")
        return TaskState(status, TASK_ENDS[end["type"]], error[:256], message)

    def job_counts(self, arn: str) -> JobCounts:
        """Jobs waiting / running / done of one execution, from its history (INLINE Map) or
        its map run (DISTRIBUTED Map)."""
        events, truncated = self.history(arn)
        for event in events:
            if event.get("type") == "MapRunStarted":
                run_arn = details(event).get("mapRunArn")
                items = self.sfn.describe_map_run(mapRunArn=run_arn).get("itemCounts", {})
                done = sum(
                    int(items.get(k, 0)) for k in ("succeeded", "failed", "timedOut", "aborted")
                )
                return JobCounts(
                    items.get("total"), items.get("pending"), items.get("running"), done, "map run"
                )
        total = started = ended = 0
        for event in events:
            kind = event.get("type")
            if kind == "MapStateStarted":
                total += int(details(event).get("length", 0))
            elif kind == "MapIterationStarted":
                started += 1
            elif kind in ITERATION_ENDS:
                ended += 1
        return JobCounts(total, total - started, started - ended, ended, "history", truncated)


def find_task(
    events: list[dict[str, Any]], job_id: str | None, token: str | None
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """(job message, the event that ended its task or None) for the task that sent ``job_id``
    (each retry has its own id) or, failing that, ``token``."""
    scheduled: tuple[dict[str, Any], dict[str, Any]] | None = None
    for event in events:
        message = scheduled_message(event)
        if message is None:
            continue
        if (job_id and message.get("job_id") == job_id) or (
            token and message.get("token") == token
        ):
            scheduled = (event, message)
            if job_id and message.get("job_id") == job_id:
                break
    if scheduled is None:
        return None
    event, message = scheduled
    after: dict[int, list[dict[str, Any]]] = {}
    for candidate in events:
        after.setdefault(int(candidate.get("previousEventId", 0)), []).append(candidate)
    current = event
    while True:
        nxt = next(
            (
                e
                for e in after.get(int(current["id"]), [])
                if str(e.get("type", "")).startswith("Task")
            ),
            None,
        )
        if nxt is None or nxt.get("type") in ("TaskStateExited", "TaskStateEntered"):
            return message, None
        if nxt["type"] in TASK_ENDS:
            return message, nxt
        current = nxt


def tokens_in(events: list[dict[str, Any]]) -> set[str]:
    """Every task token the history shows (to mask them before anything is printed)."""
    found = set()
    for event in events:
        message = scheduled_message(event)
        if message and isinstance(message.get("token"), str):
            found.add(message["token"])
    return found


def scrub(value: Any, tokens: set[str]) -> Any:
    """``value`` (an event, a message) with every known token replaced by its masked form."""
    text = json.dumps(value, default=str)
    for token in sorted(tokens, key=len, reverse=True):
        if token:
            text = text.replace(token, mask_token(token))
    return json.loads(text)
