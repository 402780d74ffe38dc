"""The batch of deletes (consumers.deletes) on a fake clock: jobs answered seconds apart share a
DeleteMessageBatch when the window allows, and nothing is lost or deleted twice."""

from __future__ import annotations

import math

import pytest

from consumers.deletes import DELETE_WINDOW_S, DeleteBatch
from consumers.pending import Handles, Pending
from tests.support.messages import make_result

#: A window a fleet opts into (--delete-window; the default, 0, deletes with the result).
WINDOW_S = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answered(n: int) -> Handles:
    pending = Pending(make_result(job_id=f"run/j/{n}"), f"m-{n}", f"h-{n}")
    return [(pending, f"m-{n}", f"h-{n}")]


def run(
    batch: DeleteBatch, clock: Clock, jobs: int, apart_s: float, sleep_s: float = 0.1
) -> list[list[str]]:
    """Answer ``jobs`` jobs ``apart_s`` apart; the sender's thread takes what is due whenever
    it wakes (at least every ``sleep_s``); then a stop flushes the rest. The requests made."""
    requests: list[list[str]] = []
    answer_at = [n * apart_s for n in range(jobs)]
    start, n = clock.now, 0
    while n < jobs:
        while n < jobs and clock.now - start >= answer_at[n]:
            batch.add(answered(n))
            n += 1
        if batch.wait_s() == 0.0:
            taken = batch.take()
            requests.extend(
                [mid for _p, mid, _h in taken[i : i + 10]] for i in range(0, len(taken), 10)
            )
        clock.now += sleep_s
    taken = batch.take(everything=True)
    requests.extend([mid for _p, mid, _h in taken[i : i + 10]] for i in range(0, len(taken), 10))
    return requests


@pytest.mark.parametrize("jobs", [10, 25, 41])
def test_jobs_answered_one_second_apart_share_full_batches_when_the_window_allows(
    jobs: int,
) -> None:
    clock = Clock()
    requests = run(DeleteBatch(window_s=12.0, clock=clock), clock, jobs, apart_s=1.0)
    assert len(requests) == math.ceil(jobs / 10)
    assert all(len(r) <= 10 for r in requests)
    deleted = [mid for r in requests for mid in r]
    assert sorted(deleted) == sorted(f"m-{n}" for n in range(jobs))  # each once, none lost


@pytest.mark.parametrize("apart_s", [1.0, 4.0, 20.0])
def test_a_window_shares_requests_between_jobs_answered_seconds_apart(
    apart_s: float,
) -> None:
    """About min(10, 1 + window / apart) deletes share each request."""
    clock = Clock()
    requests = run(DeleteBatch(WINDOW_S, clock=clock), clock, 60, apart_s=apart_s, sleep_s=0.5)
    sizes = [len(r) for r in requests]
    assert sum(sizes) == 60
    expected = min(10, 1 + int(WINDOW_S / apart_s))
    assert min(sizes[:-1]) >= expected - 1 and max(sizes) <= 10
    assert len(requests) <= math.ceil(60 / (expected - 1))


def test_no_delete_waits_longer_than_the_window() -> None:
    clock = Clock()
    batch = DeleteBatch(window_s=5.0, clock=clock)
    batch.add(answered(0))
    clock.now += 2.0
    batch.add(answered(1))
    assert batch.wait_s() == pytest.approx(3.0)  # counted from the oldest
    assert batch.take() == []  # not due yet: nothing taken
    clock.now += 3.0
    assert batch.wait_s() == 0.0
    assert [mid for _p, mid, _h in batch.take()] == ["m-0", "m-1"]
    assert batch.wait_s() is None and len(batch) == 0


def test_ten_pending_are_due_at_once_and_only_whole_batches_leave_early() -> None:
    clock = Clock()
    batch = DeleteBatch(window_s=60.0, clock=clock)
    for n in range(13):
        batch.add(answered(n))
        clock.now += 0.1
    assert batch.wait_s() == 0.0
    assert [mid for _p, mid, _h in batch.take()] == [f"m-{n}" for n in range(10)]
    # The rest wait for their own window, counted from the oldest of them (added at 1.0 s).
    assert len(batch) == 3 and batch.wait_s() == pytest.approx(60.0 - 0.3)


def test_window_zero_deletes_with_the_results_batch() -> None:
    clock = Clock()
    batch = DeleteBatch(window_s=0.0, clock=clock)
    batch.add(answered(0))
    assert batch.wait_s() == 0.0 and len(batch.take()) == 1


def test_a_message_received_again_is_deleted_by_its_newest_handle() -> None:
    clock = Clock()
    batch = DeleteBatch(WINDOW_S, clock=clock)
    batch.add(answered(0))
    assert batch.renew("m-0", "h-0-again")
    assert not batch.renew("m-unknown", "h")
    assert [h for _p, _m, h in batch.take(everything=True)] == ["h-0-again"]


def test_the_same_message_answered_twice_is_deleted_once() -> None:
    clock = Clock()
    batch = DeleteBatch(WINDOW_S, clock=clock)
    batch.add(answered(0))
    batch.add(answered(0))
    assert len(batch.take(everything=True)) == 1


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="0 s or more"):
        DeleteBatch(window_s=-1.0)


def test_by_default_a_delete_goes_with_its_result() -> None:
    """A window leaves answered messages to the stale check if the worker dies (the chaos
    campaign saw a job run again after its result); it is opt-in."""
    assert DELETE_WINDOW_S == 0.0
    clock = Clock()
    batch = DeleteBatch(clock=clock)
    batch.add(answered(0))
    assert batch.wait_s() == 0.0 and len(batch.take()) == 1
