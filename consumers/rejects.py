"""A job message that can never run (:class:`~consumers.intake.Rejection`): fail its task now if
its token is readable, so the execution learns at once rather than at a timeout, and move the
message to the jobs DLQ with the reason. Without a DLQ URL the queue's redrive policy moves it
after maxReceiveCount receives."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bridge.contract import ERROR_INVALID_JOB, MAX_CAUSE_CHARS, clip
from bridge.errors import error_code
from bridge.quarantine import quarantine
from consumers.intake import Rejection

log = logging.getLogger(__name__)


def reject(
    sqs: Any,
    sfn: Any,
    message: dict[str, Any],
    rejection: Rejection,
    jobs_queue_url: str,
    jobs_dlq_url: str | None,
) -> None:
    log.error("malformed job message %s: %s", message["MessageId"], rejection)
    if rejection.token:
        fail_invalid_job(sfn, rejection.token, rejection)
    if not jobs_dlq_url:
        return
    try:
        quarantine(
            sqs,
            jobs_dlq_url,
            message["MessageId"],
            message["Body"],
            f"malformed job: {rejection}",
            attributes=message.get("MessageAttributes"),
        )
        sqs.delete_message(QueueUrl=jobs_queue_url, ReceiptHandle=message["ReceiptHandle"])
    except (BotoCoreError, ClientError):
        log.exception(
            "could not move message %s to the DLQ; the redrive policy will", message["MessageId"]
        )


def fail_invalid_job(sfn: Any, token: str, rejection: Rejection) -> None:
    try:
        sfn.send_task_failure(
            taskToken=token,
            error=ERROR_INVALID_JOB,
            cause=clip(f"the job message breaks the contract: {rejection}", MAX_CAUSE_CHARS),
        )
    except ClientError as exc:
        log.warning("could not fail the task of an invalid job (%s)", error_code(exc))
    except BotoCoreError:
        log.exception("could not fail the task of an invalid job")
