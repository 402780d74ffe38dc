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
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge import strict_json
from bridge.chaos.checks import POISON_MARKER, bug_lines, rejected_markers, token_leaks
from bridge.chaos.work import ERROR as CHAOS_ERROR
from bridge.contract import (
    ERROR_DEAD_LETTERED,
    ERROR_HANDLER_CRASHED,
    ERROR_INVALID_OUTPUT,
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
    #: job id -> when its first result reached the results queue (epoch seconds).
    delivered: dict[str, float] = field(default_factory=dict)
    #: (pid, job id, parent pid) of daemons alive after every job had ended.
    daemons_alive: list[tuple[int, str, int]] = field(default_factory=list)
    tokens_minted: int = 0

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
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut by SIGKILL
                if isinstance(entry, dict):
                    self.journal.append({**entry, "consumer": path.stem})
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
    tally = Tally(lettered_jobs)
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
        _classify(execution, events, tally)
    outcomes, failed_by, lost, mismatched = (
        tally.outcomes,
        tally.failed_by,
        tally.lost,
        tally.mismatched,
    )
    healthy_lettered, foreign_outputs = tally.healthy_dead_lettered, tally.foreign_outputs
    stale = _stale_runs(obs, closes)
    fleet = obs.fleet
    unreliable = (fleet.killed_generations | fleet.stopped_generations) if fleet else set()
    reran = reruns_after_result(obs.journal, obs.delivered, unreliable)
    escaped, orphaned = _daemons(obs)
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
        "healthy_dead_lettered": len(healthy_lettered),
        "healthy_dead_lettered_jobs": healthy_lettered[:20],
        "reran_after_result": len(reran),
        "reran_after_result_jobs": reran[:20],
        "outputs_not_their_jobs": len(foreign_outputs),
        "outputs_not_their_jobs_list": foreign_outputs[:20],
        "daemons_escaped": len(escaped),
        "daemons_escaped_list": escaped[:20],
        "daemons_started": sum(1 for e in obs.journal if e.get("event") == "daemon"),
        "daemons_started_isolated": sum(
            1 for e in obs.journal if e.get("event") == "daemon" and e.get("isolated")
        ),
        "daemons_left_by_killed_consumers": len(orphaned),
        "duplicate_successes": duplicates,
        "stale_runs_in_full": len(stale),
        "consumers_killed": fleet.killed if fleet else 0,
        "consumers_sigterm": fleet.terminated if fleet else 0,
        "consumers_sigstopped": fleet.stops if fleet else 0,
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
        "token_lengths": _lengths(obs.tokens | poison_tokens),
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
        f"{len(healthy_lettered)} healthy jobs dead-lettered" * bool(healthy_lettered),
        f"{len(reran)} jobs run again after their result was delivered" * bool(reran),
        f"{len(foreign_outputs)} successes with another job's output" * bool(foreign_outputs),
        f"{len(escaped)} daemons outlived their jobs" * bool(escaped),
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


#: The error each job mode must fail with (``ok`` and ``daemon`` jobs must succeed). A crashing
#: job fails Bridge.HandlerCrashed at the worker's crash limit, before maxReceiveCount could
#: dead-letter it.
EXPECTED_ERRORS = {
    "fail": CHAOS_ERROR,
    "hang": ERROR_JOB_TIMEOUT,
    "nan": ERROR_INVALID_OUTPUT,
    "crash": ERROR_HANDLER_CRASHED,
}


@dataclass
class Tally:
    """What :func:`_classify` counts, execution by execution."""

    lettered: set[tuple[str, int]]
    outcomes: Counter[str] = field(default_factory=Counter)
    failed_by: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    #: Jobs other than the crashing ones that ended Bridge.DeadLettered.
    healthy_dead_lettered: list[str] = field(default_factory=list)
    #: Successes whose output is not their own job's (another job's id or number, or none).
    foreign_outputs: list[str] = field(default_factory=list)


def own_output(execution: Execution, index: int | None, output: Any) -> bool:
    """``output`` is what job ``index`` of ``execution`` returns (``bridge.chaos.work``): its
    own job id (this execution, this index) and number. ``index`` None: whichever job the id
    names, if that job is one of this execution's."""
    if not isinstance(output, dict) or not isinstance(output.get("job_id"), str):
        return False
    key = _job_key(output["job_id"])
    if key is None or key[0] != execution.name:
        return False
    if index is None:
        index = key[1]
    if key[1] != index or not 0 <= index < len(execution.items):
        return False
    return bool(output.get("n") == execution.items[index].get("n"))


def _classify(execution: Execution, events: list[dict[str, Any]], tally: Tally) -> None:
    n = len(execution.items)
    if execution.status == "ABORTED":
        outputs = [_task_output(e) for e in events if e["type"] == "TaskSucceeded"]
        ok = {o.get("job_id") for o in outputs if isinstance(o, dict)}
        tally.foreign_outputs += [
            f"{execution.name}: a success with output {str(o)[:120]}"
            for o in outputs
            if not own_output(execution, None, o)
        ]
        bad = [e for e in events if e["type"] == "TaskFailed"]
        for event in bad:
            tally.failed_by[str(event.get("taskFailedEventDetails", {}).get("error", "?"))] += 1
        tally.outcomes["succeeded"] += len(ok)
        tally.outcomes["cancelled"] += max(0, n - len(ok) - len(bad))
        return
    entries = _entries(execution)
    if execution.status != "SUCCEEDED" or entries is None or len(entries) != n:
        tally.lost += [f"{execution.name}/{i} ({execution.status})" for i in range(n)]
        return
    for index, (item, entry) in enumerate(zip(execution.items, entries, strict=True)):
        job, mode = f"{execution.name}/{index}", item["mode"]
        error = str(entry.get("error") or "") if isinstance(entry, dict) else "?"
        if isinstance(entry, dict) and entry.get("status") == "SUCCEEDED":
            tally.outcomes["succeeded"] += 1
            if mode not in ("ok", "daemon"):
                tally.mismatched.append(f"{job}: asked {mode}, succeeded")
            if not own_output(execution, index, entry.get("output")):
                tally.foreign_outputs.append(
                    f"{job}: succeeded with output {str(entry.get('output'))[:120]}"
                )
            continue
        if error in TIMEOUT_ERRORS:
            tally.lost.append(f"{job} ({error})")
            continue
        if error == ERROR_DEAD_LETTERED:
            tally.outcomes["dead_lettered"] += 1
            if (execution.name, index) not in tally.lettered:
                tally.lost.append(f"{job} (dead-lettered, in no DLQ or archive)")
            if mode == "crash":
                tally.mismatched.append(f"{job}: a crashing job, dead-lettered")
            else:
                tally.healthy_dead_lettered.append(f"{job} (asked {mode})")
            continue
        tally.failed_by[error] += 1
        expected = EXPECTED_ERRORS.get(mode)
        if error != expected:
            tally.mismatched.append(f"{job}: asked {mode}, failed {error}")


def reruns_after_result(
    journal: list[dict[str, Any]], delivered: dict[str, float], unreliable: Collection[str] = ()
) -> list[str]:
    """Runs of a job that started after its result had been delivered: its work was done, and
    it ran again. A result is delivered when it reaches the results queue (its
    ``SentTimestamp``), or when a run finished in full in a consumer process that was neither
    killed, crashed nor frozen (``unreliable``: "consumer-I.G" names) afterwards: that worker
    then holds the result (being sent, or in its spool) and must not let the job's message run
    again meanwhile. A run counts when it started more than :data:`STALE_SLACK_S` after either.

    A job the campaign also sent a copy of (a duplicate delivery: ``copy`` in the journal) has
    two messages for one task, and each may run until the task closes, whichever comes first
    (runs after the close are :func:`_stale_runs`' business): for such a job only a run of the
    same message after a finished run of it counts (the journal's lines say which message a
    run is of: one process may run both, even at once)."""
    copied = {str(e.get("job_id")) for e in journal if e.get("event") == "start" and e.get("copy")}
    finished: dict[tuple[str, bool], float] = {}  # (job id, copy) -> first finished run
    for entry in journal:
        if entry.get("event") == "finished" and entry.get("consumer") not in unreliable:
            key = (str(entry.get("job_id")), bool(entry.get("copy")))
            finished[key] = min(entry["t"], finished.get(key, entry["t"]))
    out = []
    for entry in journal:
        if entry.get("event") != "start":
            continue
        job_id, copy = str(entry.get("job_id")), bool(entry.get("copy"))
        result = None if job_id in copied else delivered.get(job_id)
        for what, at in (("its result", result), ("a run finished", finished.get((job_id, copy)))):
            if at is not None and entry["t"] > at + STALE_SLACK_S:
                out.append(f"{job_id} started {entry['t'] - at:.1f} s after {what}")
                break
    return out


def _daemons(obs: Observed) -> tuple[list[str], list[str]]:
    """Daemons alive after every job had ended: escaped (their consumer lived on: the worker
    should have killed them) and left by a consumer that was killed or crashed (reported:
    only a cgroup outlives a SIGKILLed worker)."""
    started = {e.get("daemon"): e for e in obs.journal if e.get("event") == "daemon"}
    killed = set(obs.fleet.killed_generations) if obs.fleet else set()
    escaped: list[str] = []
    orphaned: list[str] = []
    for pid, job_id, ppid in obs.daemons_alive:
        entry = started.get(pid, {})
        consumer = str(entry.get("consumer", ""))
        isolated = entry.get("isolated")
        run = "a run" if isolated is None else "an isolated run" if isolated else "a thread run"
        where = f"pid {pid} of job {job_id}, {run} (parent {ppid}, {consumer or 'consumer ?'})"
        (orphaned if consumer in killed else escaped).append(where)
    return escaped, orphaned


def _lengths(tokens: set[str]) -> dict[str, int]:
    sizes = [len(t) for t in tokens]
    if not sizes:
        return {}
    return {"min": min(sizes), "max": max(sizes), "at_2048": sum(1 for n in sizes if n >= 2048)}


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
