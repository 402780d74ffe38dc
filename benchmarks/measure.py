"""What each scenario is measured with: execution history, result timings, process stats,
and a meter around the completion handler (what the Lambda would be billed for)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bridge.contract import ContractError, parse_result
from bridge.local_stack.demo import percentile

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class JobTimes:
    """One job as its consumer saw it (UTC)."""

    enqueued_at: datetime | None
    started_at: datetime
    finished_at: datetime


@dataclass
class ResultTimes:
    """Event source observer: each acknowledged result's timing, by job id."""

    jobs: dict[str, JobTimes] = field(default_factory=dict)
    #: When the mapping had the handler's answer and had deleted the record (the handler's
    #: SendTaskSuccess was answered by then).
    acked: dict[str, datetime] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, record: dict[str, Any], acknowledged: bool) -> None:
        if not acknowledged:
            return
        now = datetime.now(UTC)
        try:
            result = parse_result(record["body"])
        except ContractError:
            return
        if result.timing:
            t = result.timing
            with self.lock:
                self.jobs[result.job_id] = JobTimes(t.enqueued_at, t.started_at, t.finished_at)
                self.acked[result.job_id] = now

    def callback_ms(self) -> list[float]:
        """Finished on the consumer → callback answered, per job, in milliseconds."""
        with self.lock:
            return [
                (self.acked[j] - t.finished_at).total_seconds() * 1000 for j, t in self.jobs.items()
            ]

    @property
    def done(self) -> int:
        with self.lock:
            return len(self.jobs)


class Observers:
    """The stack takes one observer: this one forwards to whichever is set (per scenario)."""

    def __init__(self) -> None:
        self.current: Callable[[dict[str, Any], bool], None] | None = None

    def __call__(self, record: dict[str, Any], acknowledged: bool) -> None:
        if self.current is not None:
            self.current(record, acknowledged)


@dataclass
class HandlerMeter:
    """Wraps the completion handler: invocations, records, wall seconds (Lambda bills duration)
    and the invoking thread's CPU seconds (a lower bound: the handler settles records on a small
    thread pool whose CPU ``time.thread_time`` does not see)."""

    handler: Handler
    invocations: int = 0
    records: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        wall, cpu = time.monotonic(), time.thread_time()
        try:
            return self.handler(event, context)
        finally:
            with self.lock:
                self.invocations += 1
                self.records += len(event.get("Records", []))
                self.wall_s += time.monotonic() - wall
                self.cpu_s += time.thread_time() - cpu

    def snapshot(self) -> tuple[int, int, float, float]:
        with self.lock:
            return self.invocations, self.records, self.wall_s, self.cpu_s


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """The execution's whole history: read from the embedded server's backend in this process
    where it runs here (moto answers GetExecutionHistory in one unpaginated response whose
    serialisation takes minutes for a polling run's tens of thousands of events), else through
    the API, page by page."""
    events = _in_process_history(execution_arn)
    return events if events is not None else _api_history(sfn, execution_arn)


def _in_process_history(execution_arn: str) -> list[dict[str, Any]] | None:
    try:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        _, _, _, region, account = execution_arn.split(":")[:5]
        backend = stepfunctions_parser_backends[account][region]
        raw = backend.get_execution_history(execution_arn)["events"]
    except Exception:  # not moto in this process, or another moto: use the API
        return None
    return [
        {**e, "timestamp": datetime.fromisoformat(str(e["timestamp"]).replace("Z", "+00:00"))}
        if not isinstance(e["timestamp"], datetime)
        else dict(e)
        for e in raw
    ]


def _api_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def state_transitions(events: list[dict[str, Any]]) -> int:
    """States entered: what Step Functions bills as state transitions (one per state entered,
    Map iterations' states included)."""
    return sum(1 for e in events if e["type"].endswith("StateEntered"))


def _details(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k.endswith("Details")}


def first_failure(events: list[dict[str, Any]]) -> str:
    """What made an execution fail: the first failed Map iteration or state (caught task
    failures, such as a status check's 404, are not it), with the events just before it."""
    for n, event in enumerate(events):
        if event["type"] in ("MapIterationFailed", "ExecutionFailed") or (
            event["type"].endswith("StateFailed")
        ):
            context = [
                f"{e['type']} {json.dumps(_details(e), default=str)}"
                for e in events[max(0, n - 3) : n + 1]
            ]
            return " | ".join(context)[:3000]
    return ""


