"""The Lambdas' deadline-aware retries (bridge/retrying.py), driven by a fake clock."""

from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.retrying import Retrier, RetryPolicy, Transient


def client_error(code: str, status: int = 400) -> ClientError:
    response: Any = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "SendTaskSuccess")


class Clock:
    """A clock that only moves when the retrier sleeps (or a call takes time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def retrier(clock: Clock, deadline_in: float = 10.0, **policy: Any) -> Retrier:
    return Retrier(
        clock.now + deadline_in,
        RetryPolicy(**policy),
        clock,
        clock.sleep,
        random.Random(7),
    )


def failing(*answers: BaseException | str) -> Any:
    """A call that raises (or returns) each answer in turn."""
    pending = list(answers)

    def call() -> str:
        answer = pending.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    return call


def test_throttling_and_5xx_are_retried_with_jittered_backoff_then_succeed() -> None:
    clock = Clock()
    retry = retrier(clock)
    call = failing(client_error("ThrottlingException"), client_error("Boom", 503), "done")
    assert retry(call) == "done"
    assert retry.counts == {"ThrottledCallbacks": 1, "TransientErrors": 1, "CallbackRetries": 2}
    assert len(clock.slept) == 2
    assert 0 <= clock.slept[0] <= 0.1 and 0 <= clock.slept[1] <= 0.2  # full jitter, doubling


def test_it_gives_up_after_max_attempts() -> None:
    clock = Clock()
    retry = retrier(clock, max_attempts=3)
    with pytest.raises(Transient, match="ThrottlingException after 3 attempts"):
        retry(failing(*[client_error("ThrottlingException")] * 3))
    assert retry.counts["ThrottledCallbacks"] == 3 and retry.counts["CallbackRetries"] == 2


def test_it_never_sleeps_past_the_deadline() -> None:
    clock = Clock()
    retry = retrier(clock, deadline_in=0.5, base_delay_s=1.0, max_delay_s=1.0)
    retry.rng = random.Random(1)
    with pytest.raises(Transient):
        retry(failing(*[client_error("ThrottlingException")] * 6))
    assert clock.now <= 100.5


def test_no_call_starts_without_time_for_it() -> None:
    clock = Clock()
    retry = retrier(clock, deadline_in=0.1)  # below min_attempt_s (0.2 s)
    calls: list[int] = []
    with pytest.raises(Transient, match="no time left"):
        retry(lambda: calls.append(1))
    assert calls == []


@pytest.mark.parametrize("exc", [client_error("TaskTimedOut"), ValueError("a bug")])
def test_what_retrying_cannot_fix_is_raised_at_once(exc: BaseException) -> None:
    clock = Clock()
    retry = retrier(clock)
    with pytest.raises(type(exc)):
        retry(failing(exc))
    assert clock.slept == [] and not retry.counts
