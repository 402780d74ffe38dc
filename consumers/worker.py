"""The worker: receive jobs (never more than free slots), run them, hand results off, stop well.

Threads, each with one job:

* the **receiver** long-polls the jobs queue for as many messages as there are free slots and
  hands each to a job thread (:mod:`consumers.intake` reads it; bad messages are rejected);
* **job threads** check a redelivered or old message is not stale, run it
  (:mod:`consumers.runner`), and conclude: result, cancellation or release;
* the **keep-alive** thread extends visibility and heartbeats (:mod:`consumers.keepalive`);
* the **sender** sends results and deletes answered jobs in batches (:mod:`consumers.results`,
  :mod:`consumers.deletes`: a job's slot is freed when its result is sent, and its message
  waits a few seconds, hidden, to share a DeleteMessageBatch);
* the **supervisor** (the thread that calls :meth:`Worker.run`, the main thread in the CLI)
  enforces job timeouts, drains and stops (:mod:`consumers.supervisor`).

The receiver, keep-alive and sender threads are :class:`~consumers.threads.CriticalThread` and the
supervisor loop runs :func:`~consumers.threads.guarded`: if any of them dies,
:meth:`Worker.thread_died` makes the worker unhealthy and stops it at once, releasing what it
holds (:attr:`Worker.failure` says why; the service then exits non-zero).

How the receiver asks: ``MaxNumberOfMessages`` is min(10, free slots), never more, with
``WaitTimeSeconds`` = ``--wait-seconds`` (20 by default: an idle worker costs three receives a
minute, and a long poll returns as soon as any message is there, so it adds no latency). Asking
for more than the free slots would hold messages no thread can run, hidden from the workers that
could: that is starving them, and on a fleet it is the larger cost. After a receive that returns
fewer than it asked for, the receiver pauses :data:`RECEIVE_LINGER_S`, so messages of a fan-out,
which arrive one by one, share the next receive; slots freed by one batch of results (their
sender's linger) free together and share one too. When jobs finish at random times a slot frees
alone and its receive asks for one message: one receive per job is the floor of a worker that
never takes more than it can run. Waiting behind a backlog for more slots to free was tried and
not kept: gathering freed slots for up to 1 s saved 0.16 receives per job on
``bench --scenarios bridge --jobs 120 --job-ms 1000,15000`` (1.64 to 1.48 ReceiveMessage per job,
the mapping's included) but cost 7% of throughput (2.19 to 2.04 jobs/s), and saves nothing where
a worker's completions are minutes apart.

Every job ends in exactly one way, taken under :meth:`JobTable.claim`: a result (success,
failure, ``Bridge.JobTimeout``), a deletion (stale, or its task closed: cancelled), or a release
to the queue (visibility 0) for another worker. Each step is a :class:`JobState` the table moves
and checks; a slot is freed only when the message is settled and the job's thread has returned.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge import redaction
from bridge.batching import SQS_MAX_BATCH
from bridge.claim_check import ClaimCheck
from bridge.contract import (
    ERROR_JOB_TIMEOUT,
    Job,
    Result,
    Timing,
    mask_token,
)
from bridge.contract import Worker as WorkerInfo
from consumers import stale
from consumers.context import JobContext
from consumers.crashes import CrashPolicy
from consumers.intake import Rejection
from consumers.jobs import OPEN, ActiveJob, JobState, JobTable
from consumers.keepalive import Keepalive, release_handles, task_deadline_in_s
from consumers.rejects import reject
from consumers.results import ResultSender
from consumers.runner import Outcome, Runner
from consumers.settings import WorkerSettings
from consumers.spool import Spool, SpoolPlace
from consumers.supervisor import Supervisor
from consumers.threads import CriticalThread, describe, guarded

__all__ = ["Worker", "WorkerSettings"]

log = logging.getLogger(__name__)

#: With --wait-seconds 0, how long to pause after an empty receive.
SHORT_POLL_PAUSE_S = 0.5
#: After a receive returns fewer messages than it asked for, pause this long before the next, so
#: a fan-out's jobs, which arrive one by one, share receives instead of taking one each; a
#: quarter of a second is nothing beside jobs that take minutes (cf. results.LINGER_S).
RECEIVE_LINGER_S = 0.25
#: Error name of a job that ended because the worker itself failed (a runner bug).
ERROR_WORKER = "Bridge.WorkerError"


def sent_timestamp(message: dict[str, Any]) -> datetime | None:
    millis = message.get("Attributes", {}).get("SentTimestamp")
    return datetime.fromtimestamp(int(millis) / 1000, UTC) if millis else None


class Worker:
    def __init__(
        self,
        sqs: Any,
        sfn: Any,
        settings: WorkerSettings,
        runner: Runner,
        count: Callable[[str, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        claim_check: ClaimCheck | None = None,
        isolated_runner: Runner | None = None,
        spool: Spool | SpoolPlace | None = None,
    ) -> None:
        """``claim_check``: where outputs too large for a result message go (S3 client, bucket,
        threshold, the results queue's size limit); without one they fail Bridge.OutputTooLarge.
        ``isolated_runner``: runs a job whose delivery may follow a crash
        (:class:`~consumers.crashes.CrashPolicy`); None when ``runner`` already isolates.
        ``spool``: where results that cannot be sent are kept across restarts
        (:mod:`consumers.spool`; None: in memory only)."""
        self.sqs, self.sfn, self.settings, self.runner = sqs, sfn, settings, runner
        self.crashes = CrashPolicy(runner, isolated_runner, settings.effective_crash_limit)
        self.identity = WorkerInfo(id=settings.worker_id, instance_id=settings.instance_id)
        #: Metrics hook: count("jobs_succeeded", 1), count("job_duration", seconds), ...
        self.count = count or (lambda _name, _value: None)
        self.clock = clock
        self._slot_freed = threading.Event()
        self.table = JobTable(on_slot_freed=self._slot_freed.set)
        self.keepalive = Keepalive(
            sqs,
            sfn,
            settings.jobs_queue_url,
            settings.timing,
            on_task_closed=self._task_closed,
            on_call=lambda name, n: self.count(name, n),
            on_death=self.thread_died,
        )
        self.sender = ResultSender(
            sqs,
            settings.results_queue_url,
            settings.jobs_queue_url,
            on_done=self._delivered,
            claim_check=claim_check,
            on_death=self.thread_died,
            spool=spool,
            count=lambda name, n: self.count(name, n),
            on_hold=self._hold,
            hold_s=self.keepalive.visibility_timeout_s,
            on_answered=self._answered,
            delete_window_s=settings.delete_window_s,
        )
        self.supervisor = Supervisor(
            self.table, settings.timing, clock, release=self.release, report_hung=self._report_hung
        )
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="job")
        self._receiver = CriticalThread("receiver", self._receive_loop, self.thread_died)
        #: Messages received but not yet accepted: released if the receiver dies among them.
        self._in_hand: list[dict[str, Any]] = []

    # --- control (safe from signal handlers: they only bump counters) --------------------
    def request_stop(self) -> None:
        """First call: drain. Second call: release everything and stop now."""
        self.supervisor.signal()

    @property
    def stopping(self) -> bool:
        return self.supervisor.stopping

    @property
    def abandoned(self) -> bool:
        return self.supervisor.abandoned

    @property
    def failure(self) -> str | None:
        """Why the worker stopped at once because it is broken (an internal thread died)."""
        return self.supervisor.failure

    def thread_died(self, name: str, exc: BaseException) -> None:
        """An internal thread died: unhealthy at once, then stop as a second signal does."""
        self.supervisor.fail(describe(name, exc))

    @property
    def in_flight(self) -> int:
        return self.table.busy

    @property
    def completed(self) -> int:
        return self.table.completed

    def status(self) -> dict[str, Any]:
        """For the health endpoint: ``ready`` (200), ``draining`` or ``unhealthy`` (503, with
        the ``reason``: a thread died). Spooled results (``results``) add a ``degraded``
        reason but keep 200: replacing the instance would lose the spool, and every worker
        meets the same results queue (:mod:`consumers.health`)."""
        failure = self.failure
        state = "unhealthy" if failure else "draining" if self.stopping else "ready"
        results = self.sender.status()
        spooled = results["spooled"]
        degraded = (
            f"{spooled} results not sent ({results.get('error', 'retrying')}), spooled for "
            f"{results['oldest_s']} s; their slots take no new jobs"
            if spooled
            else None
        )
        return {
            "state": state,
            **({"reason": failure} if failure else {}),
            **({"degraded": degraded} if degraded else {}),
            "running": self.table.busy,
            "concurrency": self.settings.concurrency,
            "completed": self.table.completed,
            "results": results,
            "worker": self.identity.id,
        }

    # --- loop ----------------------------------------------------------------------------
    def run(self) -> None:
        """Run until stopped; returns once every job is settled (or released)."""
        self.keepalive.start()
        self.sender.start()
        self._receiver.start()
        try:
            guarded("supervisor", self.supervisor.supervise_until_stopped, self.thread_died)()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        budget = 3.0 if self.abandoned else None
        if self.failure:  # the supervisor may be the thread that died: release here too
            self._safely(self.supervisor.cancel_and_release)
        # A long poll still under way may return messages after the drain ended: wait for it
        # to hand them back, or they would stay hidden for a whole visibility timeout.
        self._receiver.join(2.0 if self.abandoned else self.settings.wait_seconds + 5.0)
        if self._receiver.died:
            self._safely(self._release_in_hand)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if not self.sender.stop(timeout_s=budget):
            log.warning("results still being sent at exit; their jobs will run again")
        if self.sender.died:
            self._safely(self._release_unsent)
            # Answered jobs awaiting their batched delete: their results are out, delete them.
            self._safely(self.sender.flush_deletes)
        self.keepalive.stop()
        log.info("stopped after %d jobs", self.table.completed)

    @staticmethod
    def _safely(step: Callable[[], Any]) -> None:
        """One step of a failed worker's shutdown: a step that fails must not skip the next."""
        try:
            step()
        except Exception:
            log.exception("shutdown step failed")

    def _release_in_hand(self) -> None:
        """The receiver died with messages it had not handed to the table yet: back to the
        queue now (a poison message then reaches the DLQ by the queue's redrive policy)."""
        handles = [m["ReceiptHandle"] for m in self._in_hand if not self._tabled(m)]
        self._in_hand = []
        if handles:
            released = release_handles(self.sqs, self.settings.jobs_queue_url, handles)
            log.warning("released %d messages the receiver held when it died", released)

    def _tabled(self, message: dict[str, Any]) -> bool:
        """Whether this very delivery is in the table (the table's release covers it)."""
        active = self.table.get(message["MessageId"])
        return active is not None and active.receipt_handle == message["ReceiptHandle"]

    def _release_unsent(self) -> None:
        """The sender died: the jobs whose results it held go back to the queue for another
        worker to redo (a job whose result did go out is found stale there, not run again)."""
        unsent = [a for a in self.table.snapshot() if a.state is JobState.SENDING]
        if not unsent:
            return
        released = self.keepalive.release([a.message_id for a in unsent])
        for active in unsent:
            self.table.move(active.message_id, JobState.LEFT)
        self.count("jobs_released", len(unsent))
        log.warning("the result sender died: released %d jobs to run again", released)

    def _receive_loop(self) -> None:
        while not self.stopping:
            # Results spooled before a restart hold slots too (consumers.held_results).
            free = self.settings.concurrency - self.table.busy - self.sender.outside_slots
            if free <= 0:
                self._slot_freed.wait(timeout=0.5)
                self._slot_freed.clear()
                continue
            asked = min(SQS_MAX_BATCH, free)
            messages = self.receive(asked)
            self._in_hand = list(messages)
            for message in messages:
                self.accept(message)
                self._in_hand.pop(0)
            if not messages and self.settings.wait_seconds == 0:
                # Short polling: pause instead of spinning (each receive is a billed request).
                self._slot_freed.wait(timeout=SHORT_POLL_PAUSE_S)
            elif 0 < len(messages) < asked:
                time.sleep(RECEIVE_LINGER_S)  # a stop is seen on the next turn

    def receive(self, max_messages: int) -> list[dict[str, Any]]:
        """One long poll. Messages that arrive after a stop was requested go straight back
        (visibility 0), at the cost of one receive count."""
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
            time.sleep(1)
            return []
        if messages and self.stopping:
            release_handles(
                self.sqs, self.settings.jobs_queue_url, [m["ReceiptHandle"] for m in messages]
            )
            return []
        return messages

    def accept(self, message: dict[str, Any]) -> None:
        held = self.table.get(message["MessageId"])
        if held is not None:
            self._delivered_again(held, message)
            return
        try:
            job = self.settings.intake.parse(message)
        except Rejection as rejection:
            self.reject(message, rejection)
            return
        if self._answered_by_spool(message, job):
            return
        now = self.clock()
        timeout = self.settings.job_timeout_s(job.type)
        context = JobContext(job=job, deadline=now + timeout if timeout else None, clock=self.clock)
        active = ActiveJob(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            job=job,
            context=context,
            received_at=now,
            enqueued_at=sent_timestamp(message),
            receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
        )
        redaction.register(job.token)  # logs show only its mask, whatever logs it
        self.table.add(active)
        self.keepalive.track(
            active.message_id,
            active.receipt_handle,
            job.token,
            job.job_id,
            execution_arn=job.execution_arn,
            task_deadline_in_s=task_deadline_in_s(job, self.settings.timing),
        )
        self._pool.submit(self._execute, active)

    def _hold(self, message_id: str, receipt_handle: str, token: str, job_id: str) -> None:
        """Keep hidden a job message the sender holds for a spooled result (taken back at
        start): the keep-alive extends it until the sender deletes it."""
        redaction.register(token)
        self.keepalive.track(message_id, receipt_handle, token, job_id)

    def _answered_by_spool(self, message: dict[str, Any], job: Job) -> bool:
        """A job whose result is spooled (by this run, or before a restart on this host) is not
        run again: the sender holds its message, kept hidden here, and deletes it once the
        result is out (:meth:`ResultSender.answer_delivery`)."""
        if not self.sender.holding:
            return False
        message_id, handle = message["MessageId"], message["ReceiptHandle"]
        redaction.register(job.token)
        self.keepalive.track(
            message_id, handle, job.token, job.job_id, execution_arn=job.execution_arn
        )
        if self.sender.answer_delivery(message_id, job.job_id, job.token, handle):
            return True
        if self.table.get(message_id) is None:  # (a job in the table keeps its tracking)
            self.keepalive.untrack(message_id)
        return False

    def _delivered_again(self, held: ActiveJob, message: dict[str, Any]) -> None:
        """SQS delivered a message this worker already holds (at-least-once delivery, or its
        visibility lapsed: a paused process, extensions that failed). One run is enough: keep
        it, and use the new receipt handle, the one SQS now honours for visibility changes."""
        held.receipt_handle = message["ReceiptHandle"]
        renewed = self.keepalive.renew(held.message_id, held.receipt_handle)
        # Answered already? Its batched delete must use this handle (SQS ignores older ones).
        self.sender.renew_delete(held.message_id, held.receipt_handle)
        self.count("jobs_redelivered_while_held", 1)
        log.warning(
            "job %s was delivered again while this worker holds it (%s): not run twice%s",
            held.job.job_id,
            held.state.value,
            "" if renewed else "; it is no longer kept hidden and will be found stale",
        )

    # --- one job -------------------------------------------------------------------------
    def _execute(self, active: ActiveJob) -> None:
        """The job's thread: stale check, run, conclude. Before it returns, its job has left
        the open states (a job still open then, by a bug or a failed conclusion, is released)."""
        try:
            outcome, crashed = self._attempt(active)
            if outcome is not None:
                self._conclude(active, outcome, crashed)
        except BaseException:
            log.exception("job %s: concluding failed; releasing it", active.job.job_id)
        finally:
            left = active.state
            if left in OPEN and self.release([active]):
                log.error("job %s was left %s by its thread; released", active.job.job_id, left)
            self.table.thread_done(active.message_id)

    def _attempt(self, active: ActiveJob) -> tuple[Outcome | None, bool]:
        """Run the job unless it is stale or was released meanwhile: (outcome or None, whether
        the worker itself failed around it)."""
        try:
            if self._is_stale(active) or not self.table.start(active.message_id, self.clock()):
                return None, False
            self.count("jobs_started", 1)
            runner = self.crashes.runner_for(active)
            log.info(
                "job %s (%s) started%s",
                active.job.job_id,
                active.job.type,
                f", isolated (delivery {active.receive_count})" * (runner is not self.runner),
            )
            return runner.run(active.job, active.context), False
        except BaseException as exc:  # a runner bug must still end the job
            log.exception("job %s: the runner failed", active.job.job_id)
            return Outcome.failure(ERROR_WORKER, "".join(traceback.format_exception(exc))), True

    def _is_stale(self, active: ActiveJob) -> bool:
        """Delete, unrun, a job whose task is already over (:mod:`consumers.stale`)."""
        if not stale.needs_check(active, self.settings.timing.stale_check_age_s):
            return False
        code = stale.closed_task_error(self.sfn, active)
        age = stale.age_s(active)
        log.debug("stale check of job %s (%.1f s old): %s", active.job.job_id, age, code or "open")
        if code is None:
            return False
        log.warning(
            "job %s is stale (%s after %d receives, %.0f s old, token %s): deleted, not run",
            active.job.job_id,
            code,
            active.receive_count,
            age,
            mask_token(active.job.token),
        )
        self.count("jobs_stale", 1)
        self._discard(active, JobState.STALE)
        return True

    def _conclude(self, active: ActiveJob, outcome: Outcome, crashed: bool) -> None:
        reason = active.context.reason
        if reason == "task-closed":
            closed = JobState.CANCELLED if active.state is JobState.RUNNING else JobState.STALE
            if self._discard(active, closed):
                self.count("jobs_cancelled", 1)
                log.info("job %s cancelled: its task is closed", active.job.job_id)
            return
        if not outcome.reportable:  # stopped for shutdown: hand the message to another worker
            self.release([active])
            return
        if outcome.crashed:
            self.count("jobs_crashed", 1)
            final = self.crashes.after_crash(active, outcome)
            if final is None:
                self.release([active])
                return
            outcome = final
        if crashed:
            self.submit(active, outcome, JobState.CRASHED)
        else:
            timed_out = reason == "timeout"
            self.submit(active, outcome, JobState.TIMED_OUT if timed_out else JobState.FINISHED)

    def submit(self, active: ActiveJob, outcome: Outcome, state: JobState) -> bool:
        """Take charge of the job as ``state`` and hand its result to the sender (once); the
        sender deletes the message. A result that cannot be prepared releases the job."""
        if self.table.claim(active.message_id, state) is None:
            return False
        started = active.started_at or active.received_at
        try:
            # A large output goes to S3 here, on the job's thread (bridge.claim_check).
            result = self.sender.prepare(self._result(active, outcome), outcome.oversized_output)
        except Exception:
            log.exception(
                "job %s: its result could not be prepared; releasing it", active.job.job_id
            )
            self.table.move(active.message_id, JobState.RELEASED)
            self._hand_back([active])
            return False
        self.table.move(active.message_id, JobState.SENDING)
        self.count("job_duration", self.clock() - started)
        if state is JobState.TIMED_OUT:
            self.count("jobs_timed_out", 1)
        self.count("jobs_succeeded" if result.outcome == "succeeded" else "jobs_failed", 1)
        log.info(
            "job %s %s%s", result.job_id, result.outcome, f" ({result.error})" * bool(result.error)
        )
        self.sender.submit(result, active.message_id, active.receipt_handle)
        return True

    def _result(self, active: ActiveJob, outcome: Outcome) -> Result:
        started = active.started_at or active.received_at
        finished_wall = datetime.now(UTC)
        timing = Timing(
            enqueued_at=active.enqueued_at,
            started_at=datetime.fromtimestamp(
                finished_wall.timestamp() - (self.clock() - started), UTC
            ),
            finished_at=finished_wall,
        )
        return Result(
            version=1,
            token=active.job.token,
            job_id=active.job.job_id,
            execution_arn=active.job.execution_arn or None,
            outcome="succeeded" if outcome.succeeded else "failed",
            output=outcome.output if outcome.succeeded else None,
            error=outcome.error,
            cause=outcome.cause,
            worker=self.identity,
            timing=timing,
        )

    def _discard(self, active: ActiveJob, state: JobState) -> bool:
        """Delete the message without a result (``state``: stale or cancelled)."""
        if self.table.claim(active.message_id, state) is None:
            return False
        self.keepalive.untrack(active.message_id)
        try:
            self.sqs.delete_message(
                QueueUrl=self.settings.jobs_queue_url, ReceiptHandle=active.receipt_handle
            )
        except (BotoCoreError, ClientError):
            log.exception("could not delete job %s; it may be delivered again", active.job.job_id)
            self.table.move(active.message_id, JobState.LEFT)
        else:
            self.table.move(active.message_id, JobState.DELETED)
        return True

    def release(self, actives: list[ActiveJob]) -> int:
        """Hand the messages of jobs nobody has taken charge of back to the queue at once
        (visibility 0) for another worker; returns how many it took."""
        claimed = [a for a in actives if self.table.claim(a.message_id, JobState.RELEASED)]
        return self._hand_back(claimed)

    def _hand_back(self, released: list[ActiveJob]) -> int:
        if released:
            self.keepalive.release([a.message_id for a in released])
            self.count("jobs_released", len(released))
        return len(released)

    def _report_hung(self, active: ActiveJob, elapsed_s: float) -> bool:
        """Fail a job whose handler ignored its timeout; its thread keeps the slot."""
        return self.submit(
            active,
            Outcome.failure(
                ERROR_JOB_TIMEOUT,
                f"the job ran past its timeout ({elapsed_s:.0f} s) and its handler did not stop "
                "when cancelled; its thread keeps a slot until it returns",
            ),
            JobState.TIMED_OUT,
        )

    # --- callbacks -----------------------------------------------------------------------
    def _task_closed(self, message_id: str) -> None:
        active = self.table.get(message_id)
        if active is not None:
            active.context.cancel("task-closed")
        # A result spooled for a task that is over can never be taken: the sender drops it.
        self.sender.task_closed(message_id)

    def _answered(self, message_id: str) -> None:
        """The job's result is on the results queue: its slot is free now; its message stays
        hidden, without heartbeats, until the sender's batched delete (then :meth:`_delivered`)."""
        self.keepalive.settle(message_id)
        if self.table.get(message_id) is not None:
            self.table.move(message_id, JobState.DELETING)

    def _delivered(self, message_id: str, delivered: bool) -> None:
        self.keepalive.untrack(message_id)
        if self.table.get(message_id) is None:  # a message held for a spooled result only
            return
        self.table.move(message_id, JobState.DELETED if delivered else JobState.LEFT)

    # --- bad messages --------------------------------------------------------------------
    def reject(self, message: dict[str, Any], rejection: Rejection) -> None:
        """A message that can never run: see :mod:`consumers.rejects`."""
        self.count("jobs_malformed", 1)
        jobs, dlq = self.settings.jobs_queue_url, self.settings.jobs_dlq_url
        reject(self.sqs, self.sfn, message, rejection, jobs, dlq)
