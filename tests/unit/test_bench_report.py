"""The report's targets judge only what a run measured (a DISTRIBUTED run has no latencies)."""

from __future__ import annotations

from typing import Any

from benchmarks.report import targets


def _scenario(requests: float, p95: float, samples: int, usd: float) -> dict[str, Any]:
    return {
        "bridge_requests_per_job": requests,
        "latency_ms": {"p50": p95 / 2, "p95": p95, "p99": p95},
        "latency_samples": samples,
        "usd_per_million_jobs": {"10 min": usd},
    }


def test_latency_and_dollar_targets_are_left_out_without_latency_samples() -> None:
    bridge = _scenario(0.7, 0.0, samples=0, usd=1.0)
    naive = _scenario(5.0, 0.0, samples=0, usd=3.0)
    out = targets({"bridge": bridge, "naive": naive, "polling": _scenario(19, 5e4, 100, 1500)})
    assert out["bridge_requests_per_job<=0.6"] is False
    assert out["requests_5x_below_naive"] is True
    assert "added_latency_p95<1s" not in out
    assert "latency_10x_below_polling" not in out
    assert "usd_10min_20x_below_polling" not in out


def test_a_timed_run_is_judged_on_every_target() -> None:
    out = targets(
        {
            "bridge": _scenario(0.5, 300, 100, 26.0),
            "naive": _scenario(5.0, 9000, 100, 28.0),
            "polling": _scenario(19, 50_000, 100, 1500.0),
        }
    )
    assert out["added_latency_p95<1s"] and out["latency_10x_below_polling"]
    assert out["usd_10min_20x_below_polling"] and out["bridge_requests_per_job<=0.6"]
