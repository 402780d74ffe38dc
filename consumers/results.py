"""Send results and delete the jobs they answer, in batches, off the job threads.

A job is deleted from the jobs queue only after its result is on the results queue, so a crash
in between means the job runs again (at-least-once), never that its result is lost. Results that
finish close together go out in one SendMessageBatch and one DeleteMessageBatch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge.batching import SQS_MAX_BATCH
from bridge.contract import Result, encode

log = logging.getLogger(__name__)

#: After the first result arrives, wait this long for more to share the batch.
LINGER_S = 0.02
#: Per-entry send failures are retried this many times before the job is left to reappear.
MAX_SEND_ATTEMPTS = 5
RETRY_BACKOFF_S = 0.2


@dataclass
class Pending:
    result: Result
    message_id: str
    receipt_handle: str


#: Called once per job when the sender is done with it: (message_id, delivered).
DoneCallback = Callable[[str, bool], None]


class ResultSender:
    def __init__(
        self, sqs: Any, results_queue_url: str, jobs_queue_url: str, on_done: DoneCallback
    ) -> None:
        self.sqs = sqs
        self.results_queue_url = results_queue_url
        self.jobs_queue_url = jobs_queue_url
        self.on_done = on_done
        self._queue: queue.Queue[Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="result-sender", daemon=True)

    def start(self) -> ResultSender:
        self._thread.start()
        return self

    def submit(self, result: Result, message_id: str, receipt_handle: str) -> None:
        self._queue.put(Pending(result, message_id, receipt_handle))

    def stop(self, timeout_s: float | None = None) -> bool:
        """Send everything submitted so far, then end the thread. With ``timeout_s`` (a worker
        told to stop now) give up waiting after that long; returns whether all was sent."""
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:  # FIFO: everything submitted before stop() is already sent
                return
            batch, stop_after = [first], False
            while len(batch) < SQS_MAX_BATCH:
                try:
                    item = self._queue.get(timeout=LINGER_S)
                except queue.Empty:
                    break
                if item is None:
                    stop_after = True
                    break
                batch.append(item)
            self.send(batch)
            if stop_after:
                return

    def send(self, batch: list[Pending]) -> None:
        """Send one batch, retrying entries SQS failed for reasons of its own."""
        pending = batch
        for attempt in range(1, MAX_SEND_ATTEMPTS + 1):
            failed = self._send_once(pending)
            retry = [p for p, code, sender_fault in failed if not sender_fault]
            for p, code, sender_fault in failed:
                if sender_fault or attempt == MAX_SEND_ATTEMPTS:
                    log.error(
                        "result for job %s not sent (%s); the job will be redelivered",
                        p.result.job_id,
                        code,
                    )
                    self.on_done(p.message_id, False)
            if not retry or attempt == MAX_SEND_ATTEMPTS:
                return
            pending = retry
            time.sleep(RETRY_BACKOFF_S * attempt)

    def _send_once(self, batch: list[Pending]) -> list[tuple[Pending, str, bool]]:
        entries = [{"Id": str(i), "MessageBody": encode(p.result)} for i, p in enumerate(batch)]
        try:
            response = self.sqs.send_message_batch(QueueUrl=self.results_queue_url, Entries=entries)
        except (BotoCoreError, ClientError):
            log.exception("sending %d results failed", len(batch))
            return [(p, "RequestFailed", False) for p in batch]
        failed = {int(f["Id"]): f for f in response.get("Failed", [])}
        self._delete_jobs([p for i, p in enumerate(batch) if i not in failed])
        return [
            (batch[i], f.get("Code", ""), bool(f.get("SenderFault"))) for i, f in failed.items()
        ]

    def _delete_jobs(self, sent: list[Pending]) -> None:
        if not sent:
            return
        try:
            response = self.sqs.delete_message_batch(
                QueueUrl=self.jobs_queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": p.receipt_handle} for i, p in enumerate(sent)
                ],
            )
            for failed in response.get("Failed", []):
                log.warning(
                    "job %s answered but not deleted (%s); it may run again",
                    sent[int(failed["Id"])].result.job_id,
                    failed.get("Code"),
                )
        except (BotoCoreError, ClientError):
            log.exception("deleting %d answered jobs failed; they may run again", len(sent))
        for pending in sent:
            self.on_done(pending.message_id, True)