def _task_output(event: dict[str, Any]) -> Any:
    try:
        return json.loads(event.get("taskSucceededEventDetails", {}).get("output") or "null")
    except ValueError:
        return None


def callback_closes(events: list[dict[str, Any]]) -> dict[str, datetime]:
    """When each callback task closed, by job id (the demo handler's output names its job)."""
    closes: dict[str, datetime] = {}
    for event in events:
        if event["type"] == "TaskSucceeded":
            output = _task_output(event)
            if isinstance(output, dict) and isinstance(output.get("job_id"), str):
                closes.setdefault(output["job_id"], event["timestamp"])
    return closes


def polling_closes(
    events: list[dict[str, Any]],
) -> tuple[dict[str, datetime], dict[str, JobTimes], dict[str, datetime]]:
    """When each polling job's status check first found it done, the times its worker wrote
    in the status object's metadata, and when that check was scheduled (its Wait's end)."""
    closes: dict[str, datetime] = {}
    times: dict[str, JobTimes] = {}
    scheduled: dict[str, datetime] = {}
    checked: dict[str, datetime] = {}
    for event in events:
        if event["type"] == "TaskScheduled":
            details = event.get("taskScheduledEventDetails", {})
            try:
                key = json.loads(details.get("parameters") or "{}").get("Key", "")
            except ValueError:
                key = ""
            if key.startswith("status/"):
                scheduled[key.removeprefix("status/")] = event["timestamp"]
            continue
        if event["type"] != "TaskSucceeded":
            continue
        output = _task_output(event)
        meta = output.get("Metadata") if isinstance(output, dict) else None
        if not isinstance(meta, dict) or "job-id" not in meta:
            continue
        job_id = meta["job-id"]
        if job_id in closes:
            continue
        closes[job_id] = event["timestamp"]
        if job_id in scheduled:
            checked[job_id] = scheduled[job_id]
        enqueued = meta.get("enqueued-at")
        times[job_id] = JobTimes(
            datetime.fromisoformat(enqueued) if enqueued else None,
            datetime.fromisoformat(meta["started-at"]),
            datetime.fromisoformat(meta["finished-at"]),
        )
    return closes, times, checked


def at_default_interval(
    closes: dict[str, datetime],
    times: dict[str, JobTimes],
    checked: dict[str, datetime],
    run_s: float,
    scale: int,
) -> list[float]:
    """Polling's added latency at the default interval, in milliseconds: per job, the part of
    the interval still to wait after the job finished (finish → the check that saw it, at most
    one interval) grows ``scale`` times; the check itself and the interpreter's overhead
    do not."""
    out = []
    for job_id, closed in closes.items():
        t, check = times.get(job_id), checked.get(job_id)
        if t is None or check is None:
            continue
        waited = min(max((check - t.finished_at).total_seconds(), 0.0), run_s)
        added = (closed - t.finished_at).total_seconds()
        out.append((added + waited * (scale - 1)) * 1000)
    return out


def spread(values_ms: list[float], scale: float = 1.0) -> dict[str, float]:
    """p50/p95/p99 in milliseconds (times ``scale``)."""
    return {f"p{q}": round(percentile(values_ms, q) * scale, 1) for q in (50, 95, 99)}


def latencies(
    closes: dict[str, datetime], times: dict[str, JobTimes]
) -> tuple[list[float], list[float]]:
    """(added latency: finished on the consumer → task closed; queueing: enqueued → started),
    in milliseconds, for the jobs seen on both sides."""
    added, queued = [], []
    for job_id, closed in closes.items():
        t = times.get(job_id)
        if t is None:
            continue
        added.append((closed - t.finished_at).total_seconds() * 1000)
        if t.enqueued_at:
            queued.append((t.started_at - t.enqueued_at).total_seconds() * 1000)
    return added, queued


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds user+system, peak RSS bytes) of a live process, from /proc (Linux);
    (0, 0) where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
        with open(f"/proc/{pid}/status") as f:
            hwm = next((line for line in f if line.startswith("VmHWM:")), "VmHWM: 0 kB")
        return cpu, int(hwm.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        return 0.0, 0
