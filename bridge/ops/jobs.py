"""Jobs across recent executions of the bridge's state machine (``callback-bridge jobs``).

A job is one Map iteration: ``<execution name>/RunJob/<index>``, each attempt (a
``Bridge.Retryable`` retry) with its own job id ``.../<attempt>``. Where its record is:

* **INLINE Map**: the execution's history. Each attempt's ``TaskScheduled`` event holds the job
  message (job id, attempt, type, input); the events chained after it say how it ended, with
  the error and cause. Jobs not scheduled yet are PENDING (their input is in the execution's).
* **Distributed Map from ``{"jobs": [...]}``**: the tasks run in child executions; once the
  execution SUCCEEDED its output lists each job's outcome (attempts unknown); before that, or
  when it failed without an output, the children themselves (:mod:`bridge.ops.map_children`,
  at most ``max_children``).
* **Distributed Map from S3** (``run --jobs-file``): the ``ResultWriter``'s manifest and result
  files (:func:`bridge.ops.fanout.read_results`), inputs from the item file; the children
  while it runs.

Reads are bounded and counted (:class:`Reads`): ``ListExecutions`` stops at ``since`` or after
``max_executions``; each execution costs one ``DescribeExecution`` and up to
``max_events`` history events (or the result files). Step Functions keeps closed executions 90
days; nothing here reads CloudWatch Logs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bridge import strict_json
from bridge.contract import MAX_ENVELOPE_DEPTH
from bridge.ops.fanout import FanOutError, read_items, read_results
from bridge.ops.inspect.executions import TASK_ENDS, ExecutionLens, details, scheduled_message
from bridge.ops.job_record import FAILED, STATE, Attempt, Job, Reads
from bridge.ops.map_children import DEFAULT_LIMIT as DEFAULT_CHILDREN
from bridge.ops.map_children import ChildrenUnavailable, children

__all__ = [
    "FAILED",
    "STATE",
    "Attempt",
    "Job",
    "JobReader",
    "JobsError",
    "Reads",
    "find_job",
    "list_jobs",
    "parse_since",
    "select",
    "since_time",
]

DEFAULT_MAX_EXECUTIONS = 50
DEFAULT_SINCE = timedelta(hours=24)
Filter = Literal["all", "failed", "running", "dead-lettered"]
#: TASK_ENDS' words as job statuses.
_STATUS = {
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "timed out": "TIMED_OUT",
    "failed to submit": "FAILED",
    "failed to start": "FAILED",
}
_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class JobsError(ValueError):
    """Bad operator input (an unreadable --since, an unknown execution): one line."""


def parse_since(text: str) -> timedelta:
    """``90s``, ``15m``, ``1h``, ``7d`` -> a duration."""
    match = _SINCE.match(text.strip())
    if not match:
        raise JobsError(f"--since {text!r}: give a number and a unit, such as 90s, 15m, 1h, 7d")
    return timedelta(**{_UNIT[match[2]]: int(match[1])})


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return strict_json.loads(text, max_depth=MAX_ENVELOPE_DEPTH)
    except strict_json.JSONError:
        return None


class JobReader:
    """Reads jobs of executions through one Step Functions (and S3) client, counting reads."""

    def __init__(
        self,
        sfn: Any,
        s3: Any = None,
        lens: ExecutionLens | None = None,
        reads: Reads | None = None,
        max_children: int = DEFAULT_CHILDREN,
    ) -> None:
        self.sfn = sfn
        self.s3 = s3
        #: Child executions read per Distributed Map without an outcome (one call each).
        self.max_children = max_children
        self.lens = lens or ExecutionLens(sfn)
        self.reads = reads or Reads()

    # --- which executions ------------------------------------------------------------------

    def recent(
        self,
        state_machine_arn: str,
        since: datetime | None,
        max_executions: int = DEFAULT_MAX_EXECUTIONS,
        running_only: bool = False,
    ) -> list[str]:
        """ARNs of the newest executions started at or after ``since`` (newest first)."""
        arns: list[str] = []
        kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "maxResults": 100}
        if running_only:
            kwargs["statusFilter"] = "RUNNING"
        while True:
            page = self.sfn.list_executions(**kwargs)
            for item in page.get("executions", []):
                self.reads.executions_listed += 1
                started = item.get("startDate")
                if since and isinstance(started, datetime) and started < since:
                    return arns
                if len(arns) >= max_executions:
                    self.reads.capped = True
                    return arns
                arns.append(str(item["executionArn"]))
            if not page.get("nextToken"):
                return arns
            kwargs["nextToken"] = page["nextToken"]

    # --- jobs of one execution -------------------------------------------------------------

    def jobs(self, execution_arn: str) -> list[Job]:
        described = self.lens.describe(execution_arn)
        if described is None:
            raise JobsError(f"no execution {execution_arn}")
        self.reads.executions_read += 1
        name = str(described.get("name") or execution_arn.rsplit(":", 1)[-1])
        document = _json(described.get("input")) or {}
        events, truncated = self.lens.history(execution_arn)
        self.reads.history_events += len(events)
        if truncated:
            self.reads.truncated.append(execution_arn)
        run = next(
            (
                str(details(event).get("mapRunArn"))
                for event in events
                if event.get("type") == "MapRunStarted"
            ),
            None,
        )
        if isinstance(document, dict) and isinstance(document.get("items"), dict):
            return self._from_result_files(execution_arn, name, described, document["items"], run)
        inputs = document.get("jobs") if isinstance(document, dict) else None
        inputs = inputs if isinstance(inputs, list) else []
        if run is not None:
            return self._from_output(execution_arn, name, described, inputs, run)
        return self._from_history(execution_arn, name, described, events, inputs, truncated)

    def _from_history(
        self,
        arn: str,
        name: str,
        described: dict[str, Any],
        events: list[dict[str, Any]],
        inputs: list[Any],
        truncated: bool = False,
    ) -> list[Job]:
        """Jobs from the history. One cut short at ``max_events`` does not show every job: the
        rest come from the output once the execution succeeded, else they are UNKNOWN."""
        after: dict[int, list[dict[str, Any]]] = {}
        for event in events:
            after.setdefault(int(event.get("previousEventId", 0)), []).append(event)
        jobs: dict[int, Job] = {}
        for event in events:
            message = scheduled_message(event)
            if message is None or not isinstance(message.get("map_index"), int):
                continue
            index = int(message["map_index"])
            job = jobs.setdefault(
                index, Job(arn, name, index, "RUNNING", input=message.get("input"))
            )
            job.type = message.get("type") if isinstance(message.get("type"), str) else job.type
            attempt = _attempt(event, message, after)
            job.history.append(attempt)
            job.attempts = len(job.history)
            job.status, job.error, job.cause = attempt.status, attempt.error, attempt.cause
            job.output = attempt.output
        closed = described.get("status") != "RUNNING"
        if truncated:
            later = {job.index: job for job in self._from_output(arn, name, described, inputs)}
        for index, item in enumerate(inputs):
            if index in jobs:
                continue
            if truncated:  # beyond the history read: its outcome, if the output has one
                jobs[index] = later.get(index) or Job(arn, name, index, "UNKNOWN", input=item)
                continue
            # never scheduled: waiting for a Map slot, or never will be
            status = "NOT_RUN" if closed else "PENDING"
            jobs[index] = Job(arn, name, index, status, attempts=0, input=item)
        for job in jobs.values():
            if closed and job.status == "RUNNING" and truncated:  # its end is beyond the cut
                known = later.get(job.index)
                job.status = known.status if known else "UNKNOWN"
                if known:
                    job.error, job.cause, job.output = known.error, known.cause, known.output
            elif closed and job.status == "RUNNING":  # the execution ended while it waited
                job.status = "ABORTED"
        return [jobs[index] for index in sorted(jobs)]

    def _from_output(
        self,
        arn: str,
        name: str,
        described: dict[str, Any],
        inputs: list[Any],
        run: str | None = None,
    ) -> list[Job]:
        output = _json(described.get("output"))
        if not isinstance(output, list):  # running or failed: outcomes are in the children
            if run is None:
                return []
            return self._from_children(arn, name, described, inputs, run)
        jobs = []
        for index, entry in enumerate(output):
            entry = entry if isinstance(entry, dict) else {}
            failed = entry.get("status") == "FAILED"
            jobs.append(
                Job(
                    arn,
                    name,
                    index,
                    "FAILED" if failed else "SUCCEEDED",
                    type=_type_of(inputs[index] if index < len(inputs) else None),
                    error=entry.get("error") if failed else None,
                    cause=entry.get("cause") if failed else None,
                    input=inputs[index] if index < len(inputs) else None,
                    output=None if failed else entry.get("output"),
                    source="output",
                )
            )
        return jobs

    def _from_children(
        self, arn: str, name: str, described: dict[str, Any], inputs: list[Any], run: str
    ) -> list[Job]:
        """Jobs from the Map Run's child executions (up to ``max_children``); the others from
        the inputs: PENDING while the execution runs, else UNKNOWN."""
        jobs: dict[int, Job] = {}
        try:
            for child in children(self.sfn, run, self.max_children):
                self.reads.child_executions += 1
                if child.index is None:
                    continue
                jobs[child.index] = Job(
                    arn,
                    name,
                    child.index,
                    child.status,
                    type=_type_of(child.item),
                    error=child.error,
                    cause=child.cause,
                    input=child.item,
                    output=child.output,
                    source="child executions",
                )
        except ChildrenUnavailable as exc:
            self.reads.notes.append(f"child executions of {run} not read: {exc}")
        else:
            if self.reads.child_executions >= self.max_children:
                self.reads.notes.append(f"stopped at {self.max_children} child executions")
        still = "PENDING" if described.get("status") == "RUNNING" else "UNKNOWN"
        for index, item in enumerate(inputs):
            if index not in jobs:
                jobs[index] = Job(
                    arn, name, index, still, type=_type_of(item), input=item, source="input"
                )
        return [jobs[index] for index in sorted(jobs)]

    def _from_result_files(
        self,
        arn: str,
        name: str,
        described: dict[str, Any],
        items: dict[str, Any],
        run: str | None = None,
    ) -> list[Job]:
        if self.s3 is None:
            raise JobsError(f"{arn} read its jobs from S3: reading them needs an S3 client")
        try:
            inputs = read_items(self.s3, str(items.get("bucket")), str(items.get("key")))
        except FanOutError:
            inputs = []
        self.reads.result_files += 1
        if described.get("status") == "RUNNING":
            if run is not None:
                return self._from_children(arn, name, described, inputs, run)
            return [
                Job(arn, name, i, "PENDING", type=_type_of(item), input=item, source="input")
                for i, item in enumerate(inputs)
            ]
        results = read_results(self.sfn, self.s3, arn)
        self.reads.result_files += 1 + (1 if results.jobs else 0)
        jobs = []
        for result in results.jobs:
            item = inputs[result.index] if result.index < len(inputs) else None
            jobs.append(
                Job(
                    arn,
                    name,
                    result.index,
                    result.status,
                    type=_type_of(item),
                    error=result.error,
                    cause=result.cause,
                    input=item,
                    output=result.output if result.status == "SUCCEEDED" else None,
                    source="result files",
                )
            )
        return jobs


def _type_of(item: Any) -> str | None:
    if isinstance(item, dict) and isinstance(item.get("type"), str):
        return str(item["type"])
    return None


def _attempt(
    scheduled: dict[str, Any], message: dict[str, Any], after: dict[int, list[dict[str, Any]]]
) -> Attempt:
    attempt = Attempt(
        job_id=str(message.get("job_id")),
        attempt=int(message.get("attempt") or 0),
        status="RUNNING",
        started=str(scheduled.get("timestamp")) if scheduled.get("timestamp") else None,
    )
    current = scheduled
    while True:
        following = [
            e
            for e in after.get(int(current["id"]), [])
            if str(e.get("type", "")).startswith("Task")
        ]
        if not following or following[0].get("type") in ("TaskStateExited", "TaskStateEntered"):
            return attempt
        current = following[0]
        if current["type"] in TASK_ENDS:
            found = details(current)
            attempt.status = _STATUS[TASK_ENDS[current["type"]]]
            attempt.error = found.get("error") or None
            attempt.cause = found.get("cause") or None
            if attempt.status == "SUCCEEDED":
                attempt.output = _json(found.get("output"))
            attempt.ended = str(current.get("timestamp")) if current.get("timestamp") else None
            return attempt


def select(jobs: Iterable[Job], which: Filter) -> list[Job]:
    if which == "failed":
        return [job for job in jobs if job.failed]
    if which == "running":
        return [job for job in jobs if job.status in ("RUNNING", "PENDING")]
    if which == "dead-lettered":
        return [job for job in jobs if job.dead_lettered]
    return list(jobs)


def list_jobs(
    reader: JobReader,
    state_machine_arn: str,
    which: Filter = "all",
    executions: list[str] | None = None,
    since: datetime | None = None,
    max_executions: int = DEFAULT_MAX_EXECUTIONS,
) -> list[Job]:
    """Jobs of ``executions`` (else of the newest executions since ``since``), filtered."""
    arns = executions or reader.recent(
        state_machine_arn, since, max_executions, running_only=which == "running"
    )
    found: list[Job] = []
    for arn in arns:
        found += select(reader.jobs(arn), which)
    return found


def since_time(text: str | None, now: datetime | None = None) -> datetime:
    """The cut-off for ``--since`` (default: 24 hours ago)."""
    span = parse_since(text) if text else DEFAULT_SINCE
    return (now or datetime.now(UTC)) - span


def find_job(reader: JobReader, execution_arn: str | None, index: int, text: str) -> Job:
    """Job ``index`` of ``execution_arn`` (``text``: the id the operator gave, for errors)."""
    if not execution_arn:
        raise JobsError(f"{text!r}: no state machine configured to find its execution")
    for job in reader.jobs(execution_arn):
        if job.index == index:
            return job
    raise JobsError(f"{text!r}: execution {execution_arn} has no job {index}")
