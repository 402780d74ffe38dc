"""The worker loop: receive jobs (never more than free slots), run them, hand results off.

Composes small units: :mod:`consumers.runner` runs a job, :mod:`consumers.keepalive` keeps it
visible and heartbeating, :mod:`consumers.results` sends results and deletes jobs in batches.

Stopping (SIGTERM/SIGINT via :meth:`Worker.request_stop`): no new receives; jobs already running
finish and report. A second request abandons the running jobs: their messages are made visible
again at once so another worker takes them, and nothing is lost.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge.batching import SQS_MAX_BATCH, in_batches
from bridge.contract import ContractError, Job, Result, Timing, parse_job
from bridge.contract import Worker as WorkerInfo
from bridge.quarantine import quarantine
from consumers.keepalive import Keepalive, Tracked
from consumers.results import ResultSender
from consumers.runner import Runner

log = logging.getLogger(__name__)

#: With --wait-seconds 0, how long to pause after an empty receive.
SHORT_POLL_PAUSE_S = 0.5


@dataclass(frozen=True)
class WorkerSettings:
    jobs_queue_url: str
    results_queue_url: str
    jobs_dlq_url: str | None = None
    concurrency: int = 4
    wait_seconds: int = 20
    visibility_timeout_s: int = 300
    heartbeat_every_s: float = 60.0
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    instance_id: str | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if not 0 <= self.wait_seconds <= 20:
            raise ValueError(f"wait_seconds must be 0..20 (SQS long poll), got {self.wait_seconds}")
        if not 1 <= self.visibility_timeout_s <= 43_200:
            raise ValueError("visibility_timeout_s must be 1..43200 (SQS limit)")


@dataclass
class Running:
    job: Job
    receipt_handle: str
    enqueued_at: datetime | None


def sent_timestamp(message: dict[str, Any]) -> datetime | None:
    millis = message.get("Attributes", {}).get("SentTimestamp")
    return datetime.fromtimestamp(int(millis) / 1000, UTC) if millis else None


class Worker:
    def __init__(self, sqs: Any, sfn: Any, settings: WorkerSettings, runner: Runner) -> None:
        self.sqs, self.sfn, self.settings, self.runner = sqs, sfn, settings, runner
        self.identity = WorkerInfo(id=settings.worker_id, instance_id=settings.instance_id)
        self._running: dict[str, Running] = {}
        self._lock = threading.Lock()
        self._slot_freed = threading.Event()
        self._stop_requests = 0
        self.keepalive = Keepalive(
            sqs,
            sfn,
            settings.jobs_queue_url,
            settings.visibility_timeout_s,
            settings.heartbeat_every_s,
        )
        self.sender = ResultSender(
            sqs, settings.results_queue_url, settings.jobs_queue_url, on_done=self._finished
        )
        self.completed = 0

    # --- control -------------------------------------------------------------------------
    def request_stop(self) -> None:
        """First call: drain. Second call: abandon running jobs back to the queue."""
        self._stop_requests += 1
        self._slot_freed.set()
        if self._stop_requests == 1:
            log.info("stopping: no new jobs; waiting for %d running", self.in_flight)
        else:
            log.warning("stopping now: releasing %d running jobs to the queue", self.in_flight)
            self.release_running()

    @property
    def stopping(self) -> bool:
        return self._stop_requests > 0

    @property
    def abandoned(self) -> bool:
        return self._stop_requests > 1

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._running)

    # --- loop ----------------------------------------------------------------------------
    def run(self) -> None:
        self.keepalive.start()
        self.sender.start()
        pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="job")
        while not self.stopping:
            free = self.settings.concurrency - self.in_flight
            if free <= 0:
                self._slot_freed.wait(timeout=1)
                self._slot_freed.clear()
                continue
            messages = self.receive(min(SQS_MAX_BATCH, free))
            for message in messages:
                self.accept(message, pool)
            if not messages and self.settings.wait_seconds == 0:
                # Short polling: pause instead of spinning on empty receives (each one is
                # a billed request on AWS).
                self._slot_freed.wait(timeout=SHORT_POLL_PAUSE_S)
        # Draining waits for running jobs; abandoning (second stop) returns at once and the
        # caller exits the process, since Python threads cannot be killed.
        pool.shutdown(wait=not self.abandoned)
        self.sender.stop()
        self.keepalive.stop()
        log.info("stopped after %d jobs", self.completed)

    def receive(self, max_messages: int) -> list[dict[str, Any]]:
        """One long poll. A stop that arrives while it is under way gets the messages it
        returns handed straight back (visibility 0), at the cost of one receive count."""
        if self.stopping:
            return []
        try:
            messages: list[dict[str, Any]] = self.sqs.receive_message(
                QueueUrl=self.settings.jobs_queue_url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=self.settings.wait_seconds,
                MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        except (BotoCoreError, ClientError):
            log.exception("receive failed; retrying")
            self._slot_freed.wait(timeout=1)
            return []
        if messages and self.stopping:  # a stop arrived during the long poll: give them back
            self._release([m["ReceiptHandle"] for m in messages])
            return []
        return messages

    def accept(self, message: dict[str, Any], pool: ThreadPoolExecutor) -> Future[None] | None:
        try:
            job = parse_job(message["Body"])
        except ContractError as exc:
            self.reject(message, exc)
            return None
        running = Running(job, message["ReceiptHandle"], sent_timestamp(message))
        with self._lock:
            self._running[message["MessageId"]] = running
        self.keepalive.track(
            message["MessageId"], Tracked(message["ReceiptHandle"], job.token, job.job_id)
        )
        return pool.submit(self.execute, message["MessageId"], running)

    def execute(self, message_id: str, running: Running) -> None:
        started = datetime.now(UTC)
        log.info("job %s (%s) started", running.job.job_id, running.job.type)
        outcome = self.runner.run(running.job)
        timing = Timing(
            enqueued_at=running.enqueued_at, started_at=started, finished_at=datetime.now(UTC)
        )
        result = Result(
            version=1,
            token=running.job.token,
            job_id=running.job.job_id,
            outcome="succeeded" if outcome.succeeded else "failed",
            output=outcome.output if outcome.succeeded else None,
            error=outcome.error,
            cause=outcome.cause,
            worker=self.identity,
            timing=timing,
        )
        log.info("job %s %s", running.job.job_id, result.outcome)
        if self.abandoned:
            return  # abandoned: its message is already back in the queue
        self.sender.submit(result, message_id, running.receipt_handle)

    def reject(self, message: dict[str, Any], exc: ContractError) -> None:
        """A malformed job can never run: move it to the DLQ with the reason (or let the
        queue's redrive policy move it when no DLQ URL is configured)."""
        log.error(
            "malformed job message %s: field %s: %s", message["MessageId"], exc.field, exc.problem
        )
        if not self.settings.jobs_dlq_url:
            return
        try:
            quarantine(
                self.sqs,
                self.settings.jobs_dlq_url,
                message["MessageId"],
                message["Body"],
                f"malformed job: {exc}",
                attributes=message.get("MessageAttributes"),
            )
            self.sqs.delete_message(
                QueueUrl=self.settings.jobs_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        except (BotoCoreError, ClientError):
            log.exception(
                "could not move message %s to the DLQ; the redrive policy will",
                message["MessageId"],
            )

    # --- bookkeeping ---------------------------------------------------------------------
    def _finished(self, message_id: str, delivered: bool) -> None:
        self.keepalive.untrack(message_id)
        with self._lock:
            self._running.pop(message_id, None)
            self.completed += delivered
        self._slot_freed.set()

    def release_running(self) -> None:
        with self._lock:
            running = dict(self._running)
            self._running.clear()
        for message_id in running:
            self.keepalive.untrack(message_id)
        self._release([r.receipt_handle for r in running.values()])

    def _release(self, receipt_handles: list[str]) -> None:
        for batch in in_batches(receipt_handles):
            try:
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.settings.jobs_queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                        for i, h in enumerate(batch)
                    ],
                )
            except (BotoCoreError, ClientError):
                log.exception(
                    "releasing %d messages failed; they reappear after their visibility timeout",
                    len(batch),
                )
