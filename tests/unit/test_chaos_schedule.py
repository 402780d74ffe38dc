"""The seeded schedule: the same seed, the same plan of faults."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bridge.chaos.schedule import QUICK, ChaosPlan, build
from bridge.timing import TimingModel


def test_the_same_seed_gives_the_same_schedule() -> None:
    one, two = build(replace(QUICK, seed=5)), build(replace(QUICK, seed=5))
    assert one.events == two.events and one.items == two.items
    assert one.fuzz_seed == two.fuzz_seed
    assert build(replace(QUICK, seed=6)).events != one.events


def test_the_quick_plan_has_every_fault_and_jobs_in_executions_of_at_most_40() -> None:
    schedule = build(QUICK)
    assert sum(len(items) for items in schedule.items) == QUICK.jobs >= 200
    assert max(len(items) for items in schedule.items) <= 40
    for kind in ("start_execution", "stop_execution", "kill", "term", "announce_terminate",
                 "outage", "poison", "foreign_result", "check_listeners"):  # fmt: skip
        assert schedule.count(kind) >= 1, kind
    assert schedule.count("poison") == QUICK.poison
    modes = {item["mode"] for items in schedule.items for item in items}
    assert modes == {"ok", "fail", "hang", "crash"}
    # the instance (slot 0) only gets the termination notice; kills and SIGTERMs go elsewhere
    assert all(e.target != 0 for e in schedule.events if e.kind in ("kill", "term"))


def test_the_plan_fits_the_timing_model() -> None:
    for plan in (QUICK, ChaosPlan()):
        TimingModel(
            visibility_timeout_s=plan.visibility_timeout_s,
            heartbeat_interval_s=plan.heartbeat_interval_s,
            task_timeout_s=plan.task_timeout_s,
            max_queue_wait_s=plan.max_queue_wait_s,
            job_timeout_s=plan.job_timeout_s,
            stale_check_age_s=plan.stale_check_age_s,
            max_receive_count=plan.max_receive_count,
            lifecycle_hook_timeout_s=None,
        ).validate()


@pytest.mark.parametrize(
    "bad", [{"consumers": 1}, {"jobs_per_execution": 41}, {"jobs": 20, "stopped_executions": 1}]
)
def test_impossible_plans_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        ChaosPlan(**bad)
