"""Keep running jobs alive: extend SQS visibility and heartbeat their Step Functions tasks.

One thread for all of a worker's jobs, so the calls are batched per interval
(ChangeMessageVisibilityBatch in tens) instead of one timer per job. A heartbeat answered with
``TaskTimedOut`` / ``InvalidToken`` / ``TaskDoesNotExist`` means the task is over (the execution
was stopped or timed out): the job is reported through ``on_task_closed``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge.aws import TASK_CLOSED_ERRORS
from bridge.batching import in_batches
from bridge.contract import mask_token

log = logging.getLogger(__name__)


@dataclass
class Tracked:
    receipt_handle: str
    token: str
    job_id: str
    #: Step Functions said the task is over; stop heartbeating, keep the message hidden
    #: until the job finishes so it does not run again.
    task_closed: bool = False


class Keepalive:
    """Every ``extend_every_s`` pushes visibility out by ``visibility_timeout_s``; every
    ``heartbeat_every_s`` sends SendTaskHeartbeat for each tracked token."""

    def __init__(
        self,
        sqs: Any,
        sfn: Any,
        queue_url: str,
        visibility_timeout_s: int,
        heartbeat_every_s: float,
        on_task_closed: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sqs, self.sfn, self.queue_url = sqs, sfn, queue_url
        self.visibility_timeout_s = visibility_timeout_s
        self.extend_every_s = max(1.0, visibility_timeout_s / 3)
        self.heartbeat_every_s = heartbeat_every_s
        self.on_task_closed = on_task_closed
        self.clock = clock
        self._tracked: dict[str, Tracked] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keepalive", daemon=True)

    def track(self, message_id: str, item: Tracked) -> None:
        with self._lock:
            self._tracked[message_id] = item

    def untrack(self, message_id: str) -> None:
        with self._lock:
            self._tracked.pop(message_id, None)

    def start(self) -> Keepalive:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        now = self.clock()
        next_extend, next_heartbeat = now + self.extend_every_s, now + self.heartbeat_every_s
        while not self._stop.wait(0.5):
            now = self.clock()
            if now >= next_extend:
                self.extend_visibility()
                next_extend = now + self.extend_every_s
            if now >= next_heartbeat:
                self.heartbeat()
                next_heartbeat = now + self.heartbeat_every_s

    def _snapshot(self) -> list[tuple[str, Tracked]]:
        with self._lock:
            return list(self._tracked.items())

    def extend_visibility(self) -> None:
        for batch in in_batches(self._snapshot()):
            entries = [
                {
                    "Id": str(i),
                    "ReceiptHandle": t.receipt_handle,
                    "VisibilityTimeout": self.visibility_timeout_s,
                }
                for i, (_, t) in enumerate(batch)
            ]
            try:
                response = self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url, Entries=entries
                )
            except (BotoCoreError, ClientError):
                log.exception("extending visibility failed; will retry next interval")
                continue
            for failed in response.get("Failed", []):
                job_id = batch[int(failed["Id"])][1].job_id
                log.warning("visibility not extended for job %s: %s", job_id, failed.get("Code"))

    def heartbeat(self) -> None:
        for message_id, tracked in self._snapshot():
            if tracked.task_closed:
                continue
            try:
                self.sfn.send_task_heartbeat(taskToken=tracked.token)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in TASK_CLOSED_ERRORS:
                    tracked.task_closed = True
                    log.warning(
                        "task for job %s is closed (%s, token %s)",
                        tracked.job_id,
                        code,
                        mask_token(tracked.token),
                    )
                    if self.on_task_closed:
                        self.on_task_closed(message_id)
                else:
                    log.warning("heartbeat for job %s failed: %s", tracked.job_id, code)
            except BotoCoreError:
                log.exception("heartbeat for job %s failed", tracked.job_id)
