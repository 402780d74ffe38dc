"""Keep running jobs alive: extend SQS visibility and heartbeat their Step Functions tasks.

One thread for all of a worker's jobs. Visibility extensions are batched
(ChangeMessageVisibilityBatch in tens) every third of the visibility timeout and never wait for
a heartbeat: heartbeats run on a small bounded pool, each job on its own jittered schedule, so a
throttled Step Functions cannot delay an extension (which would let a running job's message
reappear and run twice).

A heartbeat answered ``TaskTimedOut`` / ``InvalidToken`` / ``TaskDoesNotExist`` means the task is
over (execution stopped or timed out): ``on_task_closed(message_id)`` lets the worker cancel the
job. Its message stays hidden until the worker settles it.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge.batching import in_batches
from bridge.contract import mask_token
from bridge.errors import TASK_CLOSED_ERRORS, error_code
from bridge.timing import TimingModel
from consumers.threads import CriticalThread, OnDeath

log = logging.getLogger(__name__)

#: Heartbeat schedules are spread by +/- this fraction so a fleet does not beat in step.
JITTER = 0.1
TICK_S = 0.25


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
    next_heartbeat: float
    heartbeat_in_flight: bool = False
    #: Step Functions said the task is over; no more heartbeats.
    task_closed: bool = False


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
    ) -> None:
        """``on_death``: told if the keep-alive thread dies (:mod:`consumers.threads`)."""
        self.sqs, self.sfn, self.queue_url = sqs, sfn, queue_url
        self.visibility_timeout_s = int(timing.visibility_timeout_s or 300)
        self.extend_every_s = timing.extend_every_s
        self.heartbeat_every_s = float(timing.heartbeat_interval_s or 60)
        self.cap_s = timing.visibility_cap_s
        self.on_task_closed = on_task_closed
        #: Counts calls for metrics: ("visibility_extensions" | "heartbeats", n).
        self.on_call = on_call or (lambda _name, _n: None)
        self.clock = clock
        self.rng = rng or random.Random()
        self._tracked: dict[str, Tracked] = {}
        self._lock = threading.Lock()
        self._visibility_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = CriticalThread("keepalive", self._run, on_death)
        self._heartbeats = ThreadPoolExecutor(heartbeat_concurrency, thread_name_prefix="beat")

    # --- tracking ------------------------------------------------------------------------
    def track(self, message_id: str, receipt_handle: str, token: str, job_id: str) -> None:
        now = self.clock()
        with self._lock:
            self._tracked[message_id] = Tracked(
                receipt_handle, token, job_id, now, now + self._jittered()
            )

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
            self._tracked.pop(message_id, None)

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
        next_extend = self.clock() + self.extend_every_s
        while not self._stop.wait(TICK_S):
            now = self.clock()
            if now >= next_extend:
                self.extend_visibility()
                next_extend = now + self.extend_every_s
            self.heartbeat_due()

    # --- visibility ----------------------------------------------------------------------
    def extend_visibility(self) -> None:
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
            for batch in in_batches(entries):
                self._extend_batch(batch)

    def _extend_batch(self, batch: Sequence[tuple[Tracked, int]]) -> None:
        try:
            response = self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": t.receipt_handle, "VisibilityTimeout": s}
                    for i, (t, s) in enumerate(batch)
                ],
            )
        except (BotoCoreError, ClientError):
            log.exception("extending visibility failed; will retry next interval")
            return
        self.on_call("visibility_extensions", len(batch))
        for failed in response.get("Failed", []):
            job_id = batch[int(failed["Id"])][0].job_id
            log.warning("visibility not extended for job %s: %s", job_id, failed.get("Code"))

    def release(self, message_ids: list[str]) -> int:
        """Hand messages back to the queue now (visibility 0) and stop tracking them.
        Returns how many SQS accepted."""
        with self._visibility_lock:
            with self._lock:
                handles = [
                    self._tracked.pop(m).receipt_handle for m in message_ids if m in self._tracked
                ]
            return release_handles(self.sqs, self.queue_url, handles)

    # --- heartbeats ----------------------------------------------------------------------
    def heartbeat_due(self) -> None:
        now = self.clock()
        with self._lock:
            due = [
                (message_id, t)
                for message_id, t in self._tracked.items()
                if now >= t.next_heartbeat and not t.heartbeat_in_flight and not t.task_closed
            ]
            for _, t in due:
                t.heartbeat_in_flight = True
        for message_id, tracked in due:
            try:
                self._heartbeats.submit(self._beat, message_id, tracked)
            except RuntimeError:  # pool shut down: stopping
                return

    def _beat(self, message_id: str, tracked: Tracked) -> None:
        try:
            code = closed_task_error(self.sfn, tracked.token)
            self.on_call("heartbeats", 1)
        finally:
            tracked.heartbeat_in_flight = False
            tracked.next_heartbeat = self.clock() + self._jittered()
        if code is None:
            return
        tracked.task_closed = True
        log.warning(
            "task of job %s is closed (%s, token %s): cancelling it",
            tracked.job_id,
            code,
            mask_token(tracked.token),
        )
        if self.on_task_closed:
            self.on_task_closed(message_id)


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
