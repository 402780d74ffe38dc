"""The slot table: one state per job, moved only along allowed transitions, and every slot freed
exactly once (when the message is settled *and* the job's thread has returned)."""

from __future__ import annotations

import threading

import pytest

from consumers.jobs import (
    FINAL,
    OPEN,
    TRANSITIONS,
    IllegalTransition,
    JobState,
    JobTable,
)
from tests.support.jobs import active_job as active


class Table(JobTable):
    """A table that counts the slots it frees."""

    def __init__(self) -> None:
        self.freed = 0
        super().__init__(on_slot_freed=self._count)

    def _count(self) -> None:
        self.freed += 1


def test_a_job_that_succeeds_goes_received_running_finished_sending_deleted() -> None:
    table, job = Table(), active()
    table.add(job)
    assert job.state is JobState.RECEIVED and table.busy == table.running == 1
    assert table.start("m-1", now=105.0)
    assert (job.state, job.started_at) == (JobState.RUNNING, 105.0)
    assert table.claim("m-1", JobState.FINISHED) is job
    table.move("m-1", JobState.SENDING)
    table.thread_done("m-1")
    # The thread returned but the result is not out yet: the slot is still held.
    assert (table.busy, table.running, table.freed) == (1, 0, 0)
    table.move("m-1", JobState.DELETED)
    assert (job.state, table.busy, table.freed, table.completed) == (JobState.DELETED, 0, 1, 1)


def test_a_settled_job_keeps_its_slot_until_its_thread_returns() -> None:
    """A handler that ignores its timeout: the failure is sent, the thread runs on."""
    table, job = Table(), active()
    table.add(job)
    table.start("m-1", now=1.0)
    table.claim("m-1", JobState.TIMED_OUT)
    table.move("m-1", JobState.SENDING)
    table.move("m-1", JobState.DELETED)
    assert (table.busy, table.running, table.freed) == (1, 1, 0)
    table.thread_done("m-1")
    assert (table.busy, table.freed, table.completed) == (0, 1, 1)


def test_an_answered_job_frees_its_slot_while_its_delete_waits() -> None:
    """Deleting: the result is out, the message awaits a batched delete. The slot is free (a
    new job may run), the entry stays (a redelivery is recognised), the delete completes it."""
    table, job = Table(), active()
    table.add(job)
    table.start("m-1", now=1.0)
    table.claim("m-1", JobState.FINISHED)
    table.move("m-1", JobState.SENDING)
    table.thread_done("m-1")
    table.move("m-1", JobState.DELETING)
    assert (table.busy, table.freed, table.completed) == (0, 1, 0)
    assert table.get("m-1") is job and table.open_jobs() == []
    table.move("m-1", JobState.DELETED)
    assert (table.busy, table.freed, table.completed) == (0, 1, 1)  # freed once, not twice
    assert table.get("m-1") is None


def test_a_deleting_job_whose_thread_runs_on_keeps_its_slot_until_it_returns() -> None:
    table, job = Table(), active()
    table.add(job)
    table.start("m-1", now=1.0)
    table.claim("m-1", JobState.TIMED_OUT)
    table.move("m-1", JobState.SENDING)
    table.move("m-1", JobState.DELETING)
    assert (table.busy, table.freed) == (1, 0)  # the hung thread still holds it
    table.thread_done("m-1")
    assert (table.busy, table.freed) == (0, 1)
    table.move("m-1", JobState.LEFT)  # the delete failed: final, nothing freed again
    assert (table.freed, table.get("m-1")) == (1, None)


def test_only_the_first_claim_wins() -> None:
    """A finishing job, a cancellation, a timeout report and a drain race for one message."""
    table, job = Table(), active()
    table.add(job)
    table.start("m-1", now=1.0)
    assert table.claim("m-1", JobState.RELEASED) is job
    assert table.claim("m-1", JobState.FINISHED) is None
    assert table.claim("m-1", JobState.TIMED_OUT) is None
    assert job.state is JobState.RELEASED
    table.thread_done("m-1")
    assert (table.busy, table.freed) == (0, 1)


