"""WorkerMetrics writes CloudWatch EMF lines CloudWatch Logs can turn into metrics."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from consumers.metrics import COUNTERS, MAX_VALUES_PER_METRIC, WorkerMetrics


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_flush_writes_one_emf_line_with_every_metric() -> None:
    out = io.StringIO()
    now = float(int(time.time()))
    metrics = WorkerMetrics(
        out, auto_scaling_group="workers-asg", metadata={"InstanceId": "i-0abc"}, clock=lambda: now
    )
    metrics.increment("jobs_started")
    metrics.increment("jobs_started")
    metrics.increment("jobs_succeeded")
    metrics.observe_duration(2.5)
    metrics.increment("jobs_failed")
    metrics.observe_duration(0.25)
    metrics.increment("heartbeats", 3)
    metrics.set_gauge("busy_slots", 1)
    metrics.set_gauge("in_flight", 1)
    assert metrics.flush() == 1

    [doc] = lines(out)
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert doc["_aws"]["Timestamp"] == int(now * 1000)
    assert directive["Namespace"] == "CallbackBridge"
    assert directive["Dimensions"] == [["Service", "AutoScalingGroupName"]]
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units == {
        **dict.fromkeys(COUNTERS, "Count"),
        "busy_slots": "Count",
        "in_flight": "Count",
        "job_duration": "Seconds",
    }
    assert doc["Service"] == "callback-bridge-worker"
    assert doc["AutoScalingGroupName"] == "workers-asg"
    assert doc["InstanceId"] == "i-0abc"
    assert (doc["jobs_started"], doc["jobs_succeeded"], doc["jobs_failed"]) == (2, 1, 1)
    assert (doc["heartbeats"], doc["jobs_timed_out"]) == (3, 0)
    assert doc["job_duration"] == [2.5, 0.25]
    assert (doc["busy_slots"], doc["in_flight"]) == (1, 1)
    for name in units:  # every metric the directive names is a root member
        assert name in doc


def test_counters_restart_each_interval_and_nothing_recorded_writes_nothing() -> None:
    out = io.StringIO()
    metrics = WorkerMetrics(out)
    assert metrics.flush() == 0
    metrics.increment("visibility_extensions")
    metrics.flush()
    assert metrics.flush() == 0
    metrics.increment("visibility_extensions", 2)
    metrics.flush()
    assert [doc["visibility_extensions"] for doc in lines(out)] == [1, 2]
    assert "job_duration" not in lines(out)[0]
    assert metrics.snapshot()["counters"]["visibility_extensions"] == 3


def test_more_than_100_durations_spill_into_extra_lines() -> None:
    out = io.StringIO()
    metrics = WorkerMetrics(out)
    for i in range(MAX_VALUES_PER_METRIC + 5):
        metrics.observe_duration(i)
    assert metrics.flush() == 2
    first, second = lines(out)
    assert len(first["job_duration"]) == MAX_VALUES_PER_METRIC
    assert second["job_duration"] == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert [m["Name"] for m in second["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == [
        "job_duration"
    ]
    assert metrics.snapshot()["job_duration_s"] == {"count": 105, "sum": 5460.0, "max": 104.0}


def test_powertools_service_variable_adds_no_dimension(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "something-else")
    out = io.StringIO()
    metrics = WorkerMetrics(out)
    metrics.increment("jobs_started")
    metrics.flush()
    [doc] = lines(out)
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Service"]]
    assert "service" not in doc


def test_file_output_appends(tmp_path: Path) -> None:
    path = tmp_path / "emf.log"
    metrics = WorkerMetrics(path)
    metrics.increment("jobs_started")
    metrics.flush()
    metrics.increment("jobs_started")
    metrics.flush()
    assert [json.loads(line)["jobs_started"] for line in path.read_text().splitlines()] == [1, 1]


def test_disabled_metrics_write_nothing_but_still_count(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = WorkerMetrics(enabled=False)
    metrics.increment("jobs_started")
    assert metrics.flush() == 0
    assert metrics.snapshot()["counters"]["jobs_started"] == 1
    assert capsys.readouterr() == ("", "")
    with pytest.raises(ValueError, match="metrics output"):
        WorkerMetrics()


def test_background_flusher_writes_and_flushes_on_stop() -> None:
    out = io.StringIO()
    metrics = WorkerMetrics(out)
    metrics.start(interval_s=0.05)
    with pytest.raises(RuntimeError, match="already started"):
        metrics.start()
    metrics.increment("jobs_started")
    deadline = time.monotonic() + 2
    while not out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    metrics.increment("jobs_cancelled")
    metrics.stop()
    docs = lines(out)
    assert sum(doc["jobs_started"] for doc in docs) == 1
    assert sum(doc["jobs_cancelled"] for doc in docs) == 1


def test_concurrent_recording_loses_nothing() -> None:
    metrics = WorkerMetrics(enabled=False)

    def work() -> None:
        for _ in range(1000):
            metrics.increment("heartbeats")
            metrics.observe_duration(0.5)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    snapshot = metrics.snapshot()
    assert snapshot["counters"]["heartbeats"] == 8000
    assert snapshot["job_duration_s"]["count"] == 8000


def test_unknown_names_are_refused() -> None:
    metrics = WorkerMetrics(enabled=False)
    with pytest.raises(ValueError, match="'jobs_exploded'"):
        metrics.increment("jobs_exploded")
    with pytest.raises(ValueError, match="'load'"):
        metrics.set_gauge("load", 1)
