"""The completion Lambda: results queue → SendTaskSuccess / SendTaskFailure.

Triggered by an SQS event source mapping with ``ReportBatchItemFailures``. Every record ends in
exactly one way, and only a record that a retry could still help goes back to SQS:

=========================  =========================================  ====================
result                     what the handler does                      metric
=========================  =========================================  ====================
succeeded / failed         SendTaskSuccess / SendTaskFailure          JobsSucceeded /
                           (error and cause clipped to AWS's limits)  JobsFailed,
                                                                      EndToEndLatency
output over 256 KiB        SendTaskFailure ``Bridge.OutputTooLarge``  OutputsTooLarge
output Step Functions      SendTaskFailure ``Bridge.InvalidOutput``   InvalidOutputs
refuses (``InvalidOutput``) with its reason
token already closed       acknowledged, logged with the masked       StaleResults
(``TaskTimedOut``,         token (timeout, stop, duplicate delivery)
``InvalidToken``,
``TaskDoesNotExist``)
malformed, token readable  SendTaskFailure ``Bridge.InvalidResult``   MalformedResults,
                           naming the field, plus a copy in the       InvalidResults
                           results DLQ with the reason
malformed, no token        copy in the results DLQ with the reason    MalformedResults
throttling, 5xx, network   retried with backoff and jitter within     ThrottledCallbacks,
                           the invocation's remaining time, then      CallbackRetries,
                           reported as a batch item failure           ResultsRetried
not done by the deadline   reported as a batch item failure           DeadlineExceeded
=========================  =========================================  ====================

Records are handled concurrently (bounded) so one slow record cannot hold up the rest. The
deadline is the invocation's remaining time minus a safety margin: whatever is unfinished then
is reported back, never deleted unprocessed. botocore's own retries are off for this function's
clients (:func:`build_lambda_clients`): its backoff does not know the deadline and once took
17-35 s against a 10 s function timeout.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from bridge.aws import TASK_CLOSED_ERRORS, Clients, build_clients
from bridge.callback import callback_for, failure, invalid_output
from bridge.config import BridgeConfig
from bridge.contract import (
    ERROR_INVALID_RESULT,
    ContractError,
    Result,
    mask_token,
    parse_result,
    read_token,
)
from bridge.quarantine import quarantine

SERVICE = "callback-bridge"
logger = Logger(service=SERVICE)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "CallbackBridge"), service=SERVICE
)

#: Error codes that mean "slow down" (botocore's standard retry mode list, plus KMS's).
THROTTLING_ERRORS = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "LimitExceededException",
        "KmsThrottlingException",
    }
)
#: Error codes a retry can fix although they are not throttling.
TRANSIENT_ERRORS = frozenset({"RequestTimeout", "RequestTimeoutException", "InternalFailure"})

#: Records handled at once; botocore clients are thread-safe.
DEFAULT_WORKERS = 8
#: The Lambda's clients: no botocore retries (ours know the deadline), short reads.
#: botocore's ``max_attempts`` counts retries, so 0 means one attempt per call.
LAMBDA_BOTOCORE_RETRIES = 0
LAMBDA_READ_TIMEOUT_S = 5.0
#: Budget when called without a Lambda context (a script, a test).
NO_CONTEXT_BUDGET_S = 60.0

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded, deadline-aware retries: exponential backoff with full jitter."""

    max_attempts: int = 6
    base_delay_s: float = 0.1
    max_delay_s: float = 2.0
    #: Kept back at the end of the invocation to answer SQS and flush metrics.
    safety_margin_s: float = 1.0
    #: No attempt starts with less time than this before the deadline.
    min_attempt_s: float = 0.2

    def delay(self, retry: int, rng: random.Random) -> float:
        """Pause before retry number ``retry`` (1-based)."""
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2 ** (retry - 1)))


class Transient(Exception):
    """A call failed for a reason a later delivery can fix (retries or time ran out)."""


@dataclass
class Tally:
    """Metrics gathered from the record threads, published by the invocation's thread
    (powertools' metric set is not thread-safe)."""

    counts: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, value: int = 1) -> None:
        with self.lock:
            self.counts[name] += value

    def latency(self, ms: float) -> None:
        with self.lock:
            self.latencies_ms.append(ms)

    def publish(self) -> None:
        if _metrics_disabled():
            return  # powertools would keep them in memory, unflushed, for the process's life
        with self.lock:
            counts, latencies = dict(self.counts), list(self.latencies_ms)
        for name, value in sorted(counts.items()):
            if value:
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        for ms in latencies:
            metrics.add_metric(name="EndToEndLatency", unit=MetricUnit.Milliseconds, value=ms)