def test_a_job_released_before_it_started_is_not_started() -> None:
    table, job = Table(), active()
    table.add(job)
    table.claim("m-1", JobState.RELEASED)
    assert not table.start("m-1", now=1.0)
    assert (job.state, job.started_at) == (JobState.RELEASED, None)


def test_a_stale_job_is_deleted_without_running() -> None:
    table, job = Table(), active()
    table.add(job)
    table.claim("m-1", JobState.STALE)
    table.move("m-1", JobState.DELETED)
    table.thread_done("m-1")
    assert (job.state, table.freed, table.completed) == (JobState.DELETED, 1, 0)


def test_a_result_that_cannot_be_sent_leaves_the_message_in_the_queue() -> None:
    table, job = Table(), active()
    table.add(job)
    table.start("m-1", now=1.0)
    table.claim("m-1", JobState.FINISHED)
    table.move("m-1", JobState.SENDING)
    table.move("m-1", JobState.LEFT)
    table.thread_done("m-1")
    assert (job.state, table.freed, table.completed) == (JobState.LEFT, 1, 0)


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], JobState.SENDING),  # a result for a job nobody concluded
        ([JobState.RUNNING], JobState.DELETED),  # deleted without a result or a discard
        ([JobState.RUNNING, JobState.CANCELLED], JobState.SENDING),  # a cancelled job's result
        ([JobState.RUNNING, JobState.FINISHED, JobState.SENDING], JobState.RELEASED),
        ([JobState.STALE, JobState.DELETED], JobState.DELETED),  # settled twice
    ],
)
def test_an_illegal_move_raises_and_leaves_the_state(
    path: list[JobState], illegal: JobState
) -> None:
    table, job = Table(), active()
    table.add(job)
    for state in path:
        if state is JobState.RUNNING:
            table.start("m-1", now=1.0)
        elif job.state in OPEN:
            table.claim("m-1", state)
        else:
            table.move("m-1", state)
    before = job.state
    with pytest.raises(IllegalTransition):
        table.move("m-1", illegal)
    assert job.state is before


def test_a_claim_to_a_state_an_open_job_cannot_reach_raises() -> None:
    table, job = Table(), active()
    table.add(job)
    with pytest.raises(IllegalTransition):
        table.claim("m-1", JobState.CANCELLED)  # only a running job is cancelled
    assert job.state is JobState.RECEIVED


def test_a_slot_is_freed_exactly_once() -> None:
    table, job = Table(), active()
    table.add(job)
    table.claim("m-1", JobState.RELEASED)
    table.thread_done("m-1")
    with pytest.raises(IllegalTransition):
        table.thread_done("m-1")
    with pytest.raises(IllegalTransition):
        table.move("m-1", JobState.DELETED)
    assert table.claim("m-1", JobState.RELEASED) is None
    assert (table.busy, table.freed) == (0, 1)


def test_the_same_message_cannot_hold_two_slots() -> None:
    table = Table()
    table.add(active())
    with pytest.raises(IllegalTransition):
        table.add(active())
    assert table.busy == 1


def test_open_jobs_are_those_nobody_has_taken_charge_of() -> None:
    table = Table()
    for message_id in ("a", "b", "c"):
        table.add(active(message_id))
    table.start("b", now=1.0)
    table.claim("c", JobState.RELEASED)
    assert sorted(a.message_id for a in table.open_jobs()) == ["a", "b"]
    assert table.busy == 3  # "c" is released but its thread has not returned


def test_racing_claims_from_many_threads_have_one_winner() -> None:
    table, job = Table(), active()
    table.add(job)
    table.start("m-1", now=1.0)
    barrier = threading.Barrier(8)
    winners: list[JobState] = []
    targets = [JobState.FINISHED, JobState.RELEASED, JobState.TIMED_OUT, JobState.CANCELLED] * 2

    def race(to: JobState) -> None:
        barrier.wait()
        if table.claim("m-1", to) is not None:
            winners.append(to)

    threads = [threading.Thread(target=race, args=(to,)) for to in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and job.state is winners[0]


def test_every_state_leads_to_a_final_one() -> None:
    """No state is a dead end: from each, a final state is reachable."""
    for start in JobState:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert seen & FINAL, start
