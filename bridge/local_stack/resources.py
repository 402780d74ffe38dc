"""Create the bridge's resources on the embedded stack, mirroring ``infra/modules``.

Names, redrive settings and state machine parameters come from :class:`StackSettings`; the state
machine definition comes from the shared template via :mod:`bridge.state_machine`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bridge.aws import Clients
from bridge.contract import MAX_MESSAGE_BYTES
from bridge.dead_letter import ARCHIVE_RETENTION_S, archive_name, dlq_max_receive_count
from bridge.state_machine import StateMachineParams, render_definition
from bridge.timing import TimingModel

#: moto accepts any role; AWS needs the one Terraform's state_machine module creates.
LOCAL_ROLE_ARN = "arn:aws:iam::123456789012:role/callback-bridge-local"
DLQ_RETENTION_S = 14 * 24 * 3600
#: Every queue's ``MaximumMessageSize``, as infra/modules/queues sets it (moto's default is
#: 1 MiB, which would hide results too large for the deployed queues).
MAX_MESSAGE_SIZE = str(MAX_MESSAGE_BYTES)


@dataclass(frozen=True)
class StackSettings:
    """Everything that shapes the embedded stack's resources."""

    prefix: str = "callback-bridge"
    jobs_visibility_timeout_s: int = 60
    results_visibility_timeout_s: int = 30
    jobs_max_receive_count: int = 5
    results_max_receive_count: int = 5
    #: HeartbeatSeconds of the job task; None (default) leaves it out (see docs/timing.md).
    heartbeat_seconds: int | None = None
    timeout_seconds: int = 3600
    #: What the task timeouts are validated against (bridge.timing).
    max_queue_wait_s: int = 600
    job_timeout_s: int = 1800
    retry_max_attempts: int = 2
    retry_interval_seconds: int = 1
    max_concurrency: int = 0
    map_mode: str = "INLINE"
    #: "report" (failures are data) or "fail" (Bridge.JobsFailed beyond the tolerated ones);
    #: see bridge.state_machine.StateMachineParams.
    failure_policy: str = "report"
    tolerated_failure_count: int | None = None
    tolerated_failure_percentage: int | None = None
    #: A dead-letter handler per DLQ tells executions and archives (bridge.dead_letter); off,
    #: nothing consumes the DLQs (teams that redrive instead).
    dead_letter_handling: bool = True
    #: The consumers' Auto Scaling group (one instance, a termination lifecycle hook) and a
    #: loopback instance metadata service for that instance (bridge.local_stack.imds).
    instance_group: bool = True
    #: HeartbeatTimeout of the group's termination lifecycle hook ("<prefix>-drain").
    lifecycle_hook_timeout_s: int = 300

    def timing(self) -> TimingModel:
        """The stack's whole timing model (queues and state machine), for validation."""
        return TimingModel(
            visibility_timeout_s=self.jobs_visibility_timeout_s,
            task_heartbeat_s=self.heartbeat_seconds,
            task_timeout_s=self.timeout_seconds,
            max_queue_wait_s=self.max_queue_wait_s,
            job_timeout_s=self.job_timeout_s,
            max_receive_count=self.jobs_max_receive_count,
            lifecycle_hook_timeout_s=None,
        )

    def state_machine_params(self, jobs_queue_url: str) -> StateMachineParams:
        self.timing().validate()
        return StateMachineParams(
            jobs_queue_url=jobs_queue_url,
            heartbeat_seconds=self.heartbeat_seconds,
            timeout_seconds=self.timeout_seconds,
            max_queue_wait_seconds=self.max_queue_wait_s,
            job_timeout_seconds=self.job_timeout_s,
            retry_interval_seconds=self.retry_interval_seconds,
            retry_max_attempts=self.retry_max_attempts,
            max_concurrency=self.max_concurrency,
            map_mode=self.map_mode,  # type: ignore[arg-type]
            failure_policy=self.failure_policy,  # type: ignore[arg-type]
            tolerated_failure_count=self.tolerated_failure_count,
            tolerated_failure_percentage=self.tolerated_failure_percentage,
        )


