"""The completion Lambda: results queue → SendTaskSuccess / SendTaskFailure.

Triggered by an SQS event source mapping with ``ReportBatchItemFailures``: a record that fails
for a transient reason (throttling that outlasted botocore's retries, a network error) is
reported back and retried by SQS, and after ``maxReceiveCount`` lands in the results DLQ. A
record that can never succeed is not retried:

* malformed result (not JSON, wrong version, no token): logged with the message id and field,
  copied to the results DLQ with the reason, acknowledged;
* token Step Functions no longer knows (``TaskTimedOut``, ``InvalidToken``,
  ``TaskDoesNotExist``): the task already ended (timeout, stop, duplicate delivery); logged
  and acknowledged.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from bridge.aws import TASK_CLOSED_ERRORS
from bridge.contract import (
    ERROR_OUTPUT_TOO_LARGE,
    MAX_OUTPUT_BYTES,
    ContractError,
    Result,
    mask_token,
    output_size,
    parse_result,
)
from bridge.quarantine import quarantine

SERVICE = "callback-bridge"
logger = Logger(service=SERVICE)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "CallbackBridge"), service=SERVICE
)


class Completion:
    """Turns result records into Step Functions callbacks. Clients are passed in."""

    def __init__(self, sfn: Any, sqs: Any, results_dlq_url: str | None) -> None:
        self.sfn = sfn
        self.sqs = sqs
        self.results_dlq_url = results_dlq_url

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        # All-failed batches are reported like partial ones: SQS retries exactly those records.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return process_partial_response(  # type: ignore[return-value]
            event=event, record_handler=self.record, processor=processor, context=context
        )

    def record(self, record: SQSRecord) -> None:
        try:
            result = parse_result(record.body)
        except ContractError as exc:
            self._reject(record, exc)
            return
        log = {
            "message_id": record.message_id,
            "job_id": result.job_id,
            "token": mask_token(result.token),
            "outcome": result.outcome,
        }
        try:
            self._callback(result)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in TASK_CLOSED_ERRORS:
                logger.warning("callback failed, will be retried", extra={**log, "error": code})
                raise
            logger.warning("task already closed; result dropped", extra={**log, "error": code})
            metrics.add_metric(name="StaleResults", unit=MetricUnit.Count, value=1)
            return
        logger.info("task completed", extra=log)
        metrics.add_metric(
            name=f"Jobs{result.outcome.capitalize()}", unit=MetricUnit.Count, value=1
        )
        if result.timing and result.timing.enqueued_at:
            latency = datetime.now(UTC) - result.timing.enqueued_at
            metrics.add_metric(
                name="EndToEndLatency",
                unit=MetricUnit.Milliseconds,
                value=latency.total_seconds() * 1000,
            )

    def _callback(self, result: Result) -> None:
        if result.outcome == "succeeded":
            size = output_size(result.output)
            if size <= MAX_OUTPUT_BYTES:
                self.sfn.send_task_success(taskToken=result.token, output=result.output_json())
                return
            error, cause = (
                ERROR_OUTPUT_TOO_LARGE,
                f"output is {size} bytes, limit {MAX_OUTPUT_BYTES}",
            )
        else:
            error, cause = result.error or "", result.cause or ""
        self.sfn.send_task_failure(taskToken=result.token, error=error, cause=cause)

    def _reject(self, record: SQSRecord, exc: ContractError) -> None:
        logger.error(
            "malformed result",
            extra={"message_id": record.message_id, "field": exc.field, "problem": exc.problem},
        )
        metrics.add_metric(name="MalformedResults", unit=MetricUnit.Count, value=1)
        if not self.results_dlq_url:
            # Without a DLQ URL the queue's redrive policy moves it after maxReceiveCount.
            raise exc
        quarantine(
            self.sqs,
            self.results_dlq_url,
            record.message_id,
            record.body,
            f"malformed result: {exc}",
        )


def make_handler(completion: Completion) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Wrap ``completion`` with powertools' Lambda context logging and metric flushing."""

    @metrics.log_metrics
    @logger.inject_lambda_context
    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return completion.handle(event, context)

    return handle


@functools.cache
def _lambda_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    # Imported here so the module stays importable without configuration (tests, local stack).
    from bridge.aws import build_clients
    from bridge.config import load_config

    config = load_config()
    clients = build_clients(config)
    return make_handler(Completion(clients.sfn, clients.sqs, config.results_dlq_url))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda entry point (``bridge.completion.handler``)."""
    return _lambda_handler()(event, context)
