"""Create the bridge's resources on the embedded stack, mirroring ``infra/modules``.

Names, redrive settings and state machine parameters come from :class:`StackSettings`; the state
machine definition comes from the shared template via :mod:`bridge.state_machine`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bridge.aws import Clients
from bridge.state_machine import StateMachineParams, render_definition

#: moto accepts any role; AWS needs the one Terraform's state_machine module creates.
LOCAL_ROLE_ARN = "arn:aws:iam::123456789012:role/callback-bridge-local"
DLQ_RETENTION_S = 14 * 24 * 3600


@dataclass(frozen=True)
class StackSettings:
    """Everything that shapes the embedded stack's resources."""

    prefix: str = "callback-bridge"
    jobs_visibility_timeout_s: int = 60
    results_visibility_timeout_s: int = 30
    jobs_max_receive_count: int = 5
    results_max_receive_count: int = 5
    heartbeat_seconds: int = 300
    timeout_seconds: int = 3600
    retry_max_attempts: int = 2
    retry_interval_seconds: int = 1
    max_concurrency: int = 0
    map_mode: str = "INLINE"

    def state_machine_params(self, jobs_queue_url: str) -> StateMachineParams:
        return StateMachineParams(
            jobs_queue_url=jobs_queue_url,
            heartbeat_seconds=self.heartbeat_seconds,
            timeout_seconds=self.timeout_seconds,
            retry_interval_seconds=self.retry_interval_seconds,
            retry_max_attempts=self.retry_max_attempts,
            max_concurrency=self.max_concurrency,
            map_mode=self.map_mode,  # type: ignore[arg-type]
        )


def _queue_with_dlq(sqs: Any, name: str, visibility_s: int, max_receive: int) -> tuple[str, str]:
    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_s),
            "ReceiveMessageWaitTimeSeconds": "20",
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return url, dlq_url


def create_resources(clients: Clients, settings: StackSettings) -> dict[str, str]:
    """Queues, DLQs and the state machine; returns their URLs and ARN."""
    jobs_url, jobs_dlq_url = _queue_with_dlq(
        clients.sqs,
        f"{settings.prefix}-jobs",
        settings.jobs_visibility_timeout_s,
        settings.jobs_max_receive_count,
    )
    results_url, results_dlq_url = _queue_with_dlq(
        clients.sqs,
        f"{settings.prefix}-results",
        settings.results_visibility_timeout_s,
        settings.results_max_receive_count,
    )
    definition = render_definition(settings.state_machine_params(jobs_url))
    state_machine_arn = clients.sfn.create_state_machine(
        name=settings.prefix, definition=definition, roleArn=LOCAL_ROLE_ARN, type="STANDARD"
    )["stateMachineArn"]
    return {
        "jobs_queue_url": jobs_url,
        "results_queue_url": results_url,
        "jobs_dlq_url": jobs_dlq_url,
        "results_dlq_url": results_dlq_url,
        "state_machine_arn": state_machine_arn,
    }
