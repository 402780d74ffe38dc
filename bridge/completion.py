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

Records are handled the way both Lambdas handle them (:mod:`bridge.lambda_batch`): powertools'
batch utility builds the partial batch response, records run concurrently on a small pool so one
slow record cannot hold up the rest, and whatever is unfinished at the deadline (the
invocation's remaining time minus a safety margin) is reported back, never deleted unprocessed.
Calls are retried within that deadline (:mod:`bridge.retrying`); the function's clients make one
attempt each (:func:`bridge.aws.build_lambda_clients`).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from bridge import redaction
from bridge.aws import Clients
from bridge.aws import build_lambda_clients as build_clients_for_lambda
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
from bridge.errors import error_code, is_task_closed
from bridge.lambda_batch import (
    DEFAULT_WORKERS,
    SERVICE,
    BatchRunner,
    Handler,
    Tally,
    enabled,
    lambda_entry,
    lambda_logger,
    lambda_metrics,
    publish,
)
from bridge.quarantine import quarantine
from bridge.retrying import Retrier, RetryPolicy, Transient

logger = lambda_logger()
metrics = lambda_metrics(SERVICE)


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
        self.runner = BatchRunner(
            logger, "result", workers, retry or RetryPolicy(), clock, sleep, rng or random.Random()
        )

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Handle every record of ``event``; returns the partial batch response."""
        response, tally = self.runner.run(event, context, self.record)
        tally.add("ResultsRetried", len(response["batchItemFailures"]))
        publish(enabled(metrics), tally)
        return response

    # -- one record -----------------------------------------------------------------------

    def record(self, record: dict[str, Any], retry: Retrier, tally: Tally) -> None:
        """Handle one SQS record; raises when SQS should deliver it again."""
        try:
            result = parse_result(record.get("body") or "")
        except ContractError as exc:
            self._malformed(record, exc, retry, tally)
            return
        redaction.register(result.token)  # masked wherever an error message repeats it
        log = {
            "message_id": record.get("messageId"),
            "job_id": result.job_id,
            "execution_arn": result.execution_arn,
            "token": mask_token(result.token),
            "outcome": result.outcome,
        }
        try:
            metric = self._callback(result, retry)
        except ClientError as exc:
            if not is_task_closed(exc):
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
            tally.latencies_ms.append(latency.total_seconds() * 1000)

    def _callback(self, result: Result, retry: Retrier) -> str:
        """Send the callback; returns the metric naming how the task ended."""
        callback = callback_for(result)
        try:
            retry(lambda: callback.send(self.sfn))
        except ClientError as exc:
            if error_code(exc) != "InvalidOutput" or callback.operation != "send_task_success":
                raise
            message = exc.response.get("Error", {}).get("Message", "")
            callback = invalid_output(result, message)
            retry(lambda: callback.send(self.sfn))
        return callback.metric

    def _malformed(
        self, record: dict[str, Any], exc: ContractError, retry: Retrier, tally: Tally
    ) -> None:
        """Fail the task if the token is readable, keep a copy in the DLQ either way."""
        message_id, body = str(record.get("messageId")), record.get("body") or ""
        token = read_token(body)
        redaction.register(token)
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
            task = self._fail_malformed(token, message_id, body, exc, retry, tally)
        if not self.results_dlq_url:
            # Without a DLQ URL the queue's redrive policy moves it after maxReceiveCount.
            raise Transient(f"malformed result, no results DLQ configured ({task})")
        dlq_url = self.results_dlq_url
        reason = f"malformed result: {exc}; {task}"
        retry(lambda: quarantine(self.sqs, dlq_url, message_id, body, reason))

    def _fail_malformed(
        self,
        token: str,
        message_id: str,
        body: str,
        exc: ContractError,
        retry: Retrier,
        tally: Tally,
    ) -> str:
        """Fail the task of a malformed result; returns what happened, for the DLQ's reason."""
        job = read_token(body, "job_id") or "?"
        cause = f"result message {message_id} for job {job} breaks the contract: {exc}"
        callback = failure(token, ERROR_INVALID_RESULT, cause)
        try:
            retry(lambda: callback.send(self.sfn))
        except ClientError as closed:
            if not is_task_closed(closed):
                raise
            return f"task already closed ({error_code(closed)})"
        tally.add("InvalidResults")
        return f"task failed with {ERROR_INVALID_RESULT}"


def make_handler(completion: Completion) -> Handler:
    """``completion`` as a Lambda handler (powertools' context logging, metric flushing)."""
    return lambda_entry(completion.handle, logger, metrics)


def build_lambda_clients(config: BridgeConfig, pool_size: int = DEFAULT_WORKERS + 2) -> Clients:
    """The function's clients (:func:`bridge.aws.build_lambda_clients`), a connection per
    record thread."""
    return build_clients_for_lambda(config, pool_size=pool_size)


@functools.cache
def _lambda_handler() -> Handler:
    # Configuration is read on the first invocation, so the module imports without it.
    from bridge.config import load_config

    config = load_config()
    redaction.install()  # the runtime's own handler, which powertools' batch logger reaches
    clients = build_lambda_clients(config)
    return make_handler(Completion(clients.sfn, clients.sqs, config.results_dlq_url))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda entry point (``bridge.completion.handler``)."""
    return _lambda_handler()(event, context)
