"""What a crash costs: a job whose delivery may follow a crash runs in a process of its own, and
a job that keeps crashing its process fails its task by name before the queue dead-letters it.

A handler that takes its process down (``os._exit``, a segfault in a C extension, the OOM killer)
takes a thread-mode worker down with every job beside it; the queue then delivers those jobs
again. Every delivery that ended without a result counts (``ApproximateReceiveCount``): a crash
that took the whole worker down left no other trace.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bridge.contract import ERROR_HANDLER_CRASHED
from consumers.jobs import ActiveJob
from consumers.runner import Outcome, Runner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrashPolicy:
    """``runner`` runs first deliveries; ``isolated`` (None: ``runner`` already isolates) runs
    the others; ``limit``: deliveries that may crash before the failure stands."""

    runner: Runner
    isolated: Runner | None
    limit: int

    def runner_for(self, active: ActiveJob) -> Runner:
        """A redelivery runs in a process of its own, so a crash costs only its culprit."""
        if active.receive_count > 1 and self.isolated is not None:
            return self.isolated
        return self.runner

    def after_crash(self, active: ActiveJob, outcome: Outcome) -> Outcome | None:
        """None below the limit (release the message for another, isolated, try); at the
        limit, the ``Bridge.HandlerCrashed`` failure to send, with the exit signal or status."""
        if active.receive_count < self.limit:
            log.warning(
                "job %s crashed its process on delivery %d (crash limit %d): released to try again",
                active.job.job_id,
                active.receive_count,
                self.limit,
            )
            return None
        log.error(
            "job %s crashed its process on delivery %d (crash limit %d): failing its task",
            active.job.job_id,
            active.receive_count,
            self.limit,
        )
        return Outcome.failure(
            outcome.error or ERROR_HANDLER_CRASHED,
            f"delivery {active.receive_count} of this job crashed its process, and no delivery "
            f"before it returned a result (crash limit {self.limit}): {outcome.cause}",
        )
