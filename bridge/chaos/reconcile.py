"""Reconcile every job of a campaign against Step Functions and the DLQs.

Sources, each read once after the run: each execution's status and output (the Map's entries,
index by index) or, for a stopped one, its history (``bridge.ops.inspect.executions``); the DLQs
and their archives (peeked as ``callback-bridge dlq list`` does: ``bridge.ops.inspect.peek``); the
consumers' journals (:mod:`bridge.chaos.work`); every log file of the run; the fault proxy's
counts. A job is **lost** when its execution is still waiting, timed out on ``TimeoutSeconds``
(``States.Timeout``: the bridge let it wait past its deadline), ended without an entry for it,
or was dead-lettered with no copy in a DLQ or archive.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge import strict_json
from bridge.chaos.checks import POISON_MARKER, bug_lines, rejected_markers, token_leaks
from bridge.chaos.work import ERROR as CHAOS_ERROR
from bridge.contract import (
    ERROR_DEAD_LETTERED,
    ERROR_JOB_TIMEOUT,
    MAX_ENVELOPE_DEPTH,
    read_text,
)
from bridge.ops.inspect.executions import ExecutionLens, scheduled_message
from bridge.ops.inspect.peek import peek

TIMEOUT_ERRORS = ("States.Timeout", "States.HeartbeatTimeout")
#: An execution's whole history (Step Functions' own limit).
MAX_EVENTS = 25_000
#: A job that started this long after its task had closed, and ran in full, was stale.
STALE_SLACK_S = 0.5


@dataclass
class Execution:
    arn: str
    name: str
    items: list[dict[str, Any]]
    started_at: float
    stopped_at: float | None = None
    status: str = "RUNNING"
    described: dict[str, Any] = field(default_factory=dict)


@dataclass
class Observed:
    """Everything the campaign saw; :func:`summarise` turns it into the report."""

    seed: int
    work_dir: Path
    executions: list[Execution] = field(default_factory=list)
    all_started: bool = False
    faults: Counter[str] = field(default_factory=Counter)
    poison: list[Any] = field(default_factory=list)
    #: marker -> SQS's refusal (None: sent)
    poison_sent: dict[str, str | None] = field(default_factory=dict)
    proxy_faults: dict[str, int] = field(default_factory=dict)
    proxy_calls: int = 0
    proxy_duplicate_successes: int = 0
    duplicates_sent: dict[str, int] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    handler_errors: list[str] = field(default_factory=list)
    exit_codes: list[int | None] = field(default_factory=list)
    listeners: list[str] = field(default_factory=list)
    listener_checks: int = 0
    fleet: Any = None
    #: "foreign" (another region: must be unchanged) and "same_region" (reported) -> result
    foreign_checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    foreign_clients: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    #: Filled by collect().
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dead_letters: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    journal: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    #: (wall time, kind, seconds) of each scheduled fault, for the plot.
    fault_times: list[tuple[float, str, float]] = field(default_factory=list)
    started_wall: float = field(default_factory=time.time)

    def count_fault(self, kind: str, seconds: float = 0.0) -> None:
        self.faults[kind] += 1
        self.fault_times.append((time.time(), kind, seconds))

    @property
    def running(self) -> int:
        return sum(1 for e in self.executions if e.status == "RUNNING")

    def refresh(self, sfn: Any) -> int:
        """Describe the executions still running; returns the jobs of finished ones."""
        for execution in self.executions:
            if execution.status == "RUNNING":
                execution.described = sfn.describe_execution(executionArn=execution.arn)
                execution.status = execution.described["status"]
        return sum(len(e.items) for e in self.executions if e.status != "RUNNING")

    def collect(self, stack: Any) -> None:
        """Read histories, dead letters and journals (after the consumers stopped)."""
        sfn, sqs, config = stack.clients.sfn, stack.clients.sqs, stack.config
        self.refresh(sfn)
        lens = ExecutionLens(sfn, max_events=MAX_EVENTS)
        for execution in self.executions:
            events, _ = lens.history(execution.arn)
            self.histories[execution.arn] = events
            for event in events:
                message = scheduled_message(event)
                if message and isinstance(message.get("token"), str):
                    self.tokens.add(message["token"])
        for name in ("jobs_dlq_url", "jobs_archive_url", "results_dlq_url", "results_archive_url"):
            url = getattr(config, name, None)
            if url:
                self.dead_letters[name] = list(peek(sqs, url, limit=10_000).messages.values())
        for path in sorted(self.work_dir.glob("*.journal")):
            for line in path.read_text().splitlines():
                try:
                    self.journal.append(json.loads(line))
                except ValueError:
                    continue  # a line cut by SIGKILL
        self._foreign_check()

    def _foreign_check(self) -> None:
        """Is each foreign execution still waiting, its task untouched? Then stop it."""
        for key, check in self.foreign_checks.items():
            arn, sfn = check.get("arn"), self.foreign_clients.get(key)
            if not arn or sfn is None:
                continue
            described = sfn.describe_execution(executionArn=arn)
            events, _ = ExecutionLens(sfn).history(arn)
            closed = [e for e in events if e["type"] in ("TaskSucceeded", "TaskFailed")]
            check.update(
                checked=True,
                unchanged=described["status"] == "RUNNING" and not closed,
                status=described["status"],
            )
            if described["status"] == "RUNNING":
                sfn.stop_execution(executionArn=arn, error="Chaos.Done", cause="check over")


def _job_key(job_id: str) -> tuple[str, int] | None:
    """(execution name, map index) from ``name/RunJob/index/retry``."""
    parts = job_id.split("/")
    if len(parts) >= 4 and parts[-2].isdigit():
        return "/".join(parts[:-3]), int(parts[-2])
    return None


def _entries(execution: Execution) -> list[Any] | None:
    try:
        output = strict_json.loads(
            execution.described.get("output") or "null", max_depth=MAX_ENVELOPE_DEPTH
        )
    except strict_json.JSONError:
        return None
    return output if isinstance(output, list) else None


def _task_output(event: dict[str, Any]) -> Any:
    output = event.get("taskSucceededEventDetails", {}).get("output") or "null"
    try:
        return strict_json.loads(output, max_depth=MAX_ENVELOPE_DEPTH)
    except strict_json.JSONError:
        return None


def summarise(obs: Observed) -> dict[str, Any]:
    """The report: counts, invariants, and whether the campaign passed."""
    letters = [m for ms in obs.dead_letters.values() for m in ms]
    lettered_jobs = set()
    for message in letters:
        attributes = message.get("MessageAttributes", {})
        job_id = attributes.get("bridge-job-id", {}).get("StringValue")
        if not job_id:
            job_id = read_text(message.get("Body", ""), "job_id")  # a dead letter: maybe poison
        key = _job_key(job_id) if isinstance(job_id, str) else None
        if key:
            lettered_jobs.add(key)
    outcomes: Counter[str] = Counter()
    failed_by: Counter[str] = Counter()
    lost: list[str] = []
    mismatched: list[str] = []
    successes: Counter[str] = Counter()
    closes: dict[str, float] = {}
    timeline: list[tuple[float, str]] = []
    for execution in obs.executions:
        events = obs.histories.get(execution.arn, [])
        for event in events:
            if event["type"] == "TaskSucceeded":
                out = _task_output(event)
                if isinstance(out, dict) and isinstance(out.get("job_id"), str):
                    successes[out["job_id"]] += 1
                    closes.setdefault(out["job_id"], event["timestamp"].timestamp())
            if event["type"] in ("TaskSucceeded", "TaskFailed"):
                kind = "succeeded" if event["type"] == "TaskSucceeded" else "failed"
                timeline.append((event["timestamp"].timestamp(), kind))
        _classify(execution, events, lettered_jobs, outcomes, failed_by, lost, mismatched)
    stale = _stale_runs(obs, closes)
    duplicates_history = sum(1 for n in successes.values() if n > 1)
    injected = {m for m, refused in obs.poison_sent.items() if refused is None}
    in_letters = {m for msg in letters for m in POISON_MARKER.findall(msg.get("Body", ""))}
    rejected = rejected_markers(obs.work_dir)
    accounted = {
        p.marker
        for p in obs.poison
        if p.marker in injected and (p.marker in in_letters or p.marker in rejected)
    }
    unaccounted = sorted(injected - accounted)
    by_kind: Counter[str] = Counter(p.kind for p in obs.poison if p.marker in injected)
    where: Counter[str] = Counter(
        ("dlq" if p.marker in in_letters else "rejected" if p.marker in rejected else "missing")
        for p in obs.poison
        if p.marker in injected
    )
    poison_tokens = {p.token for p in obs.poison if p.token}
    leaks = token_leaks(obs.work_dir, obs.tokens, poison_tokens)
    bugs = [*obs.handler_errors, *bug_lines(obs.work_dir)]
    fleet = obs.fleet
    crashes = list(fleet.crashes) if fleet else []
    faults = {**obs.faults, **obs.proxy_faults, **obs.duplicates_sent}
    faults["poison_message"] = len(injected)
    foreign_ok = obs.foreign_checks.get("foreign", {}).get("unchanged") is True
    duplicates = max(duplicates_history, obs.proxy_duplicate_successes)
    obs.timeline = sorted(timeline)
    summary = {
        "seed": obs.seed,
        "jobs": sum(len(e.items) for e in obs.executions),
        "executions": len(obs.executions),
        "succeeded": outcomes["succeeded"],
        "failed": sum(failed_by.values()),
        "failed_by_error": dict(sorted(failed_by.items())),
        "cancelled": outcomes["cancelled"],
        "dead_lettered": outcomes["dead_lettered"],
        "lost": len(lost),
        "lost_jobs": lost[:20],
        "mismatched": len(mismatched),
        "mismatched_jobs": mismatched[:20],
        "duplicate_successes": duplicates,
        "stale_runs_in_full": len(stale),
        "consumers_killed": fleet.killed if fleet else 0,
        "consumers_sigterm": fleet.terminated if fleet else 0,
        "consumer_restarts": fleet.restarts if fleet else 0,
        "consumers_downed_by_poison_pills": fleet.pill_deaths if fleet else 0,
        "consumer_crashes": len(crashes),
        "consumer_crash_logs": [f"{log} (exit {code})" for _slot, code, log in crashes][:10],
        "handler_errors": len(bugs),
        "handler_error_lines": bugs[:10],
        "faults": dict(sorted(faults.items())),
        "proxied_calls": obs.proxy_calls,
        "malformed_injected": len(injected),
        "malformed_accounted": len(accounted),
        "malformed_by_kind": dict(sorted(by_kind.items())),
        "malformed_where": dict(sorted(where.items())),
        "malformed_unaccounted": unaccounted[:20],
        "malformed_refused_by_sqs": sorted(m for m, r in obs.poison_sent.items() if r)[:20],
        "token_leaks": len(leaks),
        "token_leak_lines": leaks[:10],
        "tokens_checked": len(obs.tokens) + len(poison_tokens),
        "listeners_off_loopback": obs.listeners[:10],
        "listener_checks": obs.listener_checks,
        "foreign_token": obs.foreign_checks.get("foreign", {}),
        "same_region_foreign_token": obs.foreign_checks.get("same_region", {}),
        "wall_s": round(obs.wall_s, 1),
        "work_dir": str(obs.work_dir),
    }
    problems = [
        f"{len(lost)} jobs lost" * bool(lost),
        f"{duplicates} duplicate successes accepted" * bool(duplicates),
        f"{len(stale)} stale jobs ran in full" * bool(stale),
        f"{len(mismatched)} jobs ended otherwise than asked" * bool(mismatched),
        f"{len(unaccounted)} malformed messages unaccounted" * bool(unaccounted),
        f"{len(crashes)} consumer crashes" * bool(crashes),
        f"{len(bugs)} handler or worker errors on some input" * bool(bugs),
        f"{len(leaks)} log lines with a full token" * bool(leaks),
        f"{len(obs.listeners)} listeners off loopback" * bool(obs.listeners),
        "the foreign-token result was not shown to change nothing" * (not foreign_ok),
    ]
    summary["problems"] = [p for p in problems if p]
    summary["passed"] = not summary["problems"]
    return summary


def _classify(
    execution: Execution,
    events: list[dict[str, Any]],
    lettered: set[tuple[str, int]],
    outcomes: Counter[str],
    failed_by: Counter[str],
    lost: list[str],
    mismatched: list[str],
) -> None:
    n = len(execution.items)
    if execution.status == "ABORTED":
        ok = {_task_output(e).get("job_id") for e in events if e["type"] == "TaskSucceeded"
              and isinstance(_task_output(e), dict)}  # fmt: skip
        bad = [e for e in events if e["type"] == "TaskFailed"]
        for event in bad:
            failed_by[str(event.get("taskFailedEventDetails", {}).get("error", "?"))] += 1
        outcomes["succeeded"] += len(ok)
        outcomes["cancelled"] += max(0, n - len(ok) - len(bad))
        return
    entries = _entries(execution)
    if execution.status != "SUCCEEDED" or entries is None or len(entries) != n:
        lost += [f"{execution.name}/{i} ({execution.status})" for i in range(n)]
        return
    for index, (item, entry) in enumerate(zip(execution.items, entries, strict=True)):
        job = f"{execution.name}/{index}"
        error = str(entry.get("error") or "") if isinstance(entry, dict) else "?"
        if isinstance(entry, dict) and entry.get("status") == "SUCCEEDED":
            outcomes["succeeded"] += 1
            if item["mode"] != "ok":
                mismatched.append(f"{job}: asked {item['mode']}, succeeded")
            continue
        if error in TIMEOUT_ERRORS:
            lost.append(f"{job} ({error})")
            continue
        if error == ERROR_DEAD_LETTERED:
            outcomes["dead_lettered"] += 1
            if (execution.name, index) not in lettered:
                lost.append(f"{job} (dead-lettered, in no DLQ or archive)")
            continue
        if item["mode"] == "crash":
            mismatched.append(f"{job}: a poison pill, ended {error or entry}")
            continue
        failed_by[error] += 1
        expected = {"fail": CHAOS_ERROR, "hang": ERROR_JOB_TIMEOUT}.get(item["mode"])
        if error != expected:
            mismatched.append(f"{job}: asked {item['mode']}, failed {error}")


def _stale_runs(obs: Observed, closes: dict[str, float]) -> list[str]:
    """Journal runs that finished in full but started after their task had closed (a
    success's TaskSucceeded, or the stop of the job's execution)."""
    stopped = {e.name: e.stopped_at for e in obs.executions if e.stopped_at}
    started: dict[tuple[str, int], float] = {}
    out = []
    for entry in obs.journal:
        key = (entry["job_id"], entry["pid"])
        if entry["event"] == "start":
            started[key] = entry["t"]
            continue
        if entry["event"] != "finished" or key not in started:
            continue
        job_id, began = entry["job_id"], started[key]
        closed = closes.get(job_id)
        parsed = _job_key(job_id)
        if parsed and parsed[0] in stopped:
            stop = stopped[parsed[0]]
            closed = min(closed, stop) if closed and stop else closed or stop
        if closed is not None and began > closed + STALE_SLACK_S:
            out.append(f"{job_id} started {began - closed:.1f} s after its task closed")
    return out
