"""The supervisor alone, on a fake clock: job timeouts, the drain deadline, the release of what
is left, and the second signal that abandons everything at once."""

from __future__ import annotations

import pytest

from bridge.timing import TimingModel
from consumers.jobs import ActiveJob, JobState, JobTable
from consumers.supervisor import KILL_WAIT_MARGIN_S, TICK_S, Supervisor
from tests.support.jobs import Clock
from tests.support.jobs import active_job as active

GRACE = 10.0
DRAIN = 60
#: After its grace and the kill margin, a job that ignored its cancellation is reported.
HUNG_AFTER = GRACE + KILL_WAIT_MARGIN_S


class Harness:
    """A table, a fake clock and the supervisor's two callables, as the worker provides them:
    ``release`` takes the jobs still open, ``report_hung`` takes charge as timed out."""

    def __init__(self) -> None:
        self.clock = Clock(1000.0)
        self.table = JobTable()
        self.released: list[str] = []
        self.reported: list[tuple[str, float]] = []
        timing = TimingModel(cancel_grace_s=GRACE, drain_timeout_s=DRAIN)
        self.supervisor = Supervisor(
            self.table, timing, self.clock, self.release, self.report_hung, sleep=self.sleep
        )

    def release(self, actives: list[ActiveJob]) -> int:
        taken = [a for a in actives if self.table.claim(a.message_id, JobState.RELEASED)]
        self.released += [a.message_id for a in taken]
        return len(taken)

    def report_hung(self, job: ActiveJob, elapsed_s: float) -> bool:
        if self.table.claim(job.message_id, JobState.TIMED_OUT) is None:
            return False
        self.table.move(job.message_id, JobState.SENDING)
        self.reported.append((job.message_id, elapsed_s))
        return True

    def sleep(self, seconds: float) -> None:
        self.clock.now += seconds

    def job(self, message_id: str, timeout_s: float | None = None) -> ActiveJob:
        job = active(message_id, self.clock)
        if timeout_s is not None:
            job.context.deadline = self.clock() + timeout_s
        self.table.add(job)
        self.table.start(message_id, self.clock())
        return job

    def finish(self, job: ActiveJob) -> None:
        """The job's thread concludes: result sent, message deleted, thread returned."""
        if self.table.claim(job.message_id, JobState.FINISHED):
            self.table.move(job.message_id, JobState.SENDING)
            self.table.move(job.message_id, JobState.DELETED)
        self.table.thread_done(job.message_id)

    def at(self, offset_s: float) -> bool:
        """Tick at ``offset_s`` seconds after the start."""
        self.clock.now = 1000.0 + offset_s
        return self.supervisor.tick()


@pytest.fixture
def h() -> Harness:
    return Harness()


# --- job timeouts --------------------------------------------------------------------------
def test_a_job_past_its_deadline_is_cancelled_as_timed_out(h: Harness) -> None:
    job = h.job("m-1", timeout_s=30)
    assert not h.at(29.9)
    assert not job.context.is_cancelled
    assert not h.at(30)
    assert (job.context.reason, job.state) == ("timeout", JobState.RUNNING)
    assert h.reported == [] and h.released == []


def test_a_job_that_ignores_its_cancellation_is_reported_after_the_grace(h: Harness) -> None:
    job = h.job("m-1", timeout_s=30)
    h.at(30)
    h.at(30 + HUNG_AFTER - 0.1)
    assert h.reported == []
    h.at(30 + HUNG_AFTER)
    assert h.reported == [("m-1", 30 + HUNG_AFTER)]
    assert job.state is JobState.SENDING
    # Its thread still runs: the slot stays taken until it returns.
    assert h.table.busy == 1
    h.at(30 + HUNG_AFTER + 5)
    assert len(h.reported) == 1


def test_a_job_that_stops_when_cancelled_is_not_reported_again(h: Harness) -> None:
    job = h.job("m-1", timeout_s=30)
    h.at(30)
    h.finish(job)  # the runner reports its own Bridge.JobTimeout
    h.at(30 + HUNG_AFTER + 1)
    assert h.reported == [] and h.table.busy == 0


def test_jobs_without_a_deadline_are_left_alone(h: Harness) -> None:
    job = h.job("m-1")
    h.at(10**6)
    assert not job.context.is_cancelled and job.state is JobState.RUNNING


# --- draining ------------------------------------------------------------------------------
def test_a_stop_signal_drains_and_returns_once_jobs_finish(h: Harness) -> None:
    first, second = h.job("a"), h.job("b")
    assert not h.supervisor.stopping
    h.supervisor.signal()
    assert h.supervisor.stopping
    assert not h.at(1)
    assert h.supervisor.deadline == 1001.0 + DRAIN
    h.finish(first)
    assert not h.at(2)
    h.finish(second)
    assert h.at(3)
    assert h.released == [] and not h.supervisor.abandoned
    assert (first.state, second.state) == (JobState.DELETED, JobState.DELETED)


