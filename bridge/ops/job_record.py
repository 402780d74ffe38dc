"""What ``callback-bridge jobs`` knows about a job: its attempts, its status, what a listing
read to find it (:mod:`bridge.ops.jobs` fills them in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge.contract import ERROR_DEAD_LETTERED

#: The template's job state: job ids are ``<execution name>/RunJob/<index>/<attempt>``.
STATE = "RunJob"
#: Job statuses that count as failed (``--failed``, ``rerun --failed``).
FAILED = frozenset({"FAILED", "TIMED_OUT", "ABORTED", "NOT_RUN"})


@dataclass
class Attempt:
    """One attempt of a job (one task)."""

    job_id: str
    attempt: int
    status: str  # RUNNING | SUCCEEDED | FAILED | TIMED_OUT
    error: str | None = None
    cause: str | None = None
    started: str | None = None
    ended: str | None = None
    #: What a successful attempt returned (the task's output, the worker's result).
    output: Any = None


@dataclass
class Job:
    """One job of one execution, as the execution's record shows it."""

    execution_arn: str
    execution_name: str
    index: int
    #: PENDING (waits for a Map slot) | RUNNING | SUCCEEDED | FAILED | TIMED_OUT | ABORTED (its
    #: execution ended while it ran) | NOT_RUN (its execution ended first) | UNKNOWN (a
    #: Distributed Map's job whose child execution could not be read)
    status: str
    type: str | None = None
    #: Attempts made; None where the record does not say (Distributed Map outputs).
    attempts: int | None = None
    error: str | None = None
    cause: str | None = None
    input: Any = None
    #: What the job returned, when it succeeded and the record holds it.
    output: Any = None
    history: list[Attempt] = field(default_factory=list)
    #: history | output | result files | child executions | input
    source: str = "history"

    @property
    def job_id(self) -> str:
        """The last attempt's job id, or the job's (no attempt) when attempts are unknown."""
        if self.history:
            return self.history[-1].job_id
        return f"{self.execution_name}/{STATE}/{self.index}"

    @property
    def dead_lettered(self) -> bool:
        return self.error == ERROR_DEAD_LETTERED

    @property
    def failed(self) -> bool:
        """Over without success: failed, timed out, aborted with its execution, or never run
        because its execution ended first."""
        return self.status in FAILED

    def row(self) -> dict[str, Any]:
        """What ``jobs list --json`` prints: the fields of a row, the cause's first line."""
        return {
            "job_id": self.job_id,
            "execution_arn": self.execution_arn,
            "index": self.index,
            "type": self.type,
            "attempts": self.attempts,
            "status": self.status,
            "error": self.error,
            "cause": _first_line(self.cause),
            "dead_lettered": self.dead_lettered,
        }

    def document(self) -> dict[str, Any]:
        """What ``jobs show --json`` prints: everything, causes in full."""
        return {
            **self.row(),
            "execution_name": self.execution_name,
            "cause": self.cause,
            "input": self.input,
            "output": self.output,
            "attempt_history": [vars(attempt) for attempt in self.history],
            "source": self.source,
        }


def _first_line(text: str | None) -> str | None:
    """The cause's first line; when it only announces what follows (it ends with a colon: a
    traceback, a command's stderr tail), the last line joins it: the exception, the error."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return None
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[-1]}"
    return lines[0]


@dataclass
class Reads:
    """What a listing read, so the CLI can say it."""

    executions_listed: int = 0
    executions_read: int = 0
    history_events: int = 0
    result_files: int = 0
    child_executions: int = 0
    #: What could not be read, one line each (said on stderr).
    notes: list[str] = field(default_factory=list)
    #: Executions whose history was cut at ``max_events`` (their jobs may be incomplete).
    truncated: list[str] = field(default_factory=list)
    #: True when ``max_executions`` stopped the listing before ``since``.
    capped: bool = False

    def describe(self, since: datetime | None) -> str:
        text = (
            f"read {self.executions_read} execution(s)"
            + (f" started since {since.isoformat(timespec='seconds')}" if since else "")
            + f": {self.history_events} history event(s), {self.result_files} result file(s)"
            + (f", {self.child_executions} child execution(s)" if self.child_executions else "")
        )
        for line in self.notes:
            text += f"; {line}"
        if self.capped:
            text += "; stopped at --max-executions (older ones not read)"
        if self.truncated:
            text += f"; history cut short for {', '.join(self.truncated)}"
        return text
