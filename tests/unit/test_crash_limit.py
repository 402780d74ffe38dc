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
