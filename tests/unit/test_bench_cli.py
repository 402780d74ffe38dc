"""``callback-bridge bench``'s exit code and last JSON line, with the scenarios' measurements
planted (no stack): a missed count target fails the command, a slow latency does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from benchmarks import suite
from benchmarks.report import TARGET_KEYS
from benchmarks.scenarios import Measured
from bridge.cli.main import app


def _probe(
    total: float, beats: float, jobs: int, per_execution: int, concurrency: int
) -> dict[str, Any]:
    return {
        "jobs": jobs, "jobs_per_execution": per_execution, "workers": 1,
        "concurrency": concurrency, "model_per_job_hour": total,
        "per_job_hour": {"total": total, "states:SendTaskHeartbeat": beats},
    }  # fmt: skip


def _long(name: str, per_job: float, probes: dict[str, Any], latency_ms: float) -> Measured:
    jobs = 40
    extra = {
        "workload": {"compress": 120}, "job_hours": 8.0,
        "requests_per_job_beyond_floor_without_keepalive": per_job,
        "keepalive_requests_per_job_hour": {"total": 12.0},
        "sfn_calls_per_s_per_1000_in_flight": {}, "keepalive_probes": probes,
    }  # fmt: skip
    requests = {"sqs:SendMessage": jobs, "states:SendTaskSuccess": jobs,
                "sqs:ReceiveMessage": int(per_job * jobs)}  # fmt: skip
    return Measured(name, jobs, 30.0, "SUCCEEDED", requests, 72, [latency_ms] * jobs, [],
                    extra=extra)  # fmt: skip


def _measured(burst_receives: int, latency_ms: float = 300.0) -> list[Measured]:
    requests = {"sqs:SendMessage": 500, "states:SendTaskSuccess": 500,
                "sqs:ReceiveMessage": burst_receives}  # fmt: skip
    burst = Measured("burst", 500, 6.0, "SUCCEEDED", requests, 5, [], [])
    steady = _long("steady", 4.0, {
        "one_job_per_execution": _probe(14.5, 10.0, 12, 1, 4),
        "fanout": _probe(2.8, 1.0, 10, 10, 10),
    }, latency_ms)  # fmt: skip
    naive = _long("naive", 2.0, {"one_job_per_execution": _probe(36.0, 0.0, 12, 1, 4)}, 10.0)
    return [burst, steady, naive]


def _bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, measured: list[Measured]) -> Any:
    monkeypatch.setattr(
        suite, "run_bench", lambda plan, progress=None, work_dir=None: (measured, tmp_path)
    )
    return CliRunner().invoke(app, ["bench", "--quick", "--json"])


def test_all_count_targets_met_exits_zero_even_with_slow_latency(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = _bench(monkeypatch, tmp_path, _measured(burst_receives=250, latency_ms=5000.0))
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert set(last["targets"]) == set(TARGET_KEYS)
    assert last["targets"]["burst_bridge_requests_per_job"] == 0.5
    assert last["targets"]["requests_per_1h_job"] == 18.5
    assert last["targets"]["added_latency_p95_ms"] == 5000.0
    assert last["missed"] == []


def test_a_planted_count_miss_exits_one_and_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = _bench(monkeypatch, tmp_path, _measured(burst_receives=400))  # 0.8 per job
    assert result.exit_code == 1, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["missed"] == ["burst_bridge_requests_per_job 0.8 (target <= 0.55)"]
