"""``callback-bridge bench``: the quick run measures every target of issue 21 on one embedded
stack in under five minutes and its exit code judges them; the cost model's duration
behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks import cost
from benchmarks.report import TARGET_KEYS as KEYS
from benchmarks.report import bridge_requests
from bridge.timing import DEFAULT_HEARTBEAT_INTERVAL_S

TARGET_KEYS = set(KEYS)
SCENARIO_KEYS = {
    "jobs",
    "jobs_per_s",
    "latency_ms",
    "requests_per_job",
    "bridge_requests_per_job",
    "state_transitions_per_job",
    "lambda_invocations_per_job",
    "usd_per_million_jobs",
}


@pytest.mark.serial
@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(330)
def test_quick_bench_measures_every_target_in_under_five_minutes(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli.main", "bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=320,
        cwd=tmp_path,
    )
    elapsed = time.monotonic() - started
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report) == {"scenarios", "targets", "missed", "fleet"}, done.stderr[-3000:]
    assert set(report["scenarios"]) == {"burst", "steady", "naive"}
    for name, figures in report["scenarios"].items():
        assert set(figures) >= SCENARIO_KEYS, name
        assert figures["status"] == "SUCCEEDED", (name, figures.get("failure"))
        assert figures["jobs"] > 0 and figures["jobs_per_s"] > 0, name
        requests = figures["requests_per_job"]
        assert requests["total"] > 0 and requests["sqs:SendMessage"] >= 1, name
        # Each callback job is answered exactly once.
        assert requests["states:SendTaskSuccess"] == 1, name
    steady, naive = report["scenarios"]["steady"], report["scenarios"]["naive"]
    assert steady["latency_samples"] == steady["jobs"]
    assert naive["latency_samples"] == naive["jobs"]
    # The honest naive consumer: no heartbeats, no results queue, one delete per job, and its
    # visibility changes are one per job every third of the timeout.
    assert "states:SendTaskHeartbeat" not in naive["requests_per_job"]
    assert naive["requests_per_job"]["sqs:DeleteMessage"] == 1
    assert naive["keepalive_requests_per_job_hour"]["sqs:ChangeMessageVisibility"] > 20
    assert steady["worker"]["samples"] > 0
    targets = report["targets"]
    assert set(targets) == TARGET_KEYS
    assert all(isinstance(v, int | float) for v in targets.values()), targets
    # The exit code says whether a count target was missed, and nothing else did fail.
    assert done.returncode == (1 if report["missed"] else 0), done.stderr[-3000:]
    assert elapsed < 300


def test_bridge_requests_subtract_the_floor_once_per_job() -> None:
    requests = {"sqs:SendMessage": 20, "states:SendTaskSuccess": 10, "sqs:ReceiveMessage": 5}
    assert bridge_requests(requests, jobs=10) == 1.5  # 35 - 10 - 10 = 15 over 10 jobs
    assert bridge_requests({"sqs:SendMessage": 10, "s3:HeadObject": 30}, jobs=10) == 3.0


def test_polling_cost_grows_with_duration_and_the_bridge_only_by_keepalive() -> None:
    job = cost.PerJob(
        requests={"sqs:SendMessage": 1, "states:SendTaskSuccess": 1}, transitions=5.0,
        lambda_invocations=0.1, polls=1,
    )  # fmt: skip
    bridge = [cost.usd_per_job("bridge", job, s) for s in cost.DURATIONS.values()]
    polling = [cost.usd_per_job("polling", job, s) for s in cost.DURATIONS.values()]
    assert polling[2] > 20 * polling[0]  # every 30 s: 120 polls in 1 h, 2 in 1 min
    assert bridge[2] - bridge[0] < 0.05 * bridge[0]  # keep-alive: a few percent an hour
    hour = cost.keepalive_per_job_hour()
    assert hour["requests"]["states:SendTaskHeartbeat"] == round(
        3600 / DEFAULT_HEARTBEAT_INTERVAL_S, 2
    )
    # The naive consumer pays its visibility changes: more for the hour than for the minute.
    naive = [cost.usd_per_job("naive", job, s) for s in cost.DURATIONS.values()]
    assert naive[2] > naive[0]


def test_ledger_names_the_queue_and_the_bucket_of_each_request() -> None:
    import io

    from benchmarks.ledger import RequestLedger

    body = json.dumps({"QueueUrl": "http://127.0.0.1:1/123456789012/bench-naive-jobs"}).encode()
    sqs: dict[str, Any] = {
        "HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    assert RequestLedger.key(sqs) == ("sqs:ReceiveMessage", "bench-naive-jobs")
    assert sqs["wsgi.input"].read() == body  # put back for moto
    s3 = {
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=ak/20261126/us-east-1/s3/aws4_request",
        "HTTP_HOST": "127.0.0.1:1",
        "PATH_INFO": "/bench-polling-status/status/x/0",
        "REQUEST_METHOD": "HEAD",
    }
    assert RequestLedger.key(s3) == ("s3:HeadObject", "bench-polling-status")
    sfn = {"HTTP_X_AMZ_TARGET": "AWSStepFunctions.SendTaskSuccess"}
    assert RequestLedger.key(sfn) == ("states:SendTaskSuccess", "")


@pytest.mark.serial
@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_scale_point_reports_jobs_per_s_cpu_and_its_limit(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--points", "1x20", "--no-profile",
         "--work-dir", str(tmp_path / "work"), "--output", str(out)],
        capture_output=True, text=True, timeout=220, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (point,) = json.loads(out.read_text())["points"]
    assert point["status"] == "SUCCEEDED", point
    assert point["consumers"] == 1 and point["backlog"] == 20 and point["jobs_per_s"] > 0
    assert point["window"]["stack_cores"] > 0 and point["window"]["profiles"] == {}
    assert point["limit"]["limit"] in {
        "embedded stack", "machine CPU", "bridge (consumer)", "job slots", "none saturated",
    }  # fmt: skip
    assert "| 1 | 20 |" in done.stdout
