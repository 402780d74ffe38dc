"""AWS managed policies exist in every account (``compat/iam_managed_policies.py``): the
consumers module attaches ``AmazonSSMManagedInstanceCore`` to the workers' role.

Not run against AWS: it creates a role."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.local_stack.compat.iam_managed_policies import MANAGED
from tests.support.aws import loopback_client
from tests.support.conformance import Target

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

SSM_CORE = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


def iam_of(target: Target) -> Any:
    if target.is_aws:
        pytest.skip("creates an IAM role; embedded only")
    return loopback_client("iam", target.sqs.meta.endpoint_url)


@pytest.mark.gap(MANAGED)
def test_an_aws_managed_policy_can_be_attached(target: Target) -> None:
    iam = iam_of(target)
    iam.create_role(RoleName=f"{target.prefix}w", AssumeRolePolicyDocument="{}")
    iam.attach_role_policy(RoleName=f"{target.prefix}w", PolicyArn=SSM_CORE)
    attached = iam.list_attached_role_policies(RoleName=f"{target.prefix}w")
    assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [SSM_CORE]


@pytest.mark.gap(MANAGED)
def test_an_aws_managed_policy_can_be_read(target: Target) -> None:
    policy = iam_of(target).get_policy(PolicyArn=SSM_CORE)["Policy"]
    assert policy["Arn"] == SSM_CORE
    assert policy["PolicyName"] == "AmazonSSMManagedInstanceCore"


def test_an_unknown_aws_managed_policy_does_not_exist(target: Target) -> None:
    iam = iam_of(target)
    with pytest.raises(ClientError) as info:
        iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/NoSuchPolicyAnywhere")
    assert info.value.response["Error"]["Code"] == "NoSuchEntity"
