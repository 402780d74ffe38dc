"""Every bench scenario, as ``callback-bridge bench`` runs them: :mod:`benchmarks.scenarios`'
own, plus ``steady`` and ``naive`` (:mod:`benchmarks.steady_run`), each followed by its
keep-alive probes (:mod:`benchmarks.probes`) on the same stack."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks import scenarios
from benchmarks.naive_run import run_naive
from benchmarks.probes import bridge_probes, naive_probe
from benchmarks.scenarios import Bench, BenchPlan, Measured, Progress, Watch
from benchmarks.steady_run import run_steady


def steady(bench: Bench) -> Measured:
    """The steady workload on the bridge, then the bridge's two keep-alive probes."""
    measured = run_steady(bench)
    measured.extra["keepalive_probes"] = bridge_probes(bench, bench.plan.steady)
    return measured


def naive(bench: Bench) -> Measured:
    """The steady workload on the honest naive consumer, then its keep-alive probe."""
    measured = run_naive(bench)
    measured.extra["keepalive_probes"] = {
        "one_job_per_execution": naive_probe(bench, bench.plan.steady)
    }
    return measured


RUNNERS: dict[str, Callable[[Bench], Measured]] = {
    **scenarios.RUNNERS,
    "steady": steady,
    "naive": naive,
}


def run_bench(
    plan: BenchPlan,
    progress: Progress | None = None,
    work_dir: Path | None = None,
    watch: Watch | None = None,
) -> tuple[list[Measured], Path]:
    """:func:`benchmarks.scenarios.run_bench` with every scenario."""
    return scenarios.run_bench(plan, progress, work_dir, watch, runners=RUNNERS)
