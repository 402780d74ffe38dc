"""AWS managed policies, which exist in every account (IAM user guide, "AWS managed policies":
"created and administered by AWS", ARN ``arn:aws:iam::aws:policy/<path><name>``).

moto 5.2.5 knows them (``moto.iam.aws_managed_policies``, about 1,500) but creates them only
with ``iam.load_aws_managed_policies`` on, all at once, in every account it touches; off (its
default, and the embedded stack's), ``AttachRolePolicy`` of
``arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore`` (the consumers module's instance role)
is ``NoSuchEntity``. The patch creates the one managed policy a call names, from moto's own
data, the first time it is named.
"""

from __future__ import annotations

import json
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

MANAGED = "iam-aws-managed-policies"
PREFIX = ":iam::aws:policy"


def _known(arn: str) -> dict[str, Any] | None:
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    if PREFIX not in arn:
        return None
    data: dict[str, Any] = json.loads(aws_managed_policies_data)
    return data.get(arn.rsplit("/", 1)[-1])


def aws_managed_policies() -> list[Replacement]:
    """AWS (IAM user guide, "AWS managed policies"): every AWS managed policy exists in every
    account and can be attached and read. moto 5.2.5 (without ``load_aws_managed_policies``) has
    none. Wraps ``IAMBackend.attach_role_policy`` and ``IAMBackend.get_policy`` to create the
    named policy from moto's data first (an ARN moto's data does not have stays
    ``NoSuchEntity``)."""
    from moto.iam.models import AWSManagedPolicy, IAMBackend

    attach = expect(IAMBackend, "attach_role_policy")
    get = expect(IAMBackend, "get_policy")
    expect(AWSManagedPolicy, "from_data")

    def ensure(backend: Any, arn: str) -> None:
        if arn in backend.managed_policies:
            return
        data = _known(arn)
        if data is None:
            return
        policy = AWSManagedPolicy.from_data(
            arn.rsplit("/", 1)[-1], backend.account_id, backend.region_name, data
        )
        if policy.arn == arn:
            backend.managed_policies[arn] = policy

    def attach_role_policy(self: Any, policy_arn: str, role_name: str) -> None:
        ensure(self, policy_arn)
        attach(self, policy_arn, role_name)

    def get_policy(self: Any, policy_arn: str) -> Any:
        ensure(self, policy_arn)
        return get(self, policy_arn)

    return [
        Replacement(IAMBackend, "attach_role_policy", attach_role_policy),
        Replacement(IAMBackend, "get_policy", get_policy),
    ]


PATCHES: list[Patch] = [
    Patch(
        MANAGED,
        "AWS managed policies exist in every account (attach, get)",
        aws_managed_policies,
    ),
]
