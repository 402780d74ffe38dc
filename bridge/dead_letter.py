"""The dead-letter handler: a message in a DLQ tells its execution, then waits in an archive.

Why: a job moved to the jobs DLQ used to leave its task waiting until ``HeartbeatSeconds`` ran
out (``States.Timeout``, empty cause: indistinguishable from a slow worker). This handler ends
the task at once with ``Bridge.DeadLettered`` and a cause that names the job, the receive count,
the source queue and the reason; a result in the results DLQ is still delivered when it can be.

Why an archive: an event source mapping deletes every record its invocation acknowledges, so a
handler that consumed the DLQ would destroy what operators need to inspect. Instead, per side
(jobs, results):

* ``<prefix>-jobs-dlq`` stays the redrive target of the source queue (names unchanged);
* this handler consumes it (a Lambda event source mapping on AWS, a
  :class:`~bridge.local_stack.event_source.LocalEventSourceMapping` on the embedded stack),
  tells the execution, then copies the message (body byte for byte, enriched attributes) to
  ``<prefix>-jobs-dead-letters``, the **archive** (14-day retention), and only then acknowledges
  the original. A crash in between leaves a duplicate, never a loss;
* the DLQ has its own ``RedrivePolicy`` to the archive, so a message the handler keeps failing on
  (throttling, an outage) still ends in the archive, bare. SQS keeps a message's receive count
  when it dead-letters it (moto does; see :func:`dlq_max_receive_count`), so the DLQ's
  ``maxReceiveCount`` is the source's plus :data:`HANDLER_ATTEMPTS`;
* because the archive is a DLQ of the DLQ, ``StartMessageMoveTask`` accepts it as a source:
  ``dlq redrive`` moves archived messages back with an explicit destination (the source queue).

A sweep (peek the DLQ, leave it in place) was rejected: it needs a scheduler, state to remember
which letters it already told, and it races operators' own peeks that raise receive counts. With
handling switched off (teams that redrive instead) nothing consumes the DLQ, it has no redrive
policy of its own, and operators inspect it directly.

What the handler does with one record:

* job (or unparseable result) with a readable token: ``SendTaskFailure`` ``Bridge.DeadLettered``;
* valid result: delivered as the completion handler would (its own success or failure); if Step
  Functions refuses the output (``InvalidOutput``), ``Bridge.DeadLettered`` instead;
* stale token (``TaskTimedOut``, ``InvalidToken``, ``TaskDoesNotExist``): fine, the task ended;
* no readable token: nothing to tell;
* throttling, 5xx, network errors: retried within the invocation's remaining time
  (:mod:`bridge.retrying`), then, like an archive that refuses the copy, a batch item failure, so
  SQS redelivers it (and after :data:`HANDLER_ATTEMPTS` the DLQ's redrive archives it bare).

The archived copy carries what it needs to explain itself (:data:`ENRICHED_ATTRIBUTES`), including
``bridge-task-told``: ``failed``, ``delivered``, ``already-closed`` or ``no-token``.

The function has the completion function's shape (:mod:`bridge.lambda_batch`): powertools' batch
utility for the partial batch response, records on a small pool within the invocation's
deadline, powertools Logger (tokens masked) and Metrics, clients that make one attempt and leave
retrying to the deadline-aware :class:`~bridge.retrying.Retrier`. Its entry point is
``bridge.dead_letter.handler``; ``lambda_handler`` is the same function under its first name.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from bridge import redaction
from bridge.callback import callback_for
from bridge.contract import (
    ERROR_DEAD_LETTERED,
    MAX_CAUSE_CHARS,
    ContractError,
    Result,
    clip,
    mask_token,
    parse_result,
)
from bridge.dead_letter_record import DLQ_SUFFIX, DeadLetter, queue_name
from bridge.errors import describe, error_code, is_task_closed
from bridge.lambda_batch import (
    BatchRunner,
    Handler,
    Tally,
    enabled,
    lambda_entry,
    lambda_logger,
    lambda_metrics,
    publish,
)
from bridge.quarantine import (
    MAX_REASON_CHARS,
    REASON_ATTRIBUTE,
    SOURCE_ATTRIBUTE,
    string_attribute,
)
from bridge.retrying import Retrier

logger = lambda_logger()

#: How many times the handler may fail one record before the DLQ's own redrive archives it.
HANDLER_ATTEMPTS = 3
#: The archive's name is the DLQ's with this suffix instead of ``-dlq``.
ARCHIVE_SUFFIX = "-dead-letters"
ARCHIVE_RETENTION_S = 14 * 24 * 3600

JOB_ID_ATTRIBUTE = "bridge-job-id"
EXECUTION_ATTRIBUTE = "bridge-execution-arn"
RECEIVE_COUNT_ATTRIBUTE = "bridge-receive-count"
SOURCE_QUEUE_ATTRIBUTE = "bridge-source-queue"
DEAD_LETTERED_AT_ATTRIBUTE = "bridge-dead-lettered-at"
TASK_TOLD_ATTRIBUTE = "bridge-task-told"
#: Every attribute an archived copy gets from the handler (SQS allows 10 per message: the
#: record's other attributes fill the remaining slots, in their original order).
ENRICHED_ATTRIBUTES = (
    REASON_ATTRIBUTE,
    SOURCE_ATTRIBUTE,
    JOB_ID_ATTRIBUTE,
    EXECUTION_ATTRIBUTE,
    RECEIVE_COUNT_ATTRIBUTE,
    SOURCE_QUEUE_ATTRIBUTE,
    DEAD_LETTERED_AT_ATTRIBUTE,
    TASK_TOLD_ATTRIBUTE,
)
MAX_MESSAGE_ATTRIBUTES = 10

#: Values of ``bridge-task-told``.
TOLD_FAILED = "failed"
TOLD_DELIVERED = "delivered"
TOLD_ALREADY_CLOSED = "already-closed"
TOLD_NO_TOKEN = "no-token"
#: The metric counting each way a dead letter ends (EMF, namespace CallbackBridge).
METRIC_OF_TOLD = {
    TOLD_FAILED: "DeadLettersFailed",
    TOLD_DELIVERED: "DeadLettersDelivered",
    TOLD_ALREADY_CLOSED: "DeadLettersAlreadyClosed",
    TOLD_NO_TOKEN: "DeadLettersWithoutToken",
}

Clock = Callable[[], datetime]


def archive_name(dlq_name: str) -> str:
    """``<prefix>-jobs-dlq`` -> ``<prefix>-jobs-dead-letters`` (Terraform uses the same rule)."""
    return dlq_name.removesuffix(DLQ_SUFFIX) + ARCHIVE_SUFFIX


def dlq_max_receive_count(source_max_receive_count: int) -> int:
    """The DLQ's ``maxReceiveCount`` towards the archive.

    A message keeps its receive count when SQS moves it to a DLQ (moto 5.2.5 verifiably does;
    AWS documents only that the enqueue time is kept), so a DLQ limit below the source's would
    archive a dead letter before the handler ever saw it. Adding the handler's attempts to the
    source's limit gives the handler at least :data:`HANDLER_ATTEMPTS` tries either way."""
    return source_max_receive_count + HANDLER_ATTEMPTS


