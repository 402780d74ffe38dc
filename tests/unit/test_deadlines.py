"""One scheduler thread fires every job's deadline (no thread per job): on a fake clock, and
through the in-thread runner."""

from __future__ import annotations

import threading
import time

from bridge.contract import ERROR_JOB_TIMEOUT
from consumers.context import JobContext
from consumers.deadlines import DeadlineScheduler
from consumers.runner import PythonRunner
from tests.support.messages import make_job


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def context(clock: Clock, timeout_s: float | None) -> JobContext:
    return JobContext.with_timeout(make_job(), timeout_s, clock=clock)


def test_deadlines_fire_in_order_and_only_when_due() -> None:
    clock = Clock()
    scheduler = DeadlineScheduler(clock, start=False)
    late, early = context(clock, 30), context(clock, 10)
    scheduler.schedule(late)
    scheduler.schedule(early)
    assert scheduler.fire_due() == 10
    clock.now += 10
    assert scheduler.fire_due() == 20
    assert (early.reason, late.reason) == ("timeout", None)
    clock.now += 20
    assert scheduler.fire_due() is None
    assert late.reason == "timeout"


def test_a_job_that_ends_first_is_never_cancelled() -> None:
    clock = Clock()
    scheduler = DeadlineScheduler(clock, start=False)
    job = context(clock, 5)
    scheduler.cancel(scheduler.schedule(job))
    clock.now += 60
    scheduler.fire_due()
    assert not job.is_cancelled
    assert len(scheduler) == 0


def test_no_deadline_or_already_cancelled_schedules_nothing() -> None:
    clock = Clock()
    scheduler = DeadlineScheduler(clock, start=False)
    assert scheduler.schedule(context(clock, None)) is None
    stopped = context(clock, 5)
    stopped.cancel("shutdown")
    assert scheduler.schedule(stopped) is None
    assert stopped.reason == "shutdown"


def test_many_short_jobs_with_long_deadlines_do_not_pile_up() -> None:
    clock = Clock()
    scheduler = DeadlineScheduler(clock, start=False)
    keep = scheduler.schedule(context(clock, 42_600))
    for _ in range(10_000):
        scheduler.cancel(scheduler.schedule(context(clock, 42_600)))
    assert len(scheduler) == 1
    assert len(scheduler._heap) <= 3  # rebuilt once more than half of it is dead
    assert keep is not None and not keep.cancelled


def test_the_thread_fires_a_deadline_and_wakes_for_an_earlier_one() -> None:
    scheduler = DeadlineScheduler()
    slow = JobContext.with_timeout(make_job(), 30)
    scheduler.schedule(slow)  # the thread now sleeps towards 30 s
    fast = JobContext.with_timeout(make_job(), 0.05)
    scheduler.schedule(fast)
    assert fast.cancelled.wait(2)
    assert fast.reason == "timeout" and not slow.is_cancelled


def test_in_thread_handlers_time_out_without_a_thread_each() -> None:
    started = threading.Barrier(21)

    def handler(data: object, job: object, ctx: JobContext) -> str:
        started.wait(5)
        ctx.wait(30)  # cooperative: returns when the deadline cancels it
        return "late"

    runner = PythonRunner(handler)
    outcomes = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.append(
                runner.run(make_job(), JobContext.with_timeout(make_job(), 0.3))
            )
        )
        for _ in range(20)
    ]
    before = threading.active_count()
    for thread in threads:
        thread.start()
    started.wait(5)
    # The 20 job threads, plus at most the one scheduler thread: no timer per job.
    assert threading.active_count() <= before + 20 + 1
    began = time.monotonic()
    for thread in threads:
        thread.join(5)
    assert time.monotonic() - began < 3
    assert [o.error for o in outcomes] == [ERROR_JOB_TIMEOUT] * 20