def _metrics_disabled() -> bool:
    """powertools' switch (the embedded stack sets it: EMF means nothing locally)."""
    value = os.environ.get("POWERTOOLS_METRICS_DISABLED", "false")
    return value.strip().lower() in {"1", "true", "yes", "on", "y"}


def retry_kind(exc: BaseException) -> str | None:
    """``"throttled"``, ``"transient"`` (5xx, network) or ``None`` (retrying cannot help)."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in THROTTLING_ERRORS or status == 429:
            return "throttled"
        if status >= 500 or code in TRANSIENT_ERRORS:
            return "transient"
        return None
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return "transient"
    return None


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class Completion:
    """Turns result records into Step Functions callbacks. Clients are passed in; ``clock``,
    ``sleep`` and ``rng`` too, so tests can drive the retry timing."""

    def __init__(
        self,
        sfn: Any,
        sqs: Any,
        results_dlq_url: str | None,
        *,
        workers: int = DEFAULT_WORKERS,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.sfn = sfn
        self.sqs = sqs
        self.results_dlq_url = results_dlq_url
        self.workers = max(1, workers)
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()

    # -- the invocation -------------------------------------------------------------------

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Handle every record of ``event``; returns the partial batch response."""
        records: list[dict[str, Any]] = event.get("Records") or []
        deadline = self._deadline(context)
        tally = Tally()
        failures: list[str] = []
        if records:
            pool = ThreadPoolExecutor(
                max_workers=min(self.workers, len(records)), thread_name_prefix="completion"
            )
            try:
                futures = [pool.submit(self._settle, r, deadline, tally) for r in records]
                wait(futures, timeout=max(0.0, deadline - self.clock()))
            finally:
                # Threads still running stop at their next call (they check the deadline).
                pool.shutdown(wait=False, cancel_futures=True)
            for record, future in zip(records, futures, strict=True):
                if not future.done() or future.cancelled():
                    logger.warning(
                        "record not finished before the deadline; SQS will retry it",
                        extra={"message_id": record["messageId"]},
                    )
                    tally.add("DeadlineExceeded")
                    failures.append(record["messageId"])
                elif not future.result():
                    failures.append(record["messageId"])
        tally.add("ResultsRetried", len(failures))
        tally.publish()
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failures]}

    def _deadline(self, context: Any) -> float:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        budget_s = remaining() / 1000 if callable(remaining) else NO_CONTEXT_BUDGET_S
        return self.clock() + max(0.0, budget_s - self.retry.safety_margin_s)

    def _settle(self, record: dict[str, Any], deadline: float, tally: Tally) -> bool:
        """True when the record is done with (acknowledged); False sends it back to SQS."""
        try:
            self.record(record, deadline, tally)
            return True
        except Transient as exc:
            logger.warning(
                "callback failed, SQS will retry the result",
                extra={"message_id": record.get("messageId"), "reason": str(exc)},
            )
        except Exception as exc:  # never lose a record to a bug or an unexpected answer
            logger.exception(
                "result not handled, SQS will retry it",
                extra={"message_id": record.get("messageId"), "error": type(exc).__name__},
            )
        return False

    # -- one record -----------------------------------------------------------------------

    def record(self, record: dict[str, Any], deadline: float, tally: Tally) -> None:
        """Handle one SQS record; raises when SQS should deliver it again."""
        try:
            result = parse_result(record.get("body") or "")
        except ContractError as exc:
            self._malformed(record, exc, deadline, tally)
            return
        log = {
            "message_id": record.get("messageId"),
            "job_id": result.job_id,
            "execution_arn": result.execution_arn,
            "token": mask_token(result.token),
            "outcome": result.outcome,
        }
        try:
            metric = self._callback(result, deadline, tally)
        except ClientError as exc:
            if error_code(exc) not in TASK_CLOSED_ERRORS:
                raise
            logger.warning(
                "task already closed; result acknowledged", extra={**log, "error": error_code(exc)}
            )
            tally.add("StaleResults")
            return
        tally.add(metric)
        if not metric.startswith("Jobs"):  # the bridge failed the task: the consumer's output
            logger.warning("task failed by the bridge", extra={**log, "metric": metric})
            return
        logger.info("task completed", extra={**log, "metric": metric})
        if result.timing and result.timing.enqueued_at:
            latency = datetime.now(UTC) - result.timing.enqueued_at
            tally.latency(latency.total_seconds() * 1000)

    def _callback(self, result: Result, deadline: float, tally: Tally) -> str:
        """Send the callback; returns the metric naming how the task ended."""
        callback = callback_for(result)
        try:
            self._retrying(lambda: callback.send(self.sfn), deadline, tally)
        except ClientError as exc:
            if error_code(exc) != "InvalidOutput" or callback.operation != "send_task_success":
                raise
            message = exc.response.get("Error", {}).get("Message", "")
            callback = invalid_output(result, message)
            self._retrying(lambda: callback.send(self.sfn), deadline, tally)
        return callback.metric

    def _fail(self, token: str, error: str, cause: str, deadline: float, tally: Tally) -> None:
        callback = failure(token, error, cause)
        self._retrying(lambda: callback.send(self.sfn), deadline, tally)

    def _malformed(
        self, record: dict[str, Any], exc: ContractError, deadline: float, tally: Tally
    ) -> None:
        """Fail the task if the token is readable, keep a copy in the DLQ either way."""
        message_id, body = str(record.get("messageId")), record.get("body") or ""
        token = read_token(body)
        logger.error(
            "malformed result",
            extra={
                "message_id": message_id,
                "field": exc.field,
                "problem": exc.problem,
                "token": mask_token(token),
            },
        )
        tally.add("MalformedResults")
        task = "no readable token: the task waits for its timeout"
        if token:
            job = read_token(body, "job_id") or "?"
            cause = f"result message {message_id} for job {job} breaks the contract: {exc}"
            try:
                self._fail(token, ERROR_INVALID_RESULT, cause, deadline, tally)
                tally.add("InvalidResults")
                task = f"task failed with {ERROR_INVALID_RESULT}"
            except ClientError as closed:
                if error_code(closed) not in TASK_CLOSED_ERRORS:
                    raise
                task = f"task already closed ({error_code(closed)})"
        if not self.results_dlq_url:
            # Without a DLQ URL the queue's redrive policy moves it after maxReceiveCount.
            raise Transient(f"malformed result, no results DLQ configured ({task})")
        dlq_url = self.results_dlq_url
        reason = f"malformed result: {exc}; {task}"
        self._retrying(
            lambda: quarantine(self.sqs, dlq_url, message_id, body, reason), deadline, tally
        )

    def _retrying(self, call: Callable[[], T], deadline: float, tally: Tally) -> T:
        """``call()`` retried on throttling, 5xx and network errors while time is left."""
        attempt = 1
        while True:
            if self.clock() + self.retry.min_attempt_s > deadline:
                raise Transient("no time left in this invocation")
            try:
                return call()
            except Exception as exc:
                kind = retry_kind(exc)
                if kind is None:
                    raise
                tally.add("ThrottledCallbacks" if kind == "throttled" else "TransientErrors")
                what = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
                if attempt >= self.retry.max_attempts:
                    raise Transient(f"{what} after {attempt} attempts") from exc
                pause = self.retry.delay(attempt, self.rng)
                if self.clock() + pause + self.retry.min_attempt_s > deadline:
                    raise Transient(f"{what}; no time left to retry") from exc
                tally.add("CallbackRetries")
                self.sleep(pause)
            attempt += 1


def make_handler(completion: Completion) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Wrap ``completion`` with powertools' Lambda context logging and metric flushing
    (no flushing where metrics are off, as on the embedded stack)."""

    @logger.inject_lambda_context
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return completion.handle(event, context)

    return handle if _metrics_disabled() else metrics.log_metrics(handle)


def build_lambda_clients(config: BridgeConfig, pool_size: int = DEFAULT_WORKERS + 2) -> Clients:
    """The function's clients: botocore retries off (the handler retries within its deadline),
    short reads, a connection per worker (more where invocations share them, as locally)."""
    return build_clients(
        config,
        pool_size=pool_size,
        max_attempts=LAMBDA_BOTOCORE_RETRIES,
        read_timeout_s=LAMBDA_READ_TIMEOUT_S,
        autoscaling=False,
    )


@functools.cache
def _lambda_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    # Configuration is read on the first invocation, so the module imports without it.
    from bridge.config import load_config

    config = load_config()
    clients = build_lambda_clients(config)
    return make_handler(Completion(clients.sfn, clients.sqs, config.results_dlq_url))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda entry point (``bridge.completion.handler``)."""
    return _lambda_handler()(event, context)
