"""Worker metrics as CloudWatch embedded metric format (EMF) lines.

An EMF line is a JSON log event CloudWatch Logs turns into metrics: no PutMetricData calls, no
extra IAM permission, no request on the job path. The worker records counters, job durations and
gauges here; every ``interval_s`` one line goes to a stream or file the CloudWatch agent ships.

The document is serialised by powertools' ``AmazonCloudWatchEMFProvider.serialize_metric_set``
with explicit metrics and dimensions. We do not use powertools' ``Metrics`` class: its metric
set is shared by every instance in the process, it prints to stdout when a metric reaches 100
values, and it adds a ``service`` dimension from ``POWERTOOLS_SERVICE_NAME``. The EMF spec allows
at most 100 values per metric in one document, so more durations than that spill into extra
lines carrying only ``job_duration``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

log = logging.getLogger(__name__)

COUNTERS = (
    "jobs_started",
    "jobs_succeeded",
    "jobs_failed",
    "jobs_cancelled",
    "jobs_timed_out",
    "jobs_stale",
    "jobs_released",
    "jobs_malformed",
    "visibility_extensions",
    "heartbeats",
    "heartbeat_failures",
    # Results the results queue refused, kept in the spool; and spooled results sent later.
    "results_spooled",
    "results_unspooled",
)
#: ``spooled_results``: results held in the spool now (alarm on it staying above 0).
GAUGES = ("busy_slots", "in_flight", "spooled_results")
DURATION = "job_duration"
#: EMF: "arrays MUST NOT contain more than 100 values".
MAX_VALUES_PER_METRIC = 100
DEFAULT_NAMESPACE = "CallbackBridge"
DEFAULT_SERVICE = "callback-bridge-worker"


class WorkerMetrics:
    """Thread-safe recorder; ``flush`` writes what was recorded since the previous flush.

    ``output`` is a text stream or a file path (appended to). ``enabled=False`` records (so
    :meth:`snapshot` still feeds the health endpoint) but never writes."""

    def __init__(
        self,
        output: TextIO | str | Path | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        service: str = DEFAULT_SERVICE,
        auto_scaling_group: str | None = None,
        metadata: dict[str, str] | None = None,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if enabled and output is None:
            raise ValueError("metrics output: give a stream or a file path, or enabled=False")
        self.enabled = enabled
        self.namespace = namespace
        self.dimensions = {"Service": service}
        if auto_scaling_group:
            self.dimensions["AutoScalingGroupName"] = auto_scaling_group
        self.metadata = dict(metadata or {})
        self._output = output
        self._clock = clock
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending = dict.fromkeys(COUNTERS, 0)
        self._totals = dict.fromkeys(COUNTERS, 0)
        self._durations: list[float] = []
        self._duration_total = {"count": 0, "sum": 0.0, "max": 0.0}
        self._gauges: dict[str, float] = {}
        self._dirty = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- recording ---------------------------------------------------------------------------

    def increment(self, name: str, value: int = 1) -> None:
        """Add ``value`` to counter ``name`` (one of :data:`COUNTERS`)."""
        if name not in self._pending:
            raise ValueError(f"unknown counter {name!r}: expected one of {', '.join(COUNTERS)}")
        with self._lock:
            self._pending[name] += value
            self._totals[name] += value
            self._dirty = True

    def observe_duration(self, seconds: float) -> None:
        """Record one job's run time; every value is kept until the next flush."""
        value = max(0.0, float(seconds))
        with self._lock:
            self._durations.append(value)
            self._duration_total["count"] += 1
            self._duration_total["sum"] += value
            self._duration_total["max"] = max(self._duration_total["max"], value)
            self._dirty = True

    def set_gauge(self, name: str, value: float) -> None:
        """Set gauge ``name`` (one of :data:`GAUGES`); a flush reports the latest value."""
        if name not in GAUGES:
            raise ValueError(f"unknown gauge {name!r}: expected one of {', '.join(GAUGES)}")
        with self._lock:
            self._gauges[name] = value
            self._dirty = True

    # -- reading -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Totals since start (counters, duration count/sum/max) and the current gauges."""
        with self._lock:
            return {
                "counters": dict(self._totals),
                "job_duration_s": dict(self._duration_total),
                "gauges": dict(self._gauges),
            }

    def documents(self) -> list[dict[str, Any]]:
        """Take what was recorded since the last call and return it as EMF documents (empty if
        nothing was recorded). :meth:`flush` writes these; tests can read them directly."""
        with self._lock:
            if not self._dirty:
                return []
            counters, durations, gauges = dict(self._pending), self._durations, dict(self._gauges)
            self._pending = dict.fromkeys(COUNTERS, 0)
            self._durations = []
            self._dirty = False
        timestamp = int(self._clock() * 1000)
        metrics: dict[str, dict[str, Any]] = {
            name: _metric("Count", value) for name, value in counters.items()
        }
        metrics.update({name: _metric("Count", value) for name, value in gauges.items()})
        chunks = [
            durations[i : i + MAX_VALUES_PER_METRIC]
            for i in range(0, len(durations), MAX_VALUES_PER_METRIC)
        ]
        if chunks:
            metrics[DURATION] = _metric("Seconds", chunks[0])
        docs = [self._serialize(metrics, timestamp)]
        docs.extend(
            self._serialize({DURATION: _metric("Seconds", c)}, timestamp) for c in chunks[1:]
        )
        return docs

    def flush(self) -> int:
        """Write one EMF line (more if over 100 durations) if anything was recorded; returns
        the number of lines written. Disabled metrics discard the data."""
        docs = self.documents()
        if not docs or not self.enabled:
            return 0
        text = "".join(json.dumps(doc, separators=(",", ":")) + "\n" for doc in docs)
        with self._write_lock:
            if isinstance(self._output, str | Path):
                with open(self._output, "a", encoding="utf-8") as file:
                    file.write(text)
            elif self._output is not None:
                self._output.write(text)
                self._output.flush()
        return len(docs)

    # -- background flushing -----------------------------------------------------------------

    def start(self, interval_s: float = 60.0) -> None:
        """Flush every ``interval_s`` seconds on a daemon thread until :meth:`stop`."""
        if interval_s <= 0:
            raise ValueError(f"metrics interval must be positive, got {interval_s}")
        if self._thread is not None:
            raise RuntimeError("metrics flusher already started")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(interval_s,), name="metrics-flush", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the flusher and write what is left, so the last interval is not lost."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._safe_flush()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self._safe_flush()

    def _safe_flush(self) -> None:
        try:
            self.flush()
        except Exception:  # a full disk or closed stream must not take the worker down
            log.warning("could not write metrics", exc_info=True)

    def _serialize(self, metrics: dict[str, dict[str, Any]], timestamp: int) -> dict[str, Any]:
        # service="" keeps POWERTOOLS_SERVICE_NAME from adding a dimension behind our back.
        provider = AmazonCloudWatchEMFProvider(namespace=self.namespace, service="")
        provider.set_timestamp(timestamp)
        doc = provider.serialize_metric_set(
            metrics=metrics, dimensions=dict(self.dimensions), metadata=dict(self.metadata)
        )
        return dict(doc)


def _metric(unit: str, value: float | list[float]) -> dict[str, Any]:
    return {"Unit": unit, "StorageResolution": 60, "Value": value}
