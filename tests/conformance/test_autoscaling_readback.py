"""Auto Scaling settings read back as AWS returns them (``compat/autoscaling_readback.py``), so
that a second ``terraform plan`` of the consumers module is empty; and a launch template's own
tags (``compat/ec2_launch_templates.py``).

Not run against AWS: each test creates an Auto Scaling group or a launch template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bridge.local_stack.compat.autoscaling_readback import HOOK_TARGETS, POLICY, WARMUP
from bridge.local_stack.compat.ec2_launch_templates import OWN_TAGS
from tests.support.aws import loopback_client
from tests.support.conformance import Target

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

IMAGE = "ami-0123456789abcdef0"


@dataclass
class Services:
    autoscaling: Any
    ec2: Any
    prefix: str

    def template(self, name: str, **kwargs: Any) -> str:
        answer = self.ec2.create_launch_template(
            LaunchTemplateName=self.prefix + name,
            LaunchTemplateData={"ImageId": IMAGE, "InstanceType": "t3.micro"},
            **kwargs,
        )
        return str(answer["LaunchTemplate"]["LaunchTemplateId"])

    def group(self, name: str, **kwargs: Any) -> str:
        group = self.prefix + name
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=group,
            LaunchTemplate={"LaunchTemplateId": self.template(name), "Version": "$Latest"},
            MinSize=0,
            MaxSize=1,
            DesiredCapacity=0,
            AvailabilityZones=["us-east-1a"],
            **kwargs,
        )
        return group

    def described(self, group: str) -> dict[str, Any]:
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
        return dict(groups["AutoScalingGroups"][0])


@pytest.fixture
def services(target: Target) -> Services:
    if target.is_aws:
        pytest.skip("creates Auto Scaling groups and launch templates; embedded only")
    endpoint = target.sqs.meta.endpoint_url
    return Services(
        loopback_client("autoscaling", endpoint), loopback_client("ec2", endpoint), target.prefix
    )


@pytest.mark.gap(WARMUP)
def test_default_instance_warmup_is_kept(services: Services) -> None:
    group = services.group("warm", DefaultInstanceWarmup=300)
    assert services.described(group)["DefaultInstanceWarmup"] == 300
    services.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=group, DefaultInstanceWarmup=120
    )
    assert services.described(group)["DefaultInstanceWarmup"] == 120


def test_a_group_without_default_instance_warmup_returns_none(services: Services) -> None:
    assert "DefaultInstanceWarmup" not in services.described(services.group("cold"))


@pytest.mark.gap(HOOK_TARGETS)
def test_a_lifecycle_hook_has_no_targets_unless_given(services: Services) -> None:
    group = services.group("hooked")
    services.autoscaling.put_lifecycle_hook(
        AutoScalingGroupName=group,
        LifecycleHookName="drain",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=600,
        DefaultResult="CONTINUE",
    )
    (hook,) = services.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=group)[
        "LifecycleHooks"
    ]
    assert "RoleARN" not in hook
    assert "NotificationTargetARN" not in hook
    assert (hook["HeartbeatTimeout"], hook["DefaultResult"]) == (600, "CONTINUE")


@pytest.mark.gap(POLICY)
def test_a_target_tracking_policy_is_enabled_and_not_predictive(services: Services) -> None:
    group = services.group("scaled")
    services.autoscaling.put_scaling_policy(
        AutoScalingGroupName=group,
        PolicyName="backlog",
        PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
            "TargetValue": 50.0,
        },
    )
    (policy,) = services.autoscaling.describe_policies(AutoScalingGroupName=group)[
        "ScalingPolicies"
    ]
    assert policy["Enabled"] is True
    assert "PredictiveScalingConfiguration" not in policy


@pytest.mark.gap(OWN_TAGS)
def test_a_launch_templates_own_tags_are_not_launch_data(services: Services) -> None:
    template = services.template(
        "tagged",
        TagSpecifications=[
            {"ResourceType": "launch-template", "Tags": [{"Key": "Project", "Value": "cb"}]}
        ],
    )
    (version,) = services.ec2.describe_launch_template_versions(LaunchTemplateId=template)[
        "LaunchTemplateVersions"
    ]
    assert "TagSpecifications" not in version["LaunchTemplateData"]
    (described,) = services.ec2.describe_launch_templates(LaunchTemplateIds=[template])[
        "LaunchTemplates"
    ]
    assert described["Tags"] == [{"Key": "Project", "Value": "cb"}]
