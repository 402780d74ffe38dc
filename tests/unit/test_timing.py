"""The timing model's rules: each impossible combination is refused naming its setting."""

from __future__ import annotations

import pytest

from bridge.timing import (
    DEFAULT_JOB_TIMEOUT_S,
    SQS_VISIBILITY_CAP_S,
    TimingError,
    TimingModel,
    heartbeats_per_second,
    keepalive_requests_per_job_hour,
    longest_job_s,
    max_jobs_in_flight_for_heartbeats,
    min_heartbeat_interval_s,
)


def settings_named(model: TimingModel) -> list[str]:
    return [problem.setting for problem in model.violations()]


def test_defaults_are_consistent() -> None:
    assert TimingModel().violations() == []


def test_default_job_timeout_fits_the_sqs_cap() -> None:
    assert longest_job_s(SQS_VISIBILITY_CAP_S) >= DEFAULT_JOB_TIMEOUT_S


@pytest.mark.parametrize(
    "field", ["visibility_timeout_s", "heartbeat_interval_s", "job_timeout_s", "drain_timeout_s"]
)
def test_non_positive_values_are_refused(field: str) -> None:
    assert settings_named(TimingModel(**{field: 0})) == [field]


def test_a_heartbeat_shorter_than_queue_wait_plus_redelivery_is_refused() -> None:
    model = TimingModel(task_heartbeat_s=600, max_queue_wait_s=1800, visibility_timeout_s=300)
    assert "task_heartbeat_s" in settings_named(model)
    assert model.min_task_heartbeat_s == 1800 + 300 + 360 + 60
    assert model.with_values(task_heartbeat_s=model.min_task_heartbeat_s).violations() == []


def test_task_timeout_must_cover_the_longest_wait_and_the_longest_job() -> None:
    model = TimingModel(task_timeout_s=3600, max_queue_wait_s=1800, job_timeout_s=3600)
    assert settings_named(model) == ["task_timeout_s"]


def test_jobs_past_the_twelve_hour_cap_are_refused() -> None:
    with pytest.raises(TimingError, match=r"job_timeout_s: .* split longer work"):
        TimingModel(job_timeout_s=12 * 3600, task_timeout_s=None).validate()


def test_the_cap_is_a_setting_so_tests_can_shrink_it() -> None:
    small = TimingModel(
        visibility_cap_s=100,
        visibility_timeout_s=10,
        job_timeout_s=31,
        heartbeat_interval_s=1,
        task_timeout_s=None,
    )
    assert settings_named(small) == ["job_timeout_s"]
    assert small.with_values(job_timeout_s=30).violations() == []


def test_drain_must_fit_the_lifecycle_action() -> None:
    model = TimingModel(lifecycle_hook_timeout_s=30, drain_timeout_s=3600)
    assert settings_named(model) == ["drain_timeout_s"]
    assert model.lifecycle_global_timeout_s == 3000


def test_systemd_stop_timeout_follows_the_drain() -> None:
    assert TimingModel(drain_timeout_s=1800, cancel_grace_s=10).stop_timeout_s == 1870


def test_unknown_values_skip_their_rules() -> None:
    worker_view = TimingModel(task_timeout_s=None, max_queue_wait_s=None, job_timeout_s=60)
    assert worker_view.violations() == []


def test_with_values_ignores_values_not_given() -> None:
    model = TimingModel().with_values(job_timeout_s=None, drain_timeout_s=5)
    assert (model.job_timeout_s, model.drain_timeout_s) == (DEFAULT_JOB_TIMEOUT_S, 5)


# --- the request arithmetic the defaults are chosen by (issue 21; docs/timing.md) -------------
def test_defaults_cost_at_most_15_keepalive_requests_per_job_hour_one_job_per_execution() -> None:
    # Default --concurrency 4, four executions: 3 extensions (every 300 s) + 10 heartbeats.
    assert keepalive_requests_per_job_hour(4, 1) == pytest.approx(13.0)
    assert keepalive_requests_per_job_hour(4, 1) <= 15


@pytest.mark.parametrize("jobs", [10, 11, 20, 40, 100])
def test_ten_or_more_jobs_of_one_execution_cost_at_most_5(jobs: int) -> None:
    assert keepalive_requests_per_job_hour(jobs, jobs) <= 5


def test_heartbeat_seconds_brings_back_one_heartbeat_per_task() -> None:
    per_task = TimingModel(task_heartbeat_s=3000)
    assert keepalive_requests_per_job_hour(10, 10, per_task) == pytest.approx(1.2 + 10)
    assert heartbeats_per_second(1000, 10, per_task) == pytest.approx(1000 / 360)


def test_a_large_region_holds_100000_jobs_in_flight_within_80_percent_of_the_refill() -> None:
    assert heartbeats_per_second(100_000) <= 0.8 * 500
    assert max_jobs_in_flight_for_heartbeats("large") >= 100_000
    assert max_jobs_in_flight_for_heartbeats("other") >= 60_000
    # Fan-outs divide the heartbeats by the jobs of one execution on a worker.
    assert max_jobs_in_flight_for_heartbeats("large", jobs_per_execution=10) >= 1_000_000
    assert min_heartbeat_interval_s(100_000) == pytest.approx(250)


def test_the_cancellation_bound_follows_the_interval_jitter_tick_and_grace() -> None:
    assert TimingModel().cancellation_bound_s == pytest.approx(360 * 1.1 + 0.25 + 10)
    assert TimingModel(heartbeat_interval_s=60).cancellation_bound_s == pytest.approx(76.25)


def test_request_arithmetic_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        keepalive_requests_per_job_hour(0, 1)
    with pytest.raises(ValueError, match="at least 1"):
        keepalive_requests_per_job_hour(4, 0)


def test_extension_rounds_at_half_a_timeout_that_holds_two_retries_else_a_third() -> None:
    assert TimingModel().extend_every_s == 300  # 600 s: the other half holds twenty retries
    assert TimingModel(visibility_timeout_s=60).extend_every_s == 30
    # Too short for retries inside the half: two whole rounds of margin instead.
    assert TimingModel(visibility_timeout_s=30).extend_every_s == 10
    assert TimingModel(visibility_timeout_s=2).extend_every_s == 1.0
