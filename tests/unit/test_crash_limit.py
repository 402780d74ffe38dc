"""The crash limit is reached before the jobs queue's redrive can dead-letter a crashing job."""

from __future__ import annotations

import logging

import pytest

from bridge.timing import TimingModel
from consumers.compose import warn_about
from consumers.settings import WorkerSettings


def settings(crash_limit: int, max_receive_count: int | None) -> WorkerSettings:
    return WorkerSettings(
        jobs_queue_url="https://sqs.example/jobs",
        results_queue_url="https://sqs.example/results",
        timing=TimingModel(max_receive_count=max_receive_count),
        crash_limit=crash_limit,
    )


@pytest.mark.parametrize(
    ("crash_limit", "max_receive_count", "effective"),
    [(3, 5, 3), (3, None, 3), (3, 3, 2), (5, 5, 4), (3, 2, 1), (3, 1, 1), (1, 5, 1)],
)
def test_the_effective_limit_stays_below_max_receive_count(
    crash_limit: int, max_receive_count: int | None, effective: int
) -> None:
    assert settings(crash_limit, max_receive_count).effective_crash_limit == effective


def test_a_lowered_limit_is_said_at_start(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        warn_about(settings(3, 3))
    assert "--crash-limit 3 lowered to 2" in caplog.text


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="--crash-limit must be 1 or more, got 0"):
        settings(0, 5)


def test_a_redelivery_runs_isolated_and_a_crash_fails_only_at_the_limit() -> None:
    from dataclasses import replace

    from consumers.crashes import CrashPolicy
    from consumers.runner import Outcome, PythonRunner
    from tests.support.jobs import active_job

    in_thread, isolated = PythonRunner(lambda data, job: data), PythonRunner(lambda d, j: d)
    policy = CrashPolicy(in_thread, isolated, limit=3)
    crash = replace(Outcome.failure("Bridge.HandlerCrashed", "killed by signal 9"), crashed=True)
    first, third = active_job(), replace(active_job(), receive_count=3)
    assert policy.runner_for(first) is in_thread and policy.runner_for(third) is isolated
    assert policy.after_crash(replace(first, receive_count=2), crash) is None
    final = policy.after_crash(third, crash)
    assert final is not None and final.error == "Bridge.HandlerCrashed"
    assert final.cause == (
        "delivery 3 of this job crashed its process, and no delivery before it returned a "
        "result (crash limit 3): killed by signal 9"
    )
    assert CrashPolicy(in_thread, None, 3).runner_for(third) is in_thread
