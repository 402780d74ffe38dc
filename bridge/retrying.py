"""Deadline-aware retries for the two Lambdas.

A Lambda invocation has a hard end (its remaining time). botocore's own retries do not know it:
in ``standard`` mode with 6 retries and a 35 s read timeout a single callback once took
17-35 s against a 10 s function timeout, and the whole batch came back after the visibility
timeout. So the Lambdas' clients make one attempt with short timeouts
(:func:`bridge.aws.build_lambda_clients`) and calls are retried here instead: exponential
backoff with full jitter on throttling, 5xx and network errors (:func:`bridge.errors.retry_kind`),
at most :attr:`RetryPolicy.max_attempts` times, and never past the deadline. What is not done by
then raises :class:`Transient`, which the batch runner reports as a batch item failure, so SQS
delivers the record again: retried later, never lost and never deleted unprocessed.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bridge.errors import error_code, retry_kind

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded, deadline-aware retries: exponential backoff with full jitter."""

    #: One call and up to five retries: enough to ride out a burst of throttling.
    max_attempts: int = 6
    base_delay_s: float = 0.1
    max_delay_s: float = 2.0
    #: Kept back at the end of the invocation to answer SQS and flush metrics.
    safety_margin_s: float = 1.0
    #: No attempt starts with less time than this before the deadline.
    min_attempt_s: float = 0.2

    def delay(self, retry: int, rng: random.Random) -> float:
        """Pause before retry number ``retry`` (1-based)."""
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1)))


class Transient(Exception):
    """A call failed for a reason a later delivery can fix (retries or time ran out)."""


@dataclass
class Retrier:
    """Runs calls with :class:`RetryPolicy` until ``deadline`` (a ``clock()`` value).

    ``clock``, ``sleep`` and ``rng`` are arguments so tests can drive the timing; ``counts``
    gathers ``ThrottledCallbacks``, ``TransientErrors`` and ``CallbackRetries`` for metrics
    (one Retrier per record, so no lock is needed)."""

    deadline: float
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    counts: Counter[str] = field(default_factory=Counter)

    def time_left(self) -> float:
        return self.deadline - self.clock()

    def __call__(self, call: Callable[[], T]) -> T:
        """``call()`` retried on throttling, 5xx and network errors while time is left;
        raises :class:`Transient` when it gives up, the call's own error when retrying
        cannot help."""
        attempt = 1
        while True:
            if self.time_left() < self.policy.min_attempt_s:
                raise Transient("no time left in this invocation")
            try:
                return call()
            except Exception as exc:
                kind = retry_kind(exc)
                if kind is None:
                    raise
                self.counts["ThrottledCallbacks" if kind == "throttled" else "TransientErrors"] += 1
                what = error_code(exc) or type(exc).__name__
                if attempt >= self.policy.max_attempts:
                    raise Transient(f"{what} after {attempt} attempts") from exc
                pause = self.policy.delay(attempt, self.rng)
                if self.time_left() < pause + self.policy.min_attempt_s:
                    raise Transient(f"{what}; no time left to retry") from exc
                self.counts["CallbackRetries"] += 1
                self.sleep(pause)
            attempt += 1
