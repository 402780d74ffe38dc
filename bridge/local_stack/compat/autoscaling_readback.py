"""Auto Scaling settings as AWS keeps and returns them, where the Terraform AWS provider reads
them back after applying ``infra/modules/consumers`` (``aws_autoscaling_group``,
``aws_autoscaling_lifecycle_hook``, ``aws_autoscaling_policy``) and, finding them different,
plans a change on every ``terraform plan``.

AWS behaviour and sources (Amazon EC2 Auto Scaling API reference):

* CreateAutoScalingGroup / UpdateAutoScalingGroup ``DefaultInstanceWarmup``: kept and returned by
  DescribeAutoScalingGroups (UpdateAutoScalingGroup: "To remove a value that you previously set,
  include the property but specify -1 for the value").
* PutLifecycleHook ``RoleARN`` and ``NotificationTargetARN`` are optional; DescribeLifecycleHooks
  returns them only when set.
* PutScalingPolicy ``Enabled``: "Indicates whether the scaling policy is enabled or disabled. The
  default is enabled"; DescribePolicies returns it, and ``PredictiveScalingConfiguration`` only for
  a ``PredictiveScaling`` policy.

moto 5.2.5 drops ``DefaultInstanceWarmup`` (read back as 0), returns placeholder ARNs
(``arn:aws:iam::1234567890:role/my-auto-scaling-role``, ``...:my-queue``) for every hook, and
returns no ``Enabled`` (read back as false) and an empty ``PredictiveScalingConfiguration`` for
every policy.
"""

from __future__ import annotations

from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

WARMUP = "autoscaling-default-instance-warmup"
HOOK_TARGETS = "autoscaling-lifecycle-hook-targets"
POLICY = "autoscaling-policy-enabled"


def default_instance_warmup() -> list[Replacement]:
    """AWS (API reference, UpdateAutoScalingGroup): DescribeAutoScalingGroups returns the
    ``DefaultInstanceWarmup`` the group was created or last updated with (-1 removes it). moto
    5.2.5 ignores the parameter. Wraps ``AutoScalingResponse.create_auto_scaling_group`` and
    ``update_auto_scaling_group`` to keep it on the group as ``default_instance_warmup``, which
    moto's serializer returns."""
    from moto.autoscaling.responses import AutoScalingResponse

    create = expect(AutoScalingResponse, "create_auto_scaling_group")
    update = expect(AutoScalingResponse, "update_auto_scaling_group")

    def keeping(original: Any) -> Any:
        def respond(self: Any) -> Any:
            result = original(self)
            warmup = self._get_int_param("DefaultInstanceWarmup")
            if warmup is not None:
                group = self.autoscaling_backend.autoscaling_groups[
                    self._get_param("AutoScalingGroupName")
                ]
                group.default_instance_warmup = None if warmup == -1 else warmup
            return result

        respond.__name__ = original.__name__
        return respond

    return [
        Replacement(AutoScalingResponse, "create_auto_scaling_group", keeping(create)),
        Replacement(AutoScalingResponse, "update_auto_scaling_group", keeping(update)),
    ]


def lifecycle_hook_targets() -> list[Replacement]:
    """AWS (API reference, PutLifecycleHook): a hook has the ``RoleARN`` and
    ``NotificationTargetARN`` PutLifecycleHook gave it, or none. moto 5.2.5 gives every hook two
    placeholder ARNs. Wraps ``AutoScalingBackend.create_lifecycle_hook`` to clear them, and
    ``AutoScalingResponse.put_lifecycle_hook`` to set the ones the request names."""
    from moto.autoscaling.models import AutoScalingBackend
    from moto.autoscaling.responses import AutoScalingResponse

    create = expect(AutoScalingBackend, "create_lifecycle_hook")
    put = expect(AutoScalingResponse, "put_lifecycle_hook")

    def create_lifecycle_hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        hook = create(self, *args, **kwargs)
        hook.role_arn = hook.notification_target_arn = None
        return hook

    def put_lifecycle_hook(self: Any) -> Any:
        result = put(self)
        key = f"{self._get_param('AutoScalingGroupName')}_{self._get_param('LifecycleHookName')}"
        hook = self.autoscaling_backend.lifecycle_hooks[key]
        hook.role_arn = self._get_param("RoleARN")
        hook.notification_target_arn = self._get_param("NotificationTargetARN")
        return result

    return [
        Replacement(AutoScalingBackend, "create_lifecycle_hook", create_lifecycle_hook),
        Replacement(AutoScalingResponse, "put_lifecycle_hook", put_lifecycle_hook),
    ]


def policy_enabled() -> list[Replacement]:
    """AWS (API reference, PutScalingPolicy): DescribePolicies returns ``Enabled`` (default true)
    and, only for a predictive policy, its ``PredictiveScalingConfiguration``. moto 5.2.5 returns
    no ``Enabled`` and an empty configuration for every policy. Wraps
    ``AutoScalingResponse.put_scaling_policy`` to keep ``Enabled`` on the policy and drop an
    empty predictive configuration."""
    from moto.autoscaling.responses import AutoScalingResponse

    put = expect(AutoScalingResponse, "put_scaling_policy")

    def put_scaling_policy(self: Any) -> Any:
        result = put(self)
        policy = self.autoscaling_backend.policies[self._get_param("PolicyName")]
        enabled = self._get_param("Enabled")
        policy.enabled = enabled is None or str(enabled).lower() == "true"
        if not policy.predictive_scaling_configuration:
            policy.predictive_scaling_configuration = None
        return result

    return [Replacement(AutoScalingResponse, "put_scaling_policy", put_scaling_policy)]


PATCHES: list[Patch] = [
    Patch(
        WARMUP, "DescribeAutoScalingGroups returns DefaultInstanceWarmup", default_instance_warmup
    ),
    Patch(
        HOOK_TARGETS,
        "a lifecycle hook has the RoleARN and NotificationTargetARN it was given, or none",
        lifecycle_hook_targets,
    ),
    Patch(
        POLICY,
        "DescribePolicies returns Enabled (default true); no empty predictive configuration",
        policy_enabled,
    ),
]
