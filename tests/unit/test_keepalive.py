"""The keep-alive on a fake clock: one heartbeat per execution per interval, the others probed
when it reports the task closed, per-task heartbeats where HeartbeatSeconds is set, settled jobs
never heartbeated, visibility extended for every tracked message, and the request counts the
timing model predicts."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import Executor, Future
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from bridge.timing import EXTEND_RETRY_S, TimingModel, keepalive_requests_per_job_hour
from consumers.keepalive import Keepalive, task_deadline_in_s
from tests.support.messages import make_job


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Inline(Executor):
    """Runs each heartbeat at once, in the caller: the test sees its effect on return."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class FakeSfn:
    """Answers heartbeats: tokens in ``closed`` are over (TaskTimedOut)."""

    def __init__(self) -> None:
        self.closed: set[str] = set()
        self.beats: list[str] = []

    def send_task_heartbeat(self, taskToken: str) -> None:
        self.beats.append(taskToken)
        if taskToken in self.closed:
            error = {"Error": {"Code": "TaskTimedOut", "Message": "closed"}}
            raise ClientError(error, "SendTaskHeartbeat")  # type: ignore[arg-type]


class FakeSqs:
    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        #: This many calls fail as an unreachable endpoint does.
        self.fail_visibility = 0

    def change_message_visibility_batch(
        self,
        QueueUrl: str,
        Entries: list[dict[str, Any]],
    ) -> dict[str, Any]:
        if self.fail_visibility:
            self.fail_visibility -= 1
            raise EndpointConnectionError(endpoint_url=QueueUrl)
        self.batches.append(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


class Rig:
    def __init__(self, timing: TimingModel | None = None) -> None:
        self.timing = timing or TimingModel()
        self.clock, self.sfn, self.sqs = Clock(), FakeSfn(), FakeSqs()
        self.closed: list[str] = []
        self.keepalive = Keepalive(
            self.sqs,
            self.sfn,
            "queue",
            self.timing,
            on_task_closed=self.closed.append,
            clock=self.clock,
            rng=random.Random(7),
            executor=Inline(),
        )

    def track(self, message_id: str, execution: str | None, **kwargs: Any) -> None:
        self.keepalive.track(
            message_id, f"rh-{message_id}", f"tok-{message_id}", message_id,
            execution_arn=execution, **kwargs,
        )  # fmt: skip

    def run_for(self, seconds: float, step: float = 1.0) -> None:
        end = self.clock.now + seconds
        while self.clock.now < end:
            self.clock.now += step
            self.keepalive.tick()

    @property
    def interval(self) -> float:
        return self.timing.heartbeat_every_s


def test_jobs_of_one_execution_share_one_heartbeat_per_interval() -> None:
    rig = Rig()
    for n in range(5):
        rig.track(f"m{n}", "arn:exec-1")
    rig.run_for(10 * rig.interval)
    # Ten intervals (+/- jitter) give about ten heartbeats, not fifty, and they rotate.
    assert 9 <= len(rig.sfn.beats) <= 11
    assert set(rig.sfn.beats) == {f"tok-m{n}" for n in range(5)}
    assert rig.closed == []


def test_jobs_of_two_executions_get_one_heartbeat_each() -> None:
    rig = Rig()
    for n in range(3):
        rig.track(f"a{n}", "arn:exec-a")
        rig.track(f"b{n}", "arn:exec-b")
    rig.run_for(1.1 * rig.interval)
    assert sorted(t[4] for t in rig.sfn.beats) == ["a", "b"]


def test_a_closed_representative_gets_the_others_probed_and_only_closed_ones_cancelled() -> None:
    rig = Rig()
    for n in range(4):
        rig.track(f"m{n}", "arn:exec-1")
    # m0's and m2's tasks are over (their own TimeoutSeconds); m1 and m3 run on.
    rig.sfn.closed |= {"tok-m0", "tok-m2"}
    rig.run_for(1.1 * rig.interval)
    assert rig.sfn.beats[0] == "tok-m0"  # the first representative
    assert sorted(rig.sfn.beats) == ["tok-m0", "tok-m1", "tok-m2", "tok-m3"]  # all probed at once
    assert sorted(rig.closed) == ["m0", "m2"]
    rig.sfn.beats.clear()
    rig.run_for(4 * rig.interval)
    # The open ones keep one heartbeat per interval between them; the closed ones get none.
    assert 3 <= len(rig.sfn.beats) <= 5
    assert set(rig.sfn.beats) == {"tok-m1", "tok-m3"}
    assert sorted(rig.closed) == ["m0", "m2"]


def test_a_stopped_execution_cancels_all_its_jobs_within_one_interval() -> None:
    rig = Rig()
    for n in range(6):
        rig.track(f"m{n}", "arn:exec-1")
    rig.track("other", "arn:exec-2")
    rig.run_for(rig.interval / 2)
    rig.sfn.closed |= {f"tok-m{n}" for n in range(6)}  # the execution is stopped
    rig.run_for(rig.timing.cancellation_bound_s - rig.interval / 2)
    assert sorted(rig.closed) == [f"m{n}" for n in range(6)]


def test_heartbeat_seconds_makes_heartbeats_per_task() -> None:
    timing = TimingModel(task_heartbeat_s=3000)
    rig = Rig(timing)
    for n in range(4):
        rig.track(f"m{n}", "arn:exec-1")
    rig.run_for(1.1 * rig.interval)
    assert sorted(rig.sfn.beats) == [f"tok-m{n}" for n in range(4)]
    # A short HeartbeatSeconds shortens the period to a third of it: two losses are survived.
    assert TimingModel(task_heartbeat_s=600, max_queue_wait_s=None).heartbeat_every_s == 200


def test_settled_and_untracked_jobs_never_heartbeat_but_stay_hidden() -> None:
    rig = Rig()
    for n in range(3):
        rig.track(f"m{n}", "arn:exec-1")
    rig.track("gone", "arn:exec-1")
    rig.keepalive.untrack("gone")
    for n in range(3):
        rig.keepalive.settle(f"m{n}")
    rig.run_for(3 * rig.interval)
    assert rig.sfn.beats == []
    # Visibility is still extended for the settled ones (their delete may wait for a batch).
    extended = {e["ReceiptHandle"] for batch in rig.sqs.batches for e in batch}
    assert extended == {"rh-m0", "rh-m1", "rh-m2"}


def test_visibility_is_extended_for_every_job_in_batches_of_ten() -> None:
    rig = Rig()
    for n in range(12):
        rig.track(f"m{n}", "arn:exec-1")
    rig.run_for(rig.timing.extend_every_s + 1)
    assert [len(b) for b in rig.sqs.batches] == [10, 2]
    assert {e["VisibilityTimeout"] for b in rig.sqs.batches for e in b} == {600}


def test_a_known_task_deadline_is_probed_just_after_it() -> None:
    rig = Rig()
    rig.track("m0", "arn:exec-1")
    rig.track("m1", "arn:exec-1", task_deadline_in_s=30)
    rig.sfn.closed.add("tok-m1")
    rig.run_for(40)  # long before the group's first heartbeat
    assert rig.sfn.beats == ["tok-m1"]
    assert rig.closed == ["m1"]


def test_task_deadline_comes_from_task_started_at_and_the_timeout() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    job = make_job().model_copy(update={"task_started_at": now - timedelta(seconds=100)})
    timing = TimingModel(task_timeout_s=3600)
    assert task_deadline_in_s(job, timing, now=lambda: now) == 3500
    assert task_deadline_in_s(job, TimingModel(task_timeout_s=None), now=lambda: now) is None
    assert task_deadline_in_s(make_job(), timing, now=lambda: now) is None


def test_a_job_without_its_execution_is_heartbeated_alone() -> None:
    rig = Rig()
    rig.track("held-1", None)
    rig.track("held-2", None)
    rig.run_for(1.1 * rig.interval)
    assert sorted(rig.sfn.beats) == ["tok-held-1", "tok-held-2"]


@pytest.mark.parametrize(
    ("jobs", "executions"), [(4, 4), (4, 1), (1, 1), (10, 1), (20, 2), (12, 12)]
)
def test_an_hour_costs_what_the_timing_model_says(jobs: int, executions: int) -> None:
    rig = Rig()
    for n in range(jobs):
        rig.track(f"m{n}", f"arn:exec-{n % executions}")
    rig.run_for(3600, step=0.25)
    measured = (len(rig.sfn.beats) + len(rig.sqs.batches)) / jobs
    predicted = keepalive_requests_per_job_hour(jobs, jobs // executions)
    assert measured == pytest.approx(predicted, rel=0.12, abs=1)


def test_the_worker_learns_timeout_seconds_from_its_flag_and_checks_it() -> None:
    from bridge.timing import TimingError
    from consumers.settings import ServiceSettings, check_timing

    told = ServiceSettings(task_timeout_seconds=86_400, max_queue_wait=1800).timing()
    assert told.task_timeout_s == 86_400
    check_timing(told)
    assert ServiceSettings().timing().task_timeout_s is None  # unknown unless told
    too_short = ServiceSettings(task_timeout_seconds=3600, max_queue_wait=1800).timing()
    with pytest.raises(TimingError, match=r"^--task-timeout-seconds: TimeoutSeconds 3600"):
        check_timing(too_short)


def test_a_failed_extension_round_is_tried_again_soon_not_at_the_next_round() -> None:
    rig = Rig()
    rig.track("m0", execution="exec-a")
    rig.sqs.fail_visibility = 2  # SQS unreachable for two calls
    rig.run_for(rig.timing.extend_every_s + 1)
    assert rig.sqs.batches == []  # the round failed
    rig.run_for(2 * EXTEND_RETRY_S + 1)
    # Tried again within seconds, well inside the message's remaining timeout.
    assert [e["ReceiptHandle"] for batch in rig.sqs.batches for e in batch] == ["rh-m0"]
    rig.run_for(EXTEND_RETRY_S + 1)
    assert len(rig.sqs.batches) == 1  # back on the normal period once a call goes through
