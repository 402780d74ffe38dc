"""The fleet model against hand-computed cases: which Step Functions API throttles first, and
how many jobs in flight one account-region sustains at 80 % of each refill rate."""

from __future__ import annotations

import pytest

from benchmarks import quotas
from benchmarks.fleet import FleetInputs, fleet_limit, model


def test_heartbeats_throttle_first_for_hour_long_jobs_one_per_execution() -> None:
    # Per job in flight: 10 heartbeats an hour + 1 stale probe per job, 1 success and 1 start
    # an hour. Heartbeats: 400/s / (11/3600) = 130,909; success 400*3600 = 1,440,000;
    # StartExecution 240*3600 = 864,000.
    limit = fleet_limit(FleetInputs(heartbeats_per_job_hour=10, duration_s=3600))
    assert limit.throttles_first == "states:SendTaskHeartbeat"
    assert limit.max_jobs_in_flight == 130_909
    assert limit.completions_per_s == pytest.approx(36.4, abs=0.05)
    assert limit.share_of_refill["states:SendTaskHeartbeat"] == pytest.approx(0.8, abs=1e-3)
    assert limit.share_of_refill["states:StartExecution"] == pytest.approx(0.121, abs=1e-3)
    assert limit.jobs_queues_needed == 2  # over 120,000 in flight: a second jobs queue


def test_start_execution_throttles_first_without_heartbeats_and_fan_out_moves_it() -> None:
    quiet = FleetInputs(heartbeats_per_job_hour=0, probe_heartbeats_per_job=0, duration_s=60)
    single = fleet_limit(quiet)
    assert single.throttles_first == "states:StartExecution"
    assert single.max_jobs_in_flight == 240 * 60  # 240 starts/s, each a one-minute job
    fan_out = fleet_limit(
        FleetInputs(
            heartbeats_per_job_hour=0, probe_heartbeats_per_job=0, duration_s=60,
            jobs_per_execution=10,
        )
    )  # fmt: skip
    assert fan_out.throttles_first == "states:SendTaskSuccess"
    assert fan_out.max_jobs_in_flight == 400 * 60
    assert fan_out.completions_per_s == 400.0
    assert fan_out.completions_per_s_ceiling == 400.0
    assert single.completions_per_s_ceiling == 240.0


def test_smaller_regions_have_smaller_buckets() -> None:
    inputs = FleetInputs(heartbeats_per_job_hour=10, duration_s=3600)
    other = fleet_limit(inputs, "other")
    assert other.max_jobs_in_flight == int(240 * 3600 / 11)  # 300/s refill * 0.8
    assert other.throttles_first == "states:SendTaskHeartbeat"
    report = model({"one job per execution": inputs})
    case = report["cases"]["one job per execution"]
    assert case["large"]["max_jobs_in_flight"] > case["other"]["max_jobs_in_flight"]
    assert case["inputs"]["heartbeats_per_job_hour"] == 10
    assert report["headroom"] == 0.8


def test_quotas_are_the_published_buckets_and_refuse_unknown_apis() -> None:
    assert quotas.region_class("eu-west-1") == "large"
    assert quotas.region_class("ap-south-1") == "other"
    assert quotas.STEP_FUNCTIONS["states:StartExecution"]["other"] == quotas.Bucket(800, 150)
    assert quotas.sustained_limit("states:SendTaskHeartbeat", "large") == 400
    with pytest.raises(ValueError, match="no quota recorded"):
        quotas.sustained_limit("states:ListExecutions", "large")
    with pytest.raises(ValueError, match="duration_s"):
        FleetInputs(heartbeats_per_job_hour=1, duration_s=0)
