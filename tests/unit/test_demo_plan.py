"""The demo picks a mode AWS would accept for the size asked, or refuses in one line."""

from __future__ import annotations

import pytest

from bridge.limits import PAYLOAD_BYTES, LimitError
from bridge.local_stack.demo import AUTO, DemoPlan


@pytest.mark.parametrize(
    ("jobs", "asked", "mode", "item_file"),
    [
        (20, AUTO, "INLINE", False),
        (1000, AUTO, "INLINE", False),
        (1000, "DISTRIBUTED", "DISTRIBUTED", False),
        (3000, "DISTRIBUTED", "DISTRIBUTED", True),  # its Map output would pass 256 KiB
        (3000, AUTO, "DISTRIBUTED", True),
        (10_000, AUTO, "DISTRIBUTED", True),  # its execution input would pass 256 KiB
    ],
)
def test_the_mode_fits_aws_limits(jobs: int, asked: str, mode: str, item_file: bool) -> None:
    plan = DemoPlan(jobs=jobs, map_mode=asked)
    fan = plan.fan_out()
    assert (fan.mode, fan.needs_item_file) == (mode, item_file)
    if not item_file:
        assert plan.output_bytes() <= PAYLOAD_BYTES


@pytest.mark.parametrize(("jobs", "limit"), [(3000, "history-events"), (2000, "state-output")])
def test_an_inline_run_aws_would_fail_is_refused_naming_distributed(jobs: int, limit: str) -> None:
    with pytest.raises(LimitError) as refused:
        DemoPlan(jobs=jobs, map_mode="INLINE").fan_out()
    assert refused.value.limit == limit
    message = str(refused.value)
    assert "\n" not in message and "--map-mode DISTRIBUTED" in message


def test_failing_jobs_count_towards_the_output_estimate() -> None:
    assert DemoPlan(jobs=1000, fail_rate=0.5).output_bytes() > DemoPlan(jobs=1000).output_bytes()


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="INLINE, DISTRIBUTED or AUTO"):
        DemoPlan(map_mode="PARALLEL")


def test_large_runs_get_a_longer_default_timeout() -> None:
    assert DemoPlan(jobs=20).deadline_s == 300
    assert DemoPlan(jobs=10_000).deadline_s == 1000
    assert DemoPlan(jobs=10_000, timeout_s=60).deadline_s == 60