def _queue_arn(sqs: Any, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def _queue_with_dlq(
    sqs: Any, name: str, visibility_s: int, max_receive: int, archive: bool
) -> tuple[str, str, str | None]:
    """The queue, its DLQ and, with ``archive``, the DLQ's own DLQ: the dead-letter archive."""
    dlq_attributes = {
        "MessageRetentionPeriod": str(DLQ_RETENTION_S),
        "MaximumMessageSize": MAX_MESSAGE_SIZE,
    }
    archive_url = None
    if archive:
        archive_url = sqs.create_queue(
            QueueName=archive_name(f"{name}-dlq"),
            Attributes={
                "MessageRetentionPeriod": str(ARCHIVE_RETENTION_S),
                "MaximumMessageSize": MAX_MESSAGE_SIZE,
            },
        )["QueueUrl"]
        to_archive = {
            "deadLetterTargetArn": _queue_arn(sqs, archive_url),
            "maxReceiveCount": dlq_max_receive_count(max_receive),
        }
        dlq_attributes["RedrivePolicy"] = json.dumps(to_archive)
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq", Attributes=dlq_attributes)["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive}
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_s),
            "ReceiveMessageWaitTimeSeconds": "20",
            "MaximumMessageSize": MAX_MESSAGE_SIZE,
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return url, dlq_url, archive_url


def create_resources(clients: Clients, settings: StackSettings) -> dict[str, str]:
    """Queues, DLQs, the state machine and (with an S3 client) the claim-check bucket;
    returns their URLs, ARN and bucket name."""
    jobs_url, jobs_dlq_url, jobs_archive_url = _queue_with_dlq(
        clients.sqs,
        f"{settings.prefix}-jobs",
        settings.jobs_visibility_timeout_s,
        settings.jobs_max_receive_count,
        settings.dead_letter_handling,
    )
    results_url, results_dlq_url, results_archive_url = _queue_with_dlq(
        clients.sqs,
        f"{settings.prefix}-results",
        settings.results_visibility_timeout_s,
        settings.results_max_receive_count,
        settings.dead_letter_handling,
    )
    definition = render_definition(settings.state_machine_params(jobs_url))
    state_machine_arn = clients.sfn.create_state_machine(
        name=settings.prefix, definition=definition, roleArn=LOCAL_ROLE_ARN, type="STANDARD"
    )["stateMachineArn"]
    archives = {"jobs_archive_url": jobs_archive_url, "results_archive_url": results_archive_url}
    bucket = create_claim_check_bucket(clients.s3, settings.prefix) if clients.s3 else None
    fanout = create_bucket(clients.s3, f"{settings.prefix}-fanout") if clients.s3 else None
    return {
        **{key: url for key, url in archives.items() if url},
        **({"claim_check_bucket": bucket} if bucket else {}),
        **({"fanout_bucket": fanout} if fanout else {}),
        "jobs_queue_url": jobs_url,
        "results_queue_url": results_url,
        "jobs_dlq_url": jobs_dlq_url,
        "results_dlq_url": results_dlq_url,
        "state_machine_arn": state_machine_arn,
    }


def create_claim_check_bucket(s3: Any, prefix: str) -> str:
    """``<prefix>-claim-checks``: where outputs too large for a result message go
    (bridge.claim_check), encrypted at rest by default as on AWS."""
    return create_bucket(s3, f"{prefix}-claim-checks")


def create_bucket(s3: Any, bucket: str) -> str:
    """A bucket in the client's region (``<prefix>-fanout`` holds large fan-outs' job files
    and result files: bridge.ops.fanout, infra/modules/fanout)."""
    region = s3.meta.region_name
    location = {} if region == "us-east-1" else {"LocationConstraint": region}
    s3.create_bucket(Bucket=bucket, **({"CreateBucketConfiguration": location} if location else {}))
    return bucket


#: A placeholder AMI: moto launches instances from any image id.
LOCAL_IMAGE_ID = "ami-0123456789abcdef0"


def create_instance_group(clients: Clients, settings: StackSettings) -> dict[str, str]:
    """The consumers' Auto Scaling group as infra/modules/consumers shapes it: a launch template,
    a group of exactly one instance (min 0, so a scale-in can take it) and a termination
    lifecycle hook that holds a terminating instance while its worker drains. Returns the group,
    hook and instance identifiers (configuration fields)."""
    assert clients.autoscaling is not None and clients.ec2 is not None, "needs both clients"
    group, hook = f"{settings.prefix}-consumers", f"{settings.prefix}-drain"
    template = clients.ec2.create_launch_template(
        LaunchTemplateName=f"{settings.prefix}-worker",
        LaunchTemplateData={
            "ImageId": LOCAL_IMAGE_ID,
            "InstanceType": "t3.micro",
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        },
    )["LaunchTemplate"]
    clients.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=group,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "$Latest"},
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=1,
        AvailabilityZones=[f"{clients.autoscaling.meta.region_name}a"],
    )
    clients.autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=group,
        LifecycleHookName=hook,
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=settings.lifecycle_hook_timeout_s,
        DefaultResult="CONTINUE",
    )
    instances = clients.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"
    ][0]["Instances"]
    return {
        "asg_name": group,
        "lifecycle_hook_name": hook,
        "instance_id": instances[0]["InstanceId"],
    }
