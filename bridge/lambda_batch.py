"""The shape both Lambdas share: an SQS batch in, a partial batch response out.

Both the completion handler and the dead-letter handler are this, with a different function for
one record:

* **powertools' batch utility** builds the partial batch response
  (``ReportBatchItemFailures``): a record whose function raises is reported back to SQS, every
  other one is acknowledged (and deleted by the event source mapping);
* **concurrency**: records run on a small thread pool (``AsyncBatchProcessor`` awaits each one
  in an executor). The plain ``BatchProcessor`` calls the record function one record at a time,
  so one slow call holds up the batch. Measured against moto in-process with 200 ms injected
  into every SendTaskSuccess on a shared 2-CPU machine (``MEASURE_RECORDS=100 .venv/bin/python
  -m pytest -s -p no:cacheprovider tests/functional/test_lambda_batch.py -k measure``; default
  10 records): a batch of 10 took 2.05 s with ``BatchProcessor`` and 0.42-0.49 s here (8
  threads); a batch of 100 took 20.6 s, twice the completion function's 10 s timeout, and
  2.8 s here. The hand-made pool this replaces took 0.43 s and 2.7 s: the utility costs nothing;
* **the deadline**: the invocation's remaining time minus a safety margin. Calls are retried
  within it (:mod:`bridge.retrying`), and a record still running when it comes (a hung
  connection) is reported back, never deleted unprocessed;
* **Logger and Metrics**: powertools' ``Logger`` with the token-redacting filter on its handler
  (:mod:`bridge.redaction`), ``Metrics`` in embedded metric format. Record threads count into
  their own :class:`Tally`; counts are merged and published on the invocation's thread
  (powertools' metric set is not thread-safe).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from bridge.redaction import install
from bridge.retrying import Retrier, RetryPolicy, Transient

#: The powertools Logger's service (both Lambdas log through the same one).
SERVICE = "callback-bridge"
#: Records handled at once; botocore clients are thread-safe.
DEFAULT_WORKERS = 8
#: Budget when called without a Lambda context (a script, a test).
NO_CONTEXT_BUDGET_S = 60.0

Response = dict[str, Any]


@dataclass
class Tally:
    """Metrics of one record (or, merged, of one invocation)."""

    counts: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, name: str, value: int = 1) -> None:
        self.counts[name] += value

    def merge(self, other: Tally) -> None:
        self.counts.update(other.counts)
        self.latencies_ms.extend(other.latencies_ms)


#: What a Lambda does with one record: raise to have SQS deliver it again.
RecordFunction = Callable[[dict[str, Any], Retrier, Tally], None]


def lambda_logger() -> Logger:
    """powertools' Logger for both Lambdas, its handler masking every task token."""
    logger = Logger(service=SERVICE)
    install(logging.getLogger(SERVICE))
    return logger


def lambda_metrics(service: str) -> Metrics:
    """powertools' Metrics (EMF) in the namespace the alarms read."""
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "CallbackBridge")
    return Metrics(namespace=namespace, service=service)


def metrics_disabled() -> bool:
    """powertools' switch (the embedded stack sets it: EMF means nothing locally)."""
    value = os.environ.get("POWERTOOLS_METRICS_DISABLED", "false")
    return value.strip().lower() in {"1", "true", "yes", "on", "y"}


def enabled(metrics: Metrics) -> Metrics | None:
    """``metrics``, or ``None`` where metrics are off: powertools would keep what is added in
    memory, unflushed (:func:`lambda_entry` does not flush there), for the process's life."""
    return None if metrics_disabled() else metrics


