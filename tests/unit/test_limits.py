"""bridge.limits: the figures, the checks the CLI runs before starting, and their one-line
explanations."""

from __future__ import annotations

import json

import pytest

from bridge import limits
from bridge.contract import MAX_MESSAGE_BYTES, MAX_OUTPUT_BYTES
from bridge.limits import (
    HISTORY_EVENTS,
    INLINE_MAX_CONCURRENCY,
    PAYLOAD_BYTES,
    FanOutPlan,
    LimitError,
    check_execution_input,
    check_inline_jobs,
    check_items,
    effective_concurrency,
    inline_history_events,
    max_inline_jobs,
    payload_bytes,
    plan_fan_out,
)


def test_the_figures_agree_with_the_contract() -> None:
    assert limits.QUEUE_MESSAGE_BYTES == MAX_MESSAGE_BYTES
    assert PAYLOAD_BYTES == MAX_OUTPUT_BYTES == 256 * 1024


def test_payload_bytes_counts_utf8_bytes_of_compact_json() -> None:
    assert payload_bytes("abc") == 3
    assert payload_bytes("é") == 2
    assert payload_bytes(b"\x00\x01") == 2
    assert payload_bytes({"a": [1, 2]}) == len('{"a":[1,2]}')
    assert payload_bytes({"a": "é"}) == len('{"a":"é"}'.encode())


def test_the_payload_limit_is_inclusive() -> None:
    check_execution_input("x" * PAYLOAD_BYTES)  # 262,144 bytes itself fits
    with pytest.raises(LimitError):
        check_execution_input("x" * (PAYLOAD_BYTES + 1))


@pytest.mark.parametrize(
    ("asked", "mode", "runs"),
    [
        (0, "INLINE", 40),
        (100, "INLINE", 40),
        (40, "INLINE", 40),
        (5, "INLINE", 5),
        (0, "DISTRIBUTED", 10_000),
        (500, "DISTRIBUTED", 500),
    ],
)
def test_effective_concurrency(asked: int, mode: limits.MapMode, runs: int) -> None:
    assert effective_concurrency(asked, mode) == runs


def test_history_estimate_matches_the_measured_template() -> None:
    # Measured on the embedded stack: 1 job 20 events, 2 jobs 28, 10 jobs 92; one failed job
    # of 10: 94; one retry: 96.
    assert [inline_history_events(n) for n in (1, 2, 10)] == [20, 28, 92]
    assert inline_history_events(10, failed_jobs=1) == 94
    assert inline_history_events(10, retries=1) == 96


def test_max_inline_jobs_keeps_headroom_below_the_limit() -> None:
    jobs = max_inline_jobs()
    assert inline_history_events(jobs) <= HISTORY_EVENTS * 0.95
    assert inline_history_events(jobs + 1) > HISTORY_EVENTS * 0.95
    assert inline_history_events(max_inline_jobs(headroom=0)) <= HISTORY_EVENTS
    assert inline_history_events(max_inline_jobs(headroom=0) + 1) > HISTORY_EVENTS


def test_an_oversized_execution_input_is_explained_in_one_line() -> None:
    document = json.dumps({"jobs": ["x" * 100] * 4000})
    with pytest.raises(LimitError) as info:
        check_execution_input(document)
    message = str(info.value)
    assert "\n" not in message
    assert f"execution input is {len(document):,} bytes" in message
    assert "262,144 (256 KiB)" in message
    assert "--map-mode DISTRIBUTED" in message and "--jobs-file" in message
    assert (info.value.limit, info.value.aws_error) == ("execution-input", "ValidationException")
    check_execution_input("x" * PAYLOAD_BYTES)  # at the limit: accepted


def test_an_oversized_item_is_named_by_its_index() -> None:
    assert check_items([{"a": 1}, "b"]) == 2
    with pytest.raises(LimitError, match=r"^job 1 is 262,145 bytes") as info:
        check_items(["ok", "x" * (PAYLOAD_BYTES + 1 - 2)])  # 2 bytes of JSON quotes
    assert info.value.aws_error == "States.DataLimitExceeded"


def test_an_inline_run_too_long_for_the_history_points_to_distributed() -> None:
    check_inline_jobs(max_inline_jobs())
    with pytest.raises(LimitError, match="use --map-mode DISTRIBUTED") as info:
        check_inline_jobs(5000)
    assert info.value.aws_error == "States.Runtime"
    assert "5,000 jobs" in str(info.value)


def test_plan_picks_a_mode_aws_accepts() -> None:
    small = [{"n": i} for i in range(10)]
    assert plan_fan_out(small) == FanOutPlan("INLINE", False)
    assert plan_fan_out(small, "DISTRIBUTED") == FanOutPlan("DISTRIBUTED", False)
    many = [{"n": i} for i in range(max_inline_jobs() + 1)]
    assert plan_fan_out(many) == FanOutPlan("DISTRIBUTED", False)
    big = [{"data": "x" * 1000} for _ in range(300)]  # ~300 KB of execution input
    assert plan_fan_out(big) == FanOutPlan("DISTRIBUTED", True)


def test_plan_refuses_inline_where_aws_would_fail() -> None:
    with pytest.raises(LimitError, match="execution input"):
        plan_fan_out([{"data": "x" * 1000} for _ in range(300)], "INLINE")
    with pytest.raises(LimitError, match="history events"):
        plan_fan_out([{} for _ in range(5000)], "INLINE")
    with pytest.raises(LimitError, match="job 0"):
        plan_fan_out(["x" * PAYLOAD_BYTES], "DISTRIBUTED")


def test_inline_concurrency_constant() -> None:
    assert INLINE_MAX_CONCURRENCY == 40
