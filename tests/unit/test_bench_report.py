"""The report's ``targets`` object (exact keys, numbers from the run) and the exit code's
judge: count targets gate, timings never do."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.report import TARGET_KEYS, comparisons, fleet_model, missed, targets


def _probe(total: float, heartbeats: float, concurrency: int) -> dict[str, Any]:
    return {
        "per_job_hour": {"total": total, "states:SendTaskHeartbeat": heartbeats},
        "concurrency": concurrency,
    }


def _scenarios(
    single: float = 14.5, fanout: float = 2.8, steady_per_job: float = 1.2,
    naive_per_job: float = 1.0, naive_keepalive: float = 36.0, burst: float = 0.52,
    p95: float = 400.0, heartbeats: float = 10.0,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    steady = {
        "requests_per_job_beyond_floor_without_keepalive": steady_per_job,
        "latency_ms": {"p50": 100.0, "p95": p95, "p99": p95},
        "keepalive_probes": {
            "one_job_per_execution": _probe(single, heartbeats, 4),
            "fanout": _probe(fanout, 1.0, 10),
        },
    }
    naive = {
        "requests_per_job_beyond_floor_without_keepalive": naive_per_job,
        "keepalive_probes": {"one_job_per_execution": _probe(naive_keepalive, 0.0, 4)},
    }
    return {"steady": steady, "naive": naive, "burst": {"bridge_requests_per_job": burst}}


def _targets(**kwargs: float) -> dict[str, Any]:
    s = _scenarios(**kwargs)
    return targets(s, fleet_model(s))


def test_targets_have_exactly_the_issues_keys_each_a_number() -> None:
    t = _targets()
    assert (
        set(t)
        == set(TARGET_KEYS)
        == {
            "keepalive_requests_per_job_hour",
            "keepalive_requests_per_job_hour_fanout",
            "requests_per_1h_job",
            "naive_requests_per_1h_job",
            "steady_bridge_requests_per_job",
            "burst_bridge_requests_per_job",
            "max_jobs_in_flight_large_region",
            "added_latency_p95_ms",
        }
    )
    assert all(isinstance(v, int | float) for v in t.values())
    assert t["requests_per_1h_job"] == pytest.approx(1.2 + 14.5)
    assert t["naive_requests_per_1h_job"] == pytest.approx(37.0)
    # 10 heartbeats an hour + 1 stale probe per hour-long job: 400/s / (11/3600).
    assert t["max_jobs_in_flight_large_region"] == 130_909
    assert missed(t) == []


def test_the_fleet_model_takes_the_stale_checks_steady_measured() -> None:
    s = _scenarios()
    s["steady"]["per_job_by_api"] = {"states:SendTaskHeartbeat": 0.5}
    # 400/s over (10 keep-alive + 0.5 stale-check heartbeats) per job-hour.
    assert targets(s, fleet_model(s))["max_jobs_in_flight_large_region"] == int(400 * 3600 / 10.5)


@pytest.mark.parametrize(
    ("planted", "named"),
    [
        ({"single": 16.0}, "keepalive_requests_per_job_hour "),
        ({"fanout": 5.5}, "keepalive_requests_per_job_hour_fanout"),
        ({"burst": 0.6}, "burst_bridge_requests_per_job"),
        ({"steady_per_job": 6.0}, "requests_per_1h_job 20.5"),
        ({"naive_keepalive": 20.0}, "half of naive"),
        ({"heartbeats": 60.0}, "max_jobs_in_flight_large_region"),
    ],
)
def test_a_planted_miss_is_named(planted: dict[str, float], named: str) -> None:
    found = missed(_targets(**planted))
    assert any(named in line for line in found), found


def test_latency_is_reported_but_never_gates() -> None:
    t = _targets(p95=5000.0)
    assert t["added_latency_p95_ms"] == 5000.0
    assert missed(t) == []


def test_a_scenario_that_did_not_run_leaves_its_targets_unjudged() -> None:
    t = targets({"burst": {"bridge_requests_per_job": 0.7}}, None)
    assert set(t) == set(TARGET_KEYS)
    assert t["keepalive_requests_per_job_hour"] is None
    assert missed(t) == ["burst_bridge_requests_per_job 0.7 (target <= 0.55)"]


def test_polling_comparisons_need_latencies_on_both_sides() -> None:
    bridge = {"latency_ms": {"p95": 300}, "latency_samples": 10,
              "usd_per_million_jobs": {"10 min": 27.0}}  # fmt: skip
    poll = {"latency_ms": {"p95": 30_000}, "latency_samples": 10,
            "usd_per_million_jobs": {"10 min": 1500.0}}  # fmt: skip
    assert comparisons({"bridge": bridge, "polling": poll})["latency_ratio_polling/bridge"] == 100
    assert comparisons({"bridge": {**bridge, "latency_samples": 0}, "polling": poll}) == {}
