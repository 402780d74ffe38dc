"""Keep running jobs alive: extend SQS visibility and heartbeat their Step Functions tasks.

One thread for all of a worker's jobs. Visibility extensions are batched
(ChangeMessageVisibilityBatch in tens) every half of the visibility timeout, a failed round again
after ``EXTEND_RETRY_S``, and never wait for
a heartbeat: heartbeats run on a small bounded pool, so a throttled Step Functions cannot delay
an extension (which would let a running job's message reappear and run twice).

Heartbeats go **per execution**, not per job. Their only purpose (liveness comes from SQS, see
:mod:`bridge.timing`) is to learn that a task is over, and a task is ended from outside by its
execution (stopped, timed out, failed), which ends all of that execution's tasks at once. So the
jobs of one execution (``execution_arn``; for a DISTRIBUTED map, the child execution) form a
group with one jittered schedule; each interval one member, in turn, is heartbeated. When it
answers task-closed, every other member is probed right away (one heartbeat each, on the pool)
and each closed one is reported, so a job whose own task timed out while its siblings run on
is told apart from a stopped execution. Two cases keep per-task heartbeats:

* ``HeartbeatSeconds`` is set (:attr:`TimingModel.per_task_heartbeats`): each task must be
  heartbeated within it, at :attr:`TimingModel.heartbeat_every_s`;
* a job tracked without its execution (a held message): a group of its own.

Where the worker knows a task's ``TimeoutSeconds`` deadline (``task_deadline_in_s``), that job is
probed once just after it rather than at the group's next turn.

A heartbeat answered ``TaskTimedOut`` / ``InvalidToken`` / ``TaskDoesNotExist`` means the task is
over: ``on_task_closed(message_id)`` lets the worker cancel the job. Its message stays hidden
until the worker settles it. A settled job (its result sent, its delete pending) is never
heartbeated: its task was closed by us.

Visibility changes (extension rounds and :meth:`Keepalive.release`) are serialised by one lock,
so a message handed back to the queue can never be hidden again by a round that started before.
SQS refuses to keep a message hidden past 12 hours from its receipt; extensions stop at that cap
(the worker's job timeout ends jobs before it: see ``docs/timing.md``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge.batching import in_batches
from bridge.contract import Job, mask_token
from bridge.errors import TASK_CLOSED_ERRORS, error_code
from bridge.timing import (
    DEADLINE_PROBE_DELAY_S,
    DEFAULT_VISIBILITY_TIMEOUT_S,
    EXTEND_RETRY_S,
    HEARTBEAT_JITTER,
    KEEPALIVE_TICK_S,
    TimingModel,
)
from consumers.threads import CriticalThread, OnDeath

log = logging.getLogger(__name__)

JITTER = HEARTBEAT_JITTER
TICK_S = KEEPALIVE_TICK_S


def probe_task(sfn: Any, token: str) -> tuple[str | None, bool]:
    """Send one heartbeat: (the error code if Step Functions says the task is over, else None;
    whether Step Functions answered at all). Throttling, 5xx and network errors are no answer:
    a caller that must know (the stale check) asks again."""
    try:
        sfn.send_task_heartbeat(taskToken=token)
    except ClientError as exc:
        code = error_code(exc)
        if code in TASK_CLOSED_ERRORS:
            return code, True
        log.warning("heartbeat failed: %s (token %s)", code, mask_token(token))
        return None, False
    except BotoCoreError as exc:
        log.warning("heartbeat failed: %s (token %s)", exc, mask_token(token))
        return None, False
    return None, True


def closed_task_error(sfn: Any, token: str) -> str | None:
    """Send one heartbeat; the error code if Step Functions says the task is over, else None.
    Any other failure (throttling, network) answers None: the job is presumed alive."""
    return probe_task(sfn, token)[0]


@dataclass
class Tracked:
    receipt_handle: str
    token: str
    job_id: str
    #: time.monotonic() at receipt (the 12-hour cap counts from here).
    received_at: float
    #: The heartbeat group: the execution, or the message itself (per-task heartbeats).
    group: str = ""
    #: When to probe this task once because its TimeoutSeconds has passed (None: unknown).
    probe_at: float | None = None
    heartbeat_in_flight: bool = False
    #: Step Functions said the task is over, or its result is sent: no more heartbeats.
    task_closed: bool = False


@dataclass
class Group:
    """The jobs heartbeated together: one schedule, one representative per interval."""

    members: list[str] = field(default_factory=list)
    next_heartbeat: float = 0.0
    #: Rotates the representative so every token is exercised in turn.
    turn: int = 0
    in_flight: bool = False


class Keepalive:
    def __init__(
        self,
        sqs: Any,
        sfn: Any,
        queue_url: str,
        timing: TimingModel,
        on_task_closed: Callable[[str], None] | None = None,
        on_call: Callable[[str, int], None] | None = None,
        heartbeat_concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_death: OnDeath | None = None,
        executor: Executor | None = None,
    ) -> None:
        """``on_death``: told if the keep-alive thread dies (:mod:`consumers.threads`).
        ``executor``: where heartbeats run (default: a pool of ``heartbeat_concurrency``
        threads; tests pass one that runs them at once)."""
        self.sqs, self.sfn, self.queue_url = sqs, sfn, queue_url
        self.visibility_timeout_s = int(timing.visibility_timeout_s or DEFAULT_VISIBILITY_TIMEOUT_S)
        self.extend_every_s = timing.extend_every_s
        self.heartbeat_every_s = timing.heartbeat_every_s
        self.per_task = timing.per_task_heartbeats
        self.cap_s = timing.visibility_cap_s
        self.on_task_closed = on_task_closed
        #: Counts calls for metrics: ("visibility_extensions" | "heartbeats", n).
        self.on_call = on_call or (lambda _name, _n: None)
        self.clock = clock
        self.rng = rng or random.Random()
        self._tracked: dict[str, Tracked] = {}
        self._groups: dict[str, Group] = {}
        self._lock = threading.Lock()
        self._visibility_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = CriticalThread("keepalive", self._run, on_death)
        self._heartbeats = executor or ThreadPoolExecutor(
            heartbeat_concurrency, thread_name_prefix="beat"
        )
        self._next_extend: float | None = None

    # --- tracking ------------------------------------------------------------------------
    def track(
        self,
        message_id: str,
        receipt_handle: str,
        token: str,
        job_id: str,
        *,
        execution_arn: str | None = None,
        task_deadline_in_s: float | None = None,
    ) -> None:
        """Keep a message hidden and its task heartbeated. ``execution_arn``: the execution the
        job belongs to (its jobs share one heartbeat; None: heartbeated alone).
        ``task_deadline_in_s``: seconds until the task's TimeoutSeconds runs out, when known:
        the task is probed just after it."""
        now = self.clock()
        group = f"job:{message_id}" if self.per_task or not execution_arn else execution_arn
        probe_at = None
        if task_deadline_in_s is not None:
            probe_at = now + max(0.0, task_deadline_in_s) + DEADLINE_PROBE_DELAY_S
        with self._lock:
            self._forget(message_id)
            self._tracked[message_id] = Tracked(
                receipt_handle, token, job_id, now, group=group, probe_at=probe_at
            )
            members = self._groups.get(group)
            if members is None:
                members = self._groups[group] = Group(next_heartbeat=now + self._jittered())
            members.members.append(message_id)

    def renew(self, message_id: str, receipt_handle: str) -> bool:
        """The message was received again: extend it with its new receipt handle from now on.
        False when it is no longer tracked."""
        with self._lock:
            tracked = self._tracked.get(message_id)
            if tracked is None:
                return False
            tracked.receipt_handle = receipt_handle
            return True

    def settle(self, message_id: str) -> None:
        """The job's result is sent: no more heartbeats (its task is closed by us, and a
        heartbeat would read that as a cancellation), but keep its message hidden until
        :meth:`untrack` (the delete may wait for a batch)."""
        with self._lock:
            tracked = self._tracked.get(message_id)
            if tracked is not None:
                tracked.task_closed = True

    def untrack(self, message_id: str) -> None:
        with self._lock:
            self._forget(message_id)

    def _forget(self, message_id: str) -> Tracked | None:
        """Drop a message and its group membership (the caller holds ``_lock``)."""
        tracked = self._tracked.pop(message_id, None)
        if tracked is not None:
            group = self._groups.get(tracked.group)
            if group is not None:
                group.members.remove(message_id)
                if not group.members:
                    del self._groups[tracked.group]
        return tracked

    def _jittered(self) -> float:
        return self.heartbeat_every_s * (1 + self.rng.uniform(-JITTER, JITTER))

    # --- thread --------------------------------------------------------------------------
    def start(self) -> Keepalive:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._heartbeats.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            self.tick()

    def tick(self) -> None:
        """One pass of the thread: an extension round if one is due, then due heartbeats.
        Public so tests can drive the keep-alive on a fake clock without its thread."""
        now = self.clock()
        if self._next_extend is None:
            self._next_extend = now + self.extend_every_s
        elif now >= self._next_extend:
            extended = self.extend_visibility()
            # A failed call is tried again soon: the message has only the rest of its timeout.
            wait = self.extend_every_s if extended else min(EXTEND_RETRY_S, self.extend_every_s)
            self._next_extend = now + wait
        self.heartbeat_due()

    # --- visibility ----------------------------------------------------------------------
    def extend_visibility(self) -> bool:
        """One round for every tracked message; False when a call failed (SQS unreachable,
        throttled past botocore's retries): the round is then due again soon."""
        with self._visibility_lock:
            now = self.clock()
            with self._lock:
                items = list(self._tracked.values())
            entries = []
            for item in items:
                # Never ask past SQS's cap (it refuses the whole entry); the job timeout ends
                # the job before the message can reappear.
                left = int(self.cap_s - (now - item.received_at)) - 1
                seconds = min(self.visibility_timeout_s, left)
                if seconds >= 1:
                    entries.append((item, seconds))
            results = [self._extend_batch(batch) for batch in in_batches(entries)]
            return all(results)

    def _extend_batch(self, batch: Sequence[tuple[Tracked, int]]) -> bool:
        try:
            response = self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": t.receipt_handle, "VisibilityTimeout": s}
                    for i, (t, s) in enumerate(batch)
                ],
            )
        except (BotoCoreError, ClientError):
            log.exception("extending visibility failed; trying again in %.0f s", EXTEND_RETRY_S)
            return False
        self.on_call("visibility_extensions", len(batch))
        for failed in response.get("Failed", []):
            job_id = batch[int(failed["Id"])][0].job_id
            log.warning("visibility not extended for job %s: %s", job_id, failed.get("Code"))
        return True

    def release(self, message_ids: list[str]) -> int:
        """Hand messages back to the queue now (visibility 0) and stop tracking them.
        Returns how many SQS accepted."""
        with self._visibility_lock:
            with self._lock:
                forgotten = [self._forget(m) for m in message_ids]
                handles = [t.receipt_handle for t in forgotten if t is not None]
            return release_handles(self.sqs, self.queue_url, handles)

    # --- heartbeats ----------------------------------------------------------------------
    def heartbeat_due(self) -> None:
        """Submit what is due: one heartbeat per group whose turn has come, and a probe for each
        task whose known deadline has passed."""
        now = self.clock()
        work: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        with self._lock:
            for group in self._groups.values():
                if group.in_flight or now < group.next_heartbeat:
                    continue
                live = [m for m in group.members if self._may_beat(m)]
                if not live:
                    # Nothing to ask about now (all settled or being probed): try next interval.
                    group.next_heartbeat = now + self._jittered()
                    continue
                message_id = live[group.turn % len(live)]
                group.turn += 1
                group.in_flight = True
                self._tracked[message_id].heartbeat_in_flight = True
                work.append((self._beat_group, (group, message_id, self._tracked[message_id])))
            for message_id, tracked in self._tracked.items():
                if tracked.probe_at is not None and now >= tracked.probe_at:
                    tracked.probe_at = None
                    if self._may_beat(message_id):
                        tracked.heartbeat_in_flight = True
                        work.append((self._probe, (message_id, tracked)))
        self._submit(work)

    def _may_beat(self, message_id: str) -> bool:
        tracked = self._tracked[message_id]
        return not tracked.task_closed and not tracked.heartbeat_in_flight

    def _submit(self, work: list[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
        for function, args in work:
            try:
                self._heartbeats.submit(function, *args)
            except RuntimeError:  # pool shut down: stopping
                return

    def _heartbeat(self, message_id: str, tracked: Tracked) -> bool:
        """One heartbeat for one task; True when it says the task is closed (then reported)."""
        try:
            code = closed_task_error(self.sfn, tracked.token)
            self.on_call("heartbeats", 1)
        finally:
            tracked.heartbeat_in_flight = False
        if code is None:
            return False
        with self._lock:
            if tracked.task_closed:  # settled meanwhile: we closed it ourselves
                return True
            tracked.task_closed = True
        log.warning(
            "task of job %s is closed (%s, token %s): cancelling it",
            tracked.job_id,
            code,
            mask_token(tracked.token),
        )
        if self.on_task_closed:
            self.on_task_closed(message_id)
        return True

    def _beat_group(self, group: Group, message_id: str, tracked: Tracked) -> None:
        """The group's heartbeat; if its representative's task is closed, probe the others."""
        try:
            closed = self._heartbeat(message_id, tracked)
        finally:
            with self._lock:
                group.in_flight = False
                group.next_heartbeat = self.clock() + self._jittered()
        if not closed:
            return
        work: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        with self._lock:
            for other in group.members:
                if other != message_id and self._may_beat(other):
                    self._tracked[other].heartbeat_in_flight = True
                    work.append((self._probe, (other, self._tracked[other])))
        self._submit(work)

    def _probe(self, message_id: str, tracked: Tracked) -> None:
        self._heartbeat(message_id, tracked)


def release_handles(sqs: Any, queue_url: str, receipt_handles: list[str]) -> int:
    """Visibility 0 for each handle, in batches; failures are logged (the message then
    reappears after its visibility timeout: late, never lost)."""
    accepted = 0
    for batch in in_batches(receipt_handles):
        try:
            response = sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                    for i, h in enumerate(batch)
                ],
            )
            accepted += len(batch) - len(response.get("Failed", []))
        except (BotoCoreError, ClientError):
            log.exception(
                "releasing %d messages failed; they reappear after their visibility timeout",
                len(batch),
            )
    return accepted


def task_deadline_in_s(
    job: Job, timing: TimingModel, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """Seconds until the job's task reaches its ``TimeoutSeconds`` (``task_started_at`` plus
    the model's ``task_timeout_s``), or None when either is unknown: the worker then learns of
    the timeout from the execution's next heartbeat."""
    if job.task_started_at is None or timing.task_timeout_s is None:
        return None
    started = job.task_started_at
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return (started - now()).total_seconds() + timing.task_timeout_s
