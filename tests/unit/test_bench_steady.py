"""The steady workload: seeded long-tailed durations, arrivals, and the per-hour arithmetic that
turns a compressed run's counts back into uncompressed figures."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.compressed_worker import Compression
from benchmarks.steady import (
    Workload,
    durations_s,
    keepalive_per_job_hour,
    per_running_job,
    sfn_per_s_per_1000,
    split_requests,
)


def test_durations_are_lognormal_around_the_median_clipped_and_seeded() -> None:
    workload = Workload()
    draws = durations_s(5000, workload, random.Random(1))
    assert statistics.median(draws) == pytest.approx(600, rel=0.06)
    assert min(draws) >= 30 and max(draws) <= 3600
    assert sum(d == 3600 for d in draws) / len(draws) == pytest.approx(0.037, abs=0.01)
    # The long tail: the mean well above the median (e^(1/2) = 1.65 before clipping).
    assert statistics.mean(draws) > 1.4 * statistics.median(draws)
    assert durations_s(10, workload, random.Random(1)) == draws[:10]


def test_a_plan_is_repeatable_and_spreads_executions_over_the_span() -> None:
    workload = Workload(executions=6, jobs_per_execution=3, seed=3)
    plan = workload.plan()
    assert plan == Workload(executions=6, jobs_per_execution=3, seed=3).plan()
    assert plan != Workload(executions=6, jobs_per_execution=3, seed=4).plan()
    starts = [at for at, _ in plan]
    assert starts[0] == 0 and starts == sorted(starts) and starts[-1] <= 1800
    assert all(len(durations) == 3 for _, durations in plan)
    items = workload.items([600.0, 3600.0], execution=2)
    assert [i["sleep_ms"] for i in items] == [5000, 30000]  # compressed 120x
    assert items[0]["n"] != items[1]["n"]


def test_bad_workloads_are_refused() -> None:
    with pytest.raises(ValueError, match="min_s"):
        Workload(median_s=10)
    with pytest.raises(ValueError, match="compression"):
        Workload(compress=0)


def test_counts_over_compressed_job_seconds_become_per_uncompressed_hour() -> None:
    compression = Compression(60)  # visibility 600 / 60 = 10 s: exact
    # 4 jobs for 60 compressed seconds = 4 uncompressed hours.
    counts = {"states:SendTaskHeartbeat": 40, "sqs:ChangeMessageVisibilityBatch": 18}
    out = keepalive_per_job_hour(counts, 240.0, compression)
    assert out["states:SendTaskHeartbeat"] == 10.0
    assert out["sqs:ChangeMessageVisibilityBatch"] == 4.5
    assert out["total"] == 14.5
    # A visibility timeout shortened 100x rather than 60x: extensions came 100/60 as often.
    assert keepalive_per_job_hour(counts, 240.0, compression, 100.0)[
        "sqs:ChangeMessageVisibilityBatch"
    ] == pytest.approx(2.7)
    rates = sfn_per_s_per_1000({"states:SendTaskSuccess": 12, "sqs:ReceiveMessage": 5}, 240.0,
                               compression)  # fmt: skip
    assert rates == {"states:SendTaskSuccess": pytest.approx(12 / 14400 * 1000, abs=1e-3)}


def test_threads_and_memory_per_running_job_subtract_the_idle_worker() -> None:
    t0 = datetime(2026, 12, 7, tzinfo=UTC)
    spans = {7: [(t0, t0 + timedelta(seconds=10)), (t0, t0 + timedelta(seconds=5))]}
    samples = [
        (t0 + timedelta(seconds=1), 7, 14, 70_000),  # 2 running
        (t0 + timedelta(seconds=6), 7, 13, 69_100),  # 1 running
        (t0 + timedelta(seconds=20), 7, 12, 69_000),  # none: not counted
    ]
    out = per_running_job(samples, {7: (12, 69_000)}, spans)
    assert out["threads_per_running_job_median"] == 1.0
    assert out["rss_kb_per_running_job_max"] == 500.0
    assert out["samples"] == 2


def test_idle_receives_and_stale_checks_are_split_from_keepalive() -> None:
    requests = {
        "sqs:ReceiveMessage": 30, "sqs:DeleteMessageBatch": 10,
        "sqs:ChangeMessageVisibilityBatch": 4, "states:SendTaskHeartbeat": 12,
    }  # fmt: skip
    keep, per_job = split_requests(requests, empty_receives=18, stale_probes=2)
    assert keep == {"sqs:ChangeMessageVisibilityBatch": 4, "states:SendTaskHeartbeat": 10}
    assert per_job == {
        "sqs:ReceiveMessage": 12, "sqs:DeleteMessageBatch": 10, "states:SendTaskHeartbeat": 2,
    }  # fmt: skip
    # Counts from two sources cannot take more than the server saw.
    keep, per_job = split_requests({"sqs:ReceiveMessage": 3}, empty_receives=5, stale_probes=1)
    assert per_job == {"sqs:ReceiveMessage": 0} and keep == {}
    with pytest.raises(ValueError):
        split_requests({}, empty_receives=-1)


def test_probe_windows_hold_whole_heartbeat_intervals_and_extension_rounds() -> None:
    from benchmarks.probes import window_intervals

    assert window_intervals(360, 200) == 5  # 1,800 s: 5 beats, 9 extension rounds
    assert window_intervals(60, 100) == 5  # 300 s: 5 beats, 3 rounds
    # 90 s beats against 100 s rounds: 10 beats would be 9 rounds, past the longest window;
    # the best within it is 8 (7.2 rounds: 0.2 off), never one under the shortest.
    assert window_intervals(90, 100) == 8