class DeadLetterHandler:
    """Tells executions about dead letters and archives them. Clients are passed in.

    ``archive_url_by_source`` maps each DLQ this handler consumes (its URL or ARN: only the queue
    name is compared) to the URL of that DLQ's archive."""

    def __init__(
        self,
        sfn: Any,
        sqs: Any,
        archive_url_by_source: Mapping[str, str],
        clock: Clock = lambda: datetime.now(UTC),
        metrics: Any = None,
        runner: BatchRunner | None = None,
    ) -> None:
        if not archive_url_by_source:
            raise ValueError("a dead-letter handler needs at least one DLQ -> archive mapping")
        self.sfn = sfn
        self.sqs = sqs
        self.archives = {queue_name(dlq): url for dlq, url in archive_url_by_source.items()}
        self.clock = clock
        #: powertools Metrics on Lambda (None: not published, as on the embedded stack).
        self.metrics = metrics
        #: Records run as the completion handler's do (pool, deadline, retries).
        self.runner = runner or BatchRunner(logger, "dead letter")
        self._limits: dict[str, int | None] = {}

    def handle(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """An SQS event in, ``{"batchItemFailures": [...]}`` out (``ReportBatchItemFailures``)."""
        response, tally = self.runner.run(dict(event), context, self._settle)
        tally.add("DeadLetterRetries", len(response["batchItemFailures"]))
        publish(self.metrics, tally)
        return response

    def _settle(self, record: dict[str, Any], retry: Retrier, tally: Tally) -> None:
        tally.add(METRIC_OF_TOLD.get(self.record(record, retry), "DeadLetters"))

    def record(self, record: Mapping[str, Any], retry: Callable[[Callable[[], Any]], Any]) -> str:
        """Handle one record; returns what the task was told. Raises to have it retried.
        ``retry(call)`` makes each AWS call (a :class:`~bridge.retrying.Retrier`)."""
        letter = DeadLetter.from_record(record)
        redaction.register(letter.token)
        archive_url = self.archives.get(queue_name(letter.dlq_arn))
        if archive_url is None:  # checked before telling anyone: misconfiguration, not data
            raise LookupError(f"no archive configured for DLQ {letter.dlq_arn or '<unknown>'}")
        reason = letter.recorded_reason() or self.derived_reason(letter)
        told = self.tell(letter, reason, retry)
        retry(lambda: self.archive(archive_url, letter, reason, told))
        logger.info(
            "dead letter archived",
            extra={
                "message_id": letter.message_id,
                "job_id": letter.job_id,
                "token": mask_token(letter.token),
                "told": told,
                "reason": reason,
            },
        )
        return told

    def derived_reason(self, letter: DeadLetter) -> str:
        """No recorded reason: the source queue's redrive policy moved it."""
        limit = self._max_receive_count(letter.source_arn) if letter.source_arn else None
        count = f" {limit}" if limit is not None else ""
        return f"exceeded maxReceiveCount{count} on {letter.source_queue}"

    def _max_receive_count(self, source_arn: str) -> int | None:
        """The source queue's ``maxReceiveCount`` (cached per queue); ``None`` when it cannot be
        read: the reason then omits the number rather than failing the record."""
        if source_arn not in self._limits:
            self._limits[source_arn] = self._read_max_receive_count(source_arn)
        return self._limits[source_arn]

    def _read_max_receive_count(self, source_arn: str) -> int | None:
        parts = source_arn.split(":")
        if len(parts) != 6:
            return None
        try:
            url = self.sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
            policy = self.sqs.get_queue_attributes(
                QueueUrl=url["QueueUrl"], AttributeNames=["RedrivePolicy"]
            )["Attributes"]["RedrivePolicy"]
            return int(json.loads(policy)["maxReceiveCount"])
        except Exception as exc:  # best effort: an explanation, not a decision
            logger.info(
                "maxReceiveCount unknown", extra={"source_arn": source_arn, "error": describe(exc)}
            )
            return None

    def cause(self, letter: DeadLetter, reason: str, detail: str = "") -> str:
        """The task's failure cause. It names ids that find the archived letter: the job id
        and the message id first logged for it (the archived copy's own id does not exist
        yet: the task is told before the copy is made)."""
        lookup = letter.job_id or letter.source_message_id
        text = (
            f"job {letter.job_id or '<unknown job id>'} was dead-lettered: {reason}; "
            f"receive count {letter.receive_count}; source queue {letter.source_queue}; "
            f"message {letter.source_message_id} is kept in "
            f"{archive_name(queue_name(letter.dlq_arn))}: callback-bridge dlq show {lookup}"
        )
        return clip(text + (f"; {detail}" if detail else ""), MAX_CAUSE_CHARS)

    def tell(
        self, letter: DeadLetter, reason: str, retry: Callable[[Callable[[], Any]], Any]
    ) -> str:
        """End the letter's task; returns one of the ``TOLD_*`` values."""
        if letter.token is None:
            return TOLD_NO_TOKEN
        try:
            result = parse_result(letter.body)
        except ContractError:
            result = None
        detail = ""
        try:
            if result is not None:
                try:
                    retry(lambda: self._deliver(result))
                    return TOLD_DELIVERED
                except ClientError as exc:
                    if error_code(exc) != "InvalidOutput":
                        raise
                    detail = f"its result could not be delivered: {describe(exc)}"
            token, cause = letter.token, self.cause(letter, reason, detail)
            retry(
                lambda: self.sfn.send_task_failure(
                    taskToken=token, error=ERROR_DEAD_LETTERED, cause=cause
                )
            )
            return TOLD_FAILED
        except ClientError as exc:
            if is_task_closed(exc):
                return TOLD_ALREADY_CLOSED
            raise

    def _deliver(self, result: Result) -> None:
        """The result's own callback, as the completion handler makes it."""
        callback_for(result).send(self.sfn)

    def archive(self, archive_url: str, letter: DeadLetter, reason: str, told: str) -> None:
        """Copy the letter to its archive: the body unchanged, the attributes enriched."""
        ours = {
            REASON_ATTRIBUTE: reason[:MAX_REASON_CHARS] or "unspecified",
            SOURCE_ATTRIBUTE: letter.source_message_id,
            JOB_ID_ATTRIBUTE: letter.job_id,
            EXECUTION_ATTRIBUTE: letter.execution_arn,
            RECEIVE_COUNT_ATTRIBUTE: str(letter.receive_count),
            SOURCE_QUEUE_ATTRIBUTE: letter.source_queue,
            DEAD_LETTERED_AT_ATTRIBUTE: self.clock().isoformat(timespec="milliseconds"),
            TASK_TOLD_ATTRIBUTE: told,
        }
        enriched = {name: string_attribute(value) for name, value in ours.items() if value}
        others = [(k, v) for k, v in letter.attributes.items() if k not in ENRICHED_ATTRIBUTES]
        kept = dict(others[: MAX_MESSAGE_ATTRIBUTES - len(enriched)])
        self.sqs.send_message(
            QueueUrl=archive_url, MessageBody=letter.body, MessageAttributes={**kept, **enriched}
        )


def archive_routes(config: Any) -> dict[str, str]:
    """DLQ URL -> archive URL for every side ``config`` (a :class:`~bridge.config.BridgeConfig`)
    configures both for; raises :class:`~bridge.config.ConfigError` naming the variables when it
    configures none."""
    from bridge.config import ConfigError

    pairs = (
        (config.jobs_dlq_url, config.jobs_archive_url),
        (config.results_dlq_url, config.results_archive_url),
    )
    routes = {dlq: archive for dlq, archive in pairs if dlq and archive}
    if not routes:
        raise ConfigError(
            "the dead-letter handler needs BRIDGE_JOBS_DLQ_URL with BRIDGE_JOBS_ARCHIVE_URL "
            "and/or BRIDGE_RESULTS_DLQ_URL with BRIDGE_RESULTS_ARCHIVE_URL"
        )
    return routes


@functools.cache
def _from_environment() -> Handler:
    # Imported here so the module stays importable without configuration (tests, local stack).
    from bridge.aws import build_lambda_clients
    from bridge.config import load_config

    config = load_config()
    redaction.install()  # the runtime's own handler, which powertools' batch logger reaches
    clients = build_lambda_clients(config)
    # The service dimension the dead-letter alarms read (alarms module: dead_letter_service_name).
    # Built here, not at import: powertools' metric set is per process, shared with completion's.
    metrics = lambda_metrics(service="callback-bridge-dead-letters")
    dead_letters = DeadLetterHandler(
        clients.sfn, clients.sqs, archive_routes(config), metrics=enabled(metrics)
    )

    return lambda_entry(dead_letters.handle, logger, metrics)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """AWS Lambda entry point (``bridge.dead_letter.handler``), configured by the
    environment: ``BRIDGE_JOBS_DLQ_URL``/``BRIDGE_JOBS_ARCHIVE_URL`` and/or
    ``BRIDGE_RESULTS_DLQ_URL``/``BRIDGE_RESULTS_ARCHIVE_URL``."""
    return _from_environment()(event, context)


#: The entry point's first name: deployed functions and users' Terraform still reference it.
lambda_handler = handler
