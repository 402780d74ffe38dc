"""The seeded schedule: the same seed, the same plan of faults."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bridge.chaos.fleet import Fleet, Slot
from bridge.chaos.schedule import CRASH_STYLES, MODES, QUICK, ChaosPlan, build
from bridge.chaos.work import JOURNAL_ENV
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
                 "outage", "poison", "foreign_result", "check_listeners", "stop",
                 "results_missing"):  # fmt: skip
        assert schedule.count(kind) >= 1, kind
    assert schedule.count("poison") == QUICK.poison
    modes = [item["mode"] for items in schedule.items for item in items]
    assert set(modes) == set(MODES)
    assert modes.count("crash") == QUICK.crash_jobs and modes.count("nan") == QUICK.nan_jobs
    assert modes.count("daemon") == QUICK.daemon_jobs
    # the instance (slot 0) only gets the termination notice; kills and SIGTERMs go elsewhere
    assert all(e.target != 0 for e in schedule.events if e.kind in ("kill", "term"))


def test_crashing_jobs_run_beside_healthy_ones_and_crash_each_way() -> None:
    schedule = build(ChaosPlan())
    crashing = [(i, item) for i, items in enumerate(schedule.items) for item in items
                if item["mode"] == "crash"]  # fmt: skip
    assert [item["crash"] for _i, item in crashing] == list(CRASH_STYLES)
    for i, _item in crashing:  # healthy neighbours in the same execution
        assert sum(item["mode"] == "ok" for item in schedule.items[i]) >= 10
    nan = [item for items in schedule.items for item in items if item["mode"] == "nan"]
    assert {item["nan"] for item in nan} <= {"nan", "inf", "-inf"} and len(nan) == 10


def test_a_consumer_is_stopped_past_the_visibility_timeout_and_the_results_queue_goes_missing() -> (
    None
):
    for plan in (QUICK, ChaosPlan()):
        schedule = build(plan)
        stops = [e for e in schedule.events if e.kind == "stop"]
        assert len(stops) == plan.sigstops >= 1
        assert all(e.seconds > plan.visibility_timeout_s and e.target != 0 for e in stops)
        (missing,) = [e for e in schedule.events if e.kind == "results_missing"]
        assert missing.seconds == plan.results_missing_s
    assert ChaosPlan().results_missing_s == 60.0
    off = build(replace(QUICK, results_missing_s=0, daemon_jobs=0, sigstops=0))
    assert off.count("results_missing") == off.count("stop") == 0
    assert "daemon" not in {item["mode"] for items in off.items for item in items}


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
    "bad",
    [{"consumers": 1}, {"jobs_per_execution": 41}, {"jobs": 20, "stopped_executions": 1},
     {"jobs": 20, "stopped_executions": 0, "nan_jobs": 20}],
)  # fmt: skip
def test_impossible_plans_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        ChaosPlan(**bad)


def test_the_last_consumer_isolates_every_job_and_each_slot_keeps_its_state(
    tmp_path: Path,
) -> None:
    fleet = Fleet(QUICK, tmp_path / "local.json", "http://127.0.0.1:9", tmp_path)
    commands = [fleet.command(Slot(i), 8000 + i) for i in range(QUICK.consumers)]
    modes = [c[c.index("--isolation") + 1] for c in commands]
    assert modes == ["thread"] * (QUICK.consumers - 1) + ["process"]
    assert [c[c.index("--state-dir") + 1] for c in commands] == [
        str(tmp_path / f"state-{i}") for i in range(QUICK.consumers)
    ]
    assert all(c[c.index("--pass-env") + 1] == JOURNAL_ENV for c in commands)
    with pytest.raises(ValueError, match="isolated_consumers"):
        replace(QUICK, isolated_consumers=QUICK.consumers)
