"""The scale benchmark's pieces that need no stack: profile summaries, the limit rule, the
points grammar, the report table, the throughput plot and the keep-alive scaling."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import inflight, scale
from benchmarks.profiling import Profile, WindowStats, component, limit, summarise
from bridge.timing import DEFAULT_HEARTBEAT_INTERVAL_S, DEFAULT_VISIBILITY_TIMEOUT_S

SITE = "/work/.venv/lib/python3.11/site-packages"
RAW = "\n".join(
    [
        f"run (/x/threading.py:1);BaseResponse.call_action ({SITE}/moto/core/responses.py:10);"
        f"receive ({SITE}/moto/sqs/models.py:20);loads (/x/json/decoder.py:3) 30",
        f"run (/x/threading.py:1);_run ({SITE}/moto/stepfunctions/parser/x.py:5) 50",
        "run (/x/threading.py:1);wait (/x/threading.py:320) 20",
        "garbage line without a count",
    ]
)


def _stats(stack_gil: float, consumer_gil: float, busy: float = 1.0) -> WindowStats:
    profiles = {
        "stack": Profile(100, 10.0, 50, stack_gil),
        "consumer": Profile(100, 10.0, 50, consumer_gil),
    }
    return WindowStats(10.0, 2, busy, 0.5, 0.3, 0.2, 0.05, 0.1, profiles)


def test_a_profile_is_summarised_to_gil_share_components_and_top_functions() -> None:
    profile = summarise(RAW, window_s=4.0, rate_hz=50)
    assert profile.samples == 100
    assert profile.gil_share == 0.5  # 100 samples of 200 possible
    assert dict(profile.components) == {
        "moto Step Functions interpreter": 0.5,
        "moto SQS": 0.3,  # the json leaf is charged to its innermost known caller
        "other (stdlib, threads)": 0.2,
    }
    assert dict(profile.inclusive) == {
        "moto's action handlers (the API's own work)": 0.3,
        "Step Functions interpreter": 0.5,
    }
    top, share = profile.top_functions[0]
    assert top == "_run (moto/stepfunctions/parser/x.py:5)" and share == 0.5


def test_an_empty_profile_has_no_samples_and_no_share() -> None:
    assert summarise("", window_s=3.0).samples == 0
    assert summarise("", window_s=3.0).gil_share == 0.0
    assert component(["f (/usr/lib/python3.11/re.py:1)"]) == "other (stdlib, threads)"


@pytest.mark.parametrize(
    ("stack", "consumer", "busy", "jobs_per_s", "expected"),
    [
        (0.95, 0.1, 1.0, 50, "embedded stack"),
        (0.5, 0.1, 1.9, 50, "machine CPU"),
        (0.5, 0.9, 1.0, 50, "bridge (consumer)"),
        (0.5, 0.1, 1.0, 190, "job slots"),
        (0.5, 0.1, 1.0, 50, "none saturated"),
    ],
)
def test_the_limit_rule_names_what_saturated_first(
    stack: float, consumer: float, busy: float, jobs_per_s: float, expected: str
) -> None:
    verdict = limit(_stats(stack, consumer, busy), jobs_per_s=jobs_per_s, slots_per_s=200)
    assert verdict["limit"] == expected
    assert verdict["why"]


def test_points_parse_and_bad_ones_are_named() -> None:
    assert scale.parse_points("1x100, 8x10000") == [(1, 100), (8, 10000)]
    with pytest.raises(ValueError, match="'2-100'"):
        scale.parse_points("2-100")
    with pytest.raises(ValueError, match="backlog 1-10000"):
        scale.parse_points("2x20000")


def _point(consumers: int, backlog: int, jobs_per_s: float) -> dict[str, object]:
    return {
        "consumers": consumers,
        "backlog": backlog,
        "status": "SUCCEEDED",
        "jobs_per_s": jobs_per_s,
        "slots_jobs_per_s": consumers * 200.0,
        "window": _stats(0.9, 0.2).as_dict(),
        "limit": {"limit": "embedded stack", "why": "stack GIL held 90%"},
    }


def test_the_scale_table_has_a_row_per_point_and_reports_a_failed_one() -> None:
    points = [
        _point(1, 1000, 40.0),
        {"consumers": 2, "backlog": 10000, "status": "ERROR", "error": "out of memory"},
    ]
    text = scale.markdown(points)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 3  # header and two points
    assert "| 1 | 1,000 | 40.0 | 200 | 5.0 | 90% | 20% |" in rows[1]  # 0.5 cores x 10 s / 1,000
    assert "embedded stack" in rows[1]
    assert "ERROR: out of memory" in rows[2]


def test_the_throughput_plot_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks.plots import throughput_plot

    report = {
        "job_ms": 50,
        "concurrency": 10,
        "points": [_point(c, 1000, 30.0 + c) for c in (1, 2, 4, 8)]
        + [{"consumers": 2, "backlog": 10000, "status": "ERROR", "error": "x"}],
    }
    out = tmp_path / "bench-scale-throughput.png"
    throughput_plot(report, out, "python -m benchmarks.scale")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_keepalive_counts_scale_to_a_job_hour_and_to_the_default_intervals() -> None:
    assert inflight.per_job_hour(1200, jobs=1000, window_s=120) == pytest.approx(36.0)
    at_defaults = inflight.scaled(
        {"sqs:ChangeMessageVisibilityBatch": 36.0, "states:SendTaskHeartbeat": 180.0},
        visibility_s=30,
        heartbeat_s=20.0,
    )
    # Each linear in its interval: visibility 30 s → the default, heartbeats 20 s → the default.
    assert at_defaults == {
        "sqs:ChangeMessageVisibilityBatch": round(36.0 * 30 / DEFAULT_VISIBILITY_TIMEOUT_S, 2),
        "states:SendTaskHeartbeat": round(180.0 * 20 / DEFAULT_HEARTBEAT_INTERVAL_S, 2),
    }


def test_a_stack_using_a_whole_core_is_the_limit_whatever_its_gil_share() -> None:
    stats = _stats(0.4, 0.1)
    stats.stack_cores = 0.9  # C code and GIL hand-offs between its threads
    assert limit(stats, jobs_per_s=50, slots_per_s=200)["limit"] == "embedded stack"