def publish(metrics: Metrics | None, tally: Tally) -> None:
    """Add the invocation's counts and latencies to ``metrics`` (``None``: not published)."""
    if metrics is None:
        return
    for name, value in sorted(tally.counts.items()):
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for ms in tally.latencies_ms:
        metrics.add_metric(name="EndToEndLatency", unit=MetricUnit.Milliseconds, value=ms)


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_entry(handle: Handler, logger: Logger, metrics: Metrics) -> Handler:
    """``handle`` with powertools' Lambda context in every log line and the invocation's
    metrics flushed at its end (not where metrics are off, as on the embedded stack)."""
    logged: Handler = logger.inject_lambda_context(handle)
    return logged if metrics_disabled() else metrics.log_metrics(logged)


@dataclass
class BatchRunner:
    """Runs a record function over an SQS event within the invocation's deadline.

    ``noun`` names a record in log lines: ``"result not handled"`` is what the chaos campaign
    counts as a bug (bridge/chaos/checks.py)."""

    logger: Logger
    noun: str = "record"
    workers: int = DEFAULT_WORKERS
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def deadline(self, context: Any) -> float:
        """The ``clock()`` value by which every record must be settled."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        budget_s = remaining() / 1000 if callable(remaining) else NO_CONTEXT_BUDGET_S
        return self.clock() + max(0.0, budget_s - self.policy.safety_margin_s)

    def run(
        self, event: dict[str, Any], context: Any, work: RecordFunction
    ) -> tuple[Response, Tally]:
        """The partial batch response for ``event`` and the invocation's merged tally."""
        records: list[dict[str, Any]] = event.get("Records") or []
        total = Tally()
        if not records:
            return {"batchItemFailures": []}, total
        deadline = self.deadline(context)
        pool = ThreadPoolExecutor(
            max_workers=max(1, min(self.workers, len(records))), thread_name_prefix="record"
        )

        async def settle(record: SQSRecord) -> None:
            await self._settle(record.raw_event, work, pool, deadline, total)

        # A new processor per invocation: the embedded stack invokes one handler concurrently.
        processor = AsyncBatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False)
        try:
            response = async_process_partial_response(event, settle, processor, context)
        finally:
            # Threads still running stop at their next call (they check the deadline).
            pool.shutdown(wait=False, cancel_futures=True)
        return _in_record_order(dict(response), records), total

    async def _settle(
        self,
        record: dict[str, Any],
        work: RecordFunction,
        pool: ThreadPoolExecutor,
        deadline: float,
        total: Tally,
    ) -> None:
        """Run ``work`` for one record in ``pool``; raises (a batch item failure) when it
        raised or was not done by the deadline. Runs on the event loop's thread."""
        message_id = record.get("messageId")
        tally = Tally()
        retry = Retrier(deadline, self.policy, self.clock, self.sleep, self.rng, tally.counts)
        future = asyncio.wrap_future(pool.submit(work, record, retry, tally))
        done, _ = await asyncio.wait({future}, timeout=max(0.0, deadline - self.clock()))
        if not done:
            future.cancel()  # a record not started yet never starts
            self.logger.warning(
                f"{self.noun} not finished before the deadline; SQS will retry it",
                extra={"message_id": message_id},
            )
            total.add("DeadlineExceeded")
            raise Transient("not finished before the deadline")
        total.merge(tally)
        try:
            future.result()
        except Transient as exc:
            self.logger.warning(
                f"{self.noun} returned to SQS for a later retry",
                extra={"message_id": message_id, "reason": str(exc)},
            )
            raise
        except Exception as exc:  # never lose a record to a bug or an unexpected answer
            self.logger.exception(
                f"{self.noun} not handled, SQS will retry it",
                extra={"message_id": message_id, "error": type(exc).__name__},
            )
            raise


def _in_record_order(response: Response, records: list[dict[str, Any]]) -> Response:
    """Failures in the batch's order (the processor lists them as they finish)."""
    position = {r.get("messageId"): i for i, r in enumerate(records)}
    failures = sorted(
        response.get("batchItemFailures", []),
        key=lambda f: position.get(f.get("itemIdentifier"), len(records)),
    )
    return {**response, "batchItemFailures": failures}