def test_at_the_drain_deadline_remaining_jobs_are_cancelled_and_released(h: Harness) -> None:
    done, slow, stuck = h.job("done"), h.job("slow"), h.job("stuck")
    h.supervisor.signal()
    h.at(0)
    h.finish(done)
    assert not h.at(DRAIN - 1)
    assert h.released == []
    assert not h.at(DRAIN)
    assert sorted(h.released) == ["slow", "stuck"]
    for job in (slow, stuck):
        assert (job.state, job.context.reason) == (JobState.RELEASED, "shutdown")
    assert done.state is JobState.DELETED
    # Released, but their threads still run: wait for them (at most the grace and a margin).
    h.table.thread_done("slow")
    assert not h.at(DRAIN + 1)
    assert h.at(DRAIN + HUNG_AFTER)
    assert h.table.busy == 1  # "stuck" never returned; its message went back all the same


def test_the_worker_returns_as_soon_as_released_threads_have_returned(h: Harness) -> None:
    h.job("a")
    h.supervisor.signal()
    h.at(0)
    h.at(DRAIN)
    h.table.thread_done("a")
    assert h.at(DRAIN + 0.1)
    assert h.released == ["a"]


def test_a_drain_request_can_shorten_but_never_extend_the_deadline(h: Harness) -> None:
    h.job("a")
    h.supervisor.request(within_s=100, reason="spot interruption")
    h.at(0)
    assert h.supervisor.deadline == 1100.0
    h.supervisor.request(within_s=500, reason="later")
    h.at(1)
    assert (h.supervisor.deadline, h.supervisor.reason) == (1100.0, "spot interruption")
    h.supervisor.request(within_s=10, reason="sooner")  # asked at 1001: counts from then
    h.at(2)
    assert (h.supervisor.deadline, h.supervisor.reason) == (1011.0, "sooner")
    h.at(10.9)
    assert h.released == []
    h.at(11)
    assert h.released == ["a"]


# --- the second signal ---------------------------------------------------------------------
def test_a_second_signal_releases_every_open_job_at_once(h: Harness) -> None:
    running, sending = h.job("running"), h.job("sending")
    h.table.claim("sending", JobState.FINISHED)
    h.table.move("sending", JobState.SENDING)
    h.supervisor.signal()
    h.at(0)
    h.supervisor.signal()
    assert h.supervisor.abandoned
    assert h.at(0.1)
    # The job whose result is already on its way is left to the sender.
    assert h.released == ["running"]
    assert (running.state, running.context.reason) == (JobState.RELEASED, "shutdown")
    assert sending.state is JobState.SENDING and not sending.context.is_cancelled


def test_two_signals_before_the_first_tick_abandon_at_once(h: Harness) -> None:
    h.job("a")
    h.supervisor.signal()
    h.supervisor.signal()
    assert h.at(0)
    assert h.released == ["a"] and h.supervisor.abandoned


# --- the loop ------------------------------------------------------------------------------
def test_tick_hooks_run_and_a_failing_one_does_not_stop_the_supervisor(h: Harness) -> None:
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("boom")

    h.supervisor.on_tick += [broken, lambda: calls.append("ok")]
    h.at(0)
    h.at(1)
    assert calls == ["broken", "ok", "broken", "ok"]


def test_supervise_until_stopped_ticks_on_its_clock_until_drained(h: Harness) -> None:
    h.job("a", timeout_s=1)
    h.supervisor.signal()
    # The job ignores its cancellation and its thread never returns: timed out and reported,
    # then the drain deadline passes and the worker returns.
    h.supervisor.supervise_until_stopped()
    assert h.reported and h.reported[0][0] == "a"
    assert h.clock() >= 1000.0 + DRAIN
    assert h.clock() < 1000.0 + DRAIN + HUNG_AFTER + 10 * TICK_S


# --- failure: an internal thread died -------------------------------------------------------
def test_a_failure_releases_every_open_job_at_once_and_keeps_its_reason(h: Harness) -> None:
    h.job("a")
    h.job("b")
    assert not h.supervisor.stopping
    h.supervisor.fail("thread keepalive died: ValueError: x")
    h.supervisor.fail("thread receiver died: later")  # the first reason stands
    assert h.supervisor.stopping and h.supervisor.abandoned
    assert h.at(0)
    assert sorted(h.released) == ["a", "b"]
    assert h.supervisor.failure == "thread keepalive died: ValueError: x"


def test_a_failure_during_a_drain_does_not_wait_for_its_deadline(h: Harness) -> None:
    h.job("a")
    h.supervisor.signal()
    assert not h.at(0)
    h.supervisor.fail("thread result-sender died: TypeError")
    assert h.at(1)  # long before the 60 s drain deadline
    assert h.released == ["a"]
