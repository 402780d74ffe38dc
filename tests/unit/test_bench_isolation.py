"""The isolation benchmark measures what it says: each mode runs its jobs and reports them."""

from __future__ import annotations

import pytest

from benchmarks import isolation


def test_each_mode_runs_every_job_and_reports_per_job_figures() -> None:
    report = isolation.run(jobs=2, concurrency=2, modes=["thread", "command"])
    rows = {(r["mode"], r["concurrency"]): r for r in report["results"]}
    assert set(rows) == {("thread", 1), ("thread", 2), ("command", 1), ("command", 2)}
    assert all(r["jobs"] == 2 and r["jobs_per_s"] > 0 for r in rows.values())
    assert rows[("command", 1)]["children_cpu_ms_per_job"] >= 0
    assert "| thread | 2 |" in isolation.table(report)


def test_a_failing_job_fails_the_measurement() -> None:
    class Failing:
        def run(self, job: object, context: object) -> object:
            return isolation.CommandRunner("exit 3").run(isolation.job(0))

    with pytest.raises(RuntimeError, match="job 0 failed"):
        isolation.measure(Failing(), jobs=1, concurrency=1)  # type: ignore[arg-type]
