"""One picture of the bridge now (``callback-bridge status``): queue depths, the age of each
queue's oldest message, the running executions and their jobs, and the consumers.

The age of the oldest message is not a queue attribute: SQS publishes it only as the CloudWatch
metric ``ApproximateAgeOfOldestMessage`` (one-minute resolution, published with a delay). On
AWS it is read from CloudWatch when a CloudWatch client is given and permitted. Elsewhere (the
embedded stack has no SQS metrics) it is measured by peeking the oldest ``SentTimestamp``, but
only on queues without a redrive policy: a peek counts as a receive, and on a queue with a
``maxReceiveCount`` a status loop would push messages into its DLQ. Every age says where it
came from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from bridge.config import BridgeConfig
from bridge.errors import error_code
from bridge.ops.inspect.executions import ExecutionLens, JobCounts
from bridge.ops.inspect.peek import held
from bridge.ops.inspect.queues import SIDES, QueueRef, side_from_config

#: Label of each queue role in the output.
ROLE_LABEL = {"queue": "", "dlq": " DLQ", "archive": " archive"}
MAX_EXECUTIONS = 20
#: Status reads at most this many history events per execution (counts are then lower bounds).
MAX_HISTORY_EVENTS = 2000
PEEK_SAMPLE = 50


@dataclass
class QueueStatus:
    label: str
    name: str
    visible: int
    in_flight: int
    delayed: int
    oldest_age_s: float | None
    #: "cloudwatch" | "peek" | None (then ``age_note`` says why)
    age_source: str | None
    age_note: str = ""


@dataclass
class ExecutionStatus:
    name: str
    arn: str
    started: str
    jobs: JobCounts


@dataclass
class Status:
    taken_at: str
    queues: list[QueueStatus] = field(default_factory=list)
    executions: list[ExecutionStatus] | None = None
    executions_note: str = ""
    #: Consumer ids that reported, or None: unknown (nothing reports them).
    consumers: list[str] | None = None
    consumers_note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def configured_queues(config: BridgeConfig) -> list[QueueRef]:
    """Jobs, results, their DLQs and archives, in that order (what the configuration names)."""
    return [ref for side in SIDES for ref in side_from_config(config, side).queues()]  # type: ignore[arg-type]


def queue_status(
    sqs: Any, ref: QueueRef, cloudwatch: Any | None, now: Callable[[], float] = time.time
) -> QueueStatus:
    attributes = sqs.get_queue_attributes(
        QueueUrl=ref.url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
            "RedrivePolicy",
        ],
    )["Attributes"]
    status = QueueStatus(
        label=ref.side + ROLE_LABEL[ref.role],
        name=ref.name,
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        delayed=int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        oldest_age_s=None,
        age_source=None,
    )
    if cloudwatch is not None:
        _age_from_cloudwatch(cloudwatch, status, now)
    elif "RedrivePolicy" in attributes:
        status.age_note = "not peeked: a receive would count toward maxReceiveCount"
    elif status.visible == 0:
        status.age_source, status.age_note = "peek", "no visible message"
    else:
        _age_from_peek(sqs, ref.url, status, now)
    return status


def _age_from_cloudwatch(cloudwatch: Any, status: QueueStatus, now: Callable[[], float]) -> None:
    # A minute past now: the end is exclusive and the metric's timestamps are coarse.
    end = datetime.fromtimestamp(now(), UTC) + timedelta(minutes=1)
    try:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": status.name}],
            StartTime=end - timedelta(minutes=16),
            EndTime=end,
            Period=60,
            Statistics=["Maximum"],
        ).get("Datapoints", [])
    except ClientError as exc:
        status.age_note = f"CloudWatch: {error_code(exc, 'error')}"
        return
    status.age_source = "cloudwatch"
    if not points:
        status.age_note = "no datapoint in the last 15 min"
        return
    latest = max(points, key=lambda point: point["Timestamp"])
    status.oldest_age_s = float(latest["Maximum"])
    status.age_note = f"as of {latest['Timestamp']:%H:%M} UTC"


def _age_from_peek(sqs: Any, url: str, status: QueueStatus, now: Callable[[], float]) -> None:
    with held(sqs, url, limit=PEEK_SAMPLE, visibility_s=10, wait_s=0) as batch:
        stamps = [
            int(message["Attributes"]["SentTimestamp"])
            for message in batch.messages.values()
            if "SentTimestamp" in message.get("Attributes", {})
        ]
    status.age_source = "peek"
    if stamps:
        status.oldest_age_s = round(now() - min(stamps) / 1000, 1)
        if len(stamps) < status.visible:
            status.age_note = f"oldest of {len(stamps)} sampled"


def execution_statuses(
    sfn: Any, state_machine_arn: str, max_executions: int = MAX_EXECUTIONS
) -> tuple[list[ExecutionStatus], str]:
    """Running executions (newest first, at most ``max_executions``) with their job counts."""
    page = sfn.list_executions(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING", maxResults=max_executions
    )
    lens = ExecutionLens(sfn, max_events=MAX_HISTORY_EVENTS)
    executions = [
        ExecutionStatus(
            name=item["name"],
            arn=item["executionArn"],
            started=str(item.get("startDate", "")),
            jobs=lens.job_counts(item["executionArn"]),
        )
        for item in page.get("executions", [])
    ]
    note = f"first {max_executions} shown; more are running" if page.get("nextToken") else ""
    return executions, note


def collect(
    clients: Any,
    config: BridgeConfig,
    cloudwatch: Any | None = None,
    consumers: Callable[[], list[str]] | None = None,
    max_executions: int = MAX_EXECUTIONS,
    now: Callable[[], float] = time.time,
) -> Status:
    """The whole picture. ``cloudwatch``: a client to read queue ages from (AWS); ``consumers``:
    a source of live consumer ids, if the deployment has one."""
    status = Status(taken_at=datetime.fromtimestamp(now(), UTC).isoformat(timespec="seconds"))
    status.queues = [
        queue_status(clients.sqs, ref, cloudwatch, now) for ref in configured_queues(config)
    ]
    if config.state_machine_arn:
        status.executions, status.executions_note = execution_statuses(
            clients.sfn, config.state_machine_arn, max_executions
        )
    else:
        status.executions_note = "no state machine configured (state_machine_arn)"
    if consumers is None:
        status.consumers_note = "unknown: consumers do not report to a registry"
    else:
        status.consumers = consumers()
    return status
