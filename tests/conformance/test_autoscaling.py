"""EC2 Auto Scaling, where scale-in safety depends on it: protection against scale-in, the
termination lifecycle hook's wait, CompleteLifecycleAction / RecordLifecycleActionHeartbeat, and
SetInstanceProtection's errors.

Not run against AWS: each test needs an Auto Scaling group with running instances (minutes to
launch, and billed). On stock moto the missing actions answer 500; clients here do not retry, so
the canaries fail at once.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from bridge.local_stack import compat
from bridge.local_stack.compat import CompatError
from bridge.local_stack.compat import autoscaling as autoscaling_patches
from bridge.local_stack.server import EmbeddedServer
from tests.support.aws import loopback_client
from tests.support.conformance import Target
from tests.support.polling import eventually

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

HOOKS = "autoscaling-termination-hooks"
ACTIONS = "autoscaling-lifecycle-actions"
PROTECTION = "autoscaling-instance-protection"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
QUERY_AUTH = (  # moto routes an unsigned query-protocol request by its credential scope
    "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/autoscaling/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


@dataclass
class Fleet:
    """A group of ``size`` instances from a launch template, optionally with a drain hook."""

    autoscaling: Any
    name: str
    hook: str

    def instances(self) -> dict[str, dict[str, Any]]:
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.name])
        return {i["InstanceId"]: i for i in groups["AutoScalingGroups"][0]["Instances"]}

    def state(self, instance_id: str) -> str | None:
        instance = self.instances().get(instance_id)
        return instance["LifecycleState"] if instance else None

    def protect(self, instance_ids: list[str], protected: bool = True) -> None:
        self.autoscaling.set_instance_protection(
            AutoScalingGroupName=self.name, InstanceIds=instance_ids, ProtectedFromScaleIn=protected
        )

    def scale_to(self, capacity: int) -> None:
        self.autoscaling.set_desired_capacity(
            AutoScalingGroupName=self.name, DesiredCapacity=capacity
        )

    def action(self, call: Any, instance_id: str, **kwargs: Any) -> Any:
        return call(
            AutoScalingGroupName=self.name,
            LifecycleHookName=self.hook,
            InstanceId=instance_id,
            **kwargs,
        )


@pytest.fixture
def make_fleet(target: Target) -> Iterator[Any]:
    if target.is_aws:
        pytest.skip("needs a running Auto Scaling group (minutes, billed); embedded only")
    endpoint = target.sqs.meta.endpoint_url
    autoscaling, ec2 = loopback_client("autoscaling", endpoint), loopback_client("ec2", endpoint)
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{target.prefix}lt",
        LaunchTemplateData={"ImageId": "ami-0123456789abcdef0", "InstanceType": "t3.micro"},
    )["LaunchTemplate"]["LaunchTemplateId"]

    def make(size: int, hook_timeout_s: int | None = 300) -> Fleet:
        name = f"{target.prefix}asg{size}{hook_timeout_s}"
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
            MinSize=0,
            MaxSize=size,
            DesiredCapacity=size,
            AvailabilityZones=["us-east-1a"],
        )
        if hook_timeout_s is not None:
            autoscaling.put_lifecycle_hook(
                AutoScalingGroupName=name,
                LifecycleHookName="drain",
                LifecycleTransition=TERMINATING,
                HeartbeatTimeout=hook_timeout_s,
                DefaultResult="CONTINUE",
            )
        return Fleet(autoscaling, name, "drain")

    yield make


def error_of(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def test_scale_in_spares_protected_instances(make_fleet: Any) -> None:
    fleet = make_fleet(2, hook_timeout_s=None)
    busy, _ = sorted(fleet.instances())
    fleet.protect([busy])
    assert fleet.instances()[busy]["ProtectedFromScaleIn"] is True

    fleet.scale_to(0)
    assert list(fleet.instances()) == [busy]  # the protected one stays, InService
    assert fleet.state(busy) == "InService"


@pytest.mark.gap(HOOKS)
def test_scale_in_holds_the_instance_in_terminating_wait(make_fleet: Any) -> None:
    fleet = make_fleet(2)
    busy, idle = sorted(fleet.instances())
    fleet.protect([busy])

    fleet.scale_to(1)
    assert fleet.state(idle) == "Terminating:Wait"
    assert fleet.state(busy) == "InService"
    assert len(fleet.instances()) == 2  # no replacement: the group shrank by one


@pytest.mark.gap(HOOKS)
def test_terminate_instance_in_group_waits_for_the_hook_even_if_protected(
    make_fleet: Any,
) -> None:
    fleet = make_fleet(1)
    (instance,) = fleet.instances()
    fleet.protect([instance])  # protection is only against scale-in

    fleet.autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=instance, ShouldDecrementDesiredCapacity=True
    )
    assert fleet.state(instance) == "Terminating:Wait"


@pytest.mark.gap(ACTIONS)
def test_complete_lifecycle_action_lets_termination_proceed(make_fleet: Any) -> None:
    fleet = make_fleet(1)
    (instance,) = fleet.instances()
    fleet.scale_to(0)

    fleet.action(
        fleet.autoscaling.complete_lifecycle_action, instance, LifecycleActionResult="CONTINUE"
    )
    assert fleet.state(instance) is None
    code, message = error_of(
        fleet.autoscaling.complete_lifecycle_action,
        AutoScalingGroupName=fleet.name,
        LifecycleHookName=fleet.hook,
        InstanceId=instance,
        LifecycleActionResult="CONTINUE",
    )
    assert code == "ValidationError"
    assert message == f"No active Lifecycle Action found with instance ID {instance}"


@pytest.mark.gap(ACTIONS)
def test_heartbeats_extend_the_wait_and_its_timeout_ends_it(make_fleet: Any) -> None:
    fleet = make_fleet(2, hook_timeout_s=1)  # AWS's minimum is 30 s: embedded only
    beating, silent = sorted(fleet.instances())
    fleet.autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=beating, ShouldDecrementDesiredCapacity=True
    )
    fleet.autoscaling.terminate_instance_in_auto_scaling_group(
        InstanceId=silent, ShouldDecrementDesiredCapacity=True
    )
    for _ in range(4):  # 1.6 s, past the 1 s timeout
        fleet.action(fleet.autoscaling.record_lifecycle_action_heartbeat, beating)
        eventually(lambda: False, timeout_s=0.4)
    assert fleet.state(beating) == "Terminating:Wait"
    assert eventually(lambda: fleet.state(silent) is None, timeout_s=5)  # default result


@pytest.mark.gap(ACTIONS)
def test_lifecycle_calls_name_what_is_wrong(make_fleet: Any) -> None:
    fleet = make_fleet(1)
    (instance,) = fleet.instances()
    heartbeat = fleet.autoscaling.record_lifecycle_action_heartbeat
    code, message = error_of(
        heartbeat, AutoScalingGroupName="nope", LifecycleHookName="drain", InstanceId=instance
    )
    assert (code, message) == (
        "ValidationError",
        "AutoScalingGroup name not found - AutoScalingGroup 'nope' not found",
    )
    not_waiting = f"No active Lifecycle Action found with instance ID {instance}"
    assert error_of(
        heartbeat, AutoScalingGroupName=fleet.name, LifecycleHookName="drain", InstanceId=instance
    ) == ("ValidationError", not_waiting)
    fleet.scale_to(0)
    assert (
        error_of(
            heartbeat,
            AutoScalingGroupName=fleet.name,
            LifecycleHookName="other",
            InstanceId=instance,
        )[0]
        == "ValidationError"
    )


@pytest.mark.gap(PROTECTION)
def test_set_instance_protection_refuses_what_aws_refuses(make_fleet: Any) -> None:
    fleet = make_fleet(2)
    first, _ = sorted(fleet.instances())
    protect = fleet.autoscaling.set_instance_protection
    outsider = "i-00000000000000000"
    assert error_of(
        protect, AutoScalingGroupName=fleet.name, InstanceIds=[outsider], ProtectedFromScaleIn=True
    ) == (
        "ValidationError",
        f"The instance {outsider} is not part of Auto Scaling group {fleet.name}.",
    )
    assert (
        error_of(
            protect, AutoScalingGroupName="nope", InstanceIds=[first], ProtectedFromScaleIn=True
        )[0]
        == "ValidationError"
    )
    too_many = [first] * 51
    assert (
        error_of(
            protect,
            AutoScalingGroupName=fleet.name,
            InstanceIds=too_many,
            ProtectedFromScaleIn=True,
        )[0]
        == "ValidationError"
    )

    fleet.scale_to(1)  # one of them goes to Terminating:Wait
    leaving = next(i for i, d in fleet.instances().items() if d["LifecycleState"] != "InService")
    assert error_of(
        protect, AutoScalingGroupName=fleet.name, InstanceIds=[leaving], ProtectedFromScaleIn=False
    ) == (
        "ValidationError",
        f"The instance {leaving} is not in InService or EnteringStandby or Standby.",
    )


def test_a_group_without_a_hook_terminates_at_once(make_fleet: Any) -> None:
    fleet = make_fleet(1, hook_timeout_s=None)
    assert len(fleet.instances()) == 1
    fleet.scale_to(0)
    assert fleet.instances() == {}


# --- the patches themselves (not conformance behaviours) --------------------------------------


def test_query_protocol_answers_and_revert_removes_actions_and_timers() -> None:
    compat.apply(autoscaling_patches.PATCHES)
    server = EmbeddedServer().start()
    try:
        autoscaling = loopback_client("autoscaling", server.endpoint_url)
        ec2 = loopback_client("ec2", server.endpoint_url)
        ec2.create_launch_template(
            LaunchTemplateName="raw-lt", LaunchTemplateData={"ImageId": "ami-0123456789abcdef0"}
        )
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="raw",
            LaunchTemplate={"LaunchTemplateName": "raw-lt"},
            MinSize=0,
            MaxSize=2,
            DesiredCapacity=2,
            AvailabilityZones=["us-east-1a"],
        )
        autoscaling.put_lifecycle_hook(
            AutoScalingGroupName="raw", LifecycleHookName="drain", LifecycleTransition=TERMINATING
        )
        autoscaling.set_desired_capacity(AutoScalingGroupName="raw", DesiredCapacity=0)
        first, second = sorted(
            i["InstanceId"]
            for i in autoscaling.describe_auto_scaling_instances()["AutoScalingInstances"]
        )
        form = {
            "Action": "CompleteLifecycleAction",
            "Version": "2011-01-01",
            "AutoScalingGroupName": "raw",
            "LifecycleHookName": "drain",
            "InstanceId": first,
            "LifecycleActionResult": "ABANDON",
        }
        request = urllib.request.Request(
            server.endpoint_url + "/",
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": QUERY_AUTH,
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read().decode()
        assert "<CompleteLifecycleActionResponse" in body
        assert "<CompleteLifecycleActionResult" in body
        assert "<RequestId>" in body
        assert any(t.name.startswith("lifecycle-action-") for t in _threads())  # second waits

        compat.revert()
        assert eventually(lambda: not _threads(), timeout_s=2)
        with pytest.raises((ClientError, ResponseParserError)):  # moto as shipped: a 500 page
            autoscaling.complete_lifecycle_action(
                AutoScalingGroupName="raw",
                LifecycleHookName="drain",
                InstanceId=second,
                LifecycleActionResult="CONTINUE",
            )
    finally:
        server.stop()
        compat.revert()


def _threads() -> list[Any]:
    import threading

    return [t for t in threading.enumerate() if t.name.startswith("lifecycle-action-")]


def test_patch_refuses_to_apply_once_moto_implements_the_actions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.autoscaling.responses import AutoScalingResponse

    monkeypatch.setattr(
        AutoScalingResponse, "complete_lifecycle_action", lambda self: None, raising=False
    )
    with pytest.raises(CompatError, match=ACTIONS):
        compat.apply(autoscaling_patches.PATCHES)
    assert compat.applied() == []
