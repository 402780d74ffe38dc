"""Queue attributes as SQS keeps and returns them, read back by the Terraform provider after
every write (``compat/sqs_attributes.py``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge.local_stack.compat.sqs_attributes import COMPACT, KEEP_POLICY, REDRIVE_ALLOW
from tests.support.aws import loopback_client
from tests.support.conformance import Target

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

DENY_ALL = {"redrivePermission": "denyAll"}


def sqs(target: Target) -> Any:
    return target.sqs if target.is_aws else loopback_client("sqs", target.sqs.meta.endpoint_url)


def attributes(target: Target, url: str, *names: str) -> dict[str, str]:
    answer = sqs(target).get_queue_attributes(QueueUrl=url, AttributeNames=list(names))
    return dict(answer.get("Attributes", {}))


def tls_only(arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


@pytest.mark.gap(REDRIVE_ALLOW)
def test_redrive_allow_policy_is_returned_by_name(target: Target) -> None:
    url = target.queue("allow", RedriveAllowPolicy=json.dumps(DENY_ALL))
    found = attributes(target, url, "RedriveAllowPolicy")
    assert json.loads(found["RedriveAllowPolicy"]) == DENY_ALL


@pytest.mark.gap(REDRIVE_ALLOW)
def test_redrive_allow_policy_set_later_is_returned_with_all(target: Target) -> None:
    url = target.queue("allow-later")
    target.sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"RedriveAllowPolicy": json.dumps(DENY_ALL)}
    )
    assert json.loads(attributes(target, url, "All")["RedriveAllowPolicy"]) == DENY_ALL


@pytest.mark.gap(REDRIVE_ALLOW)
def test_an_empty_redrive_allow_policy_removes_it(target: Target) -> None:
    url = target.queue("allow-removed", RedriveAllowPolicy=json.dumps(DENY_ALL))
    assert "RedriveAllowPolicy" in attributes(target, url, "RedriveAllowPolicy")
    target.sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": ""})
    assert "RedriveAllowPolicy" not in attributes(target, url, "All")


def test_a_queue_without_redrive_allow_policy_returns_none(target: Target) -> None:
    url = target.queue("no-allow")
    assert "RedriveAllowPolicy" not in attributes(target, url, "All")


@pytest.mark.gap(KEEP_POLICY)
def test_setting_other_attributes_keeps_the_policy(target: Target) -> None:
    url = target.queue("keep-policy")
    policy = tls_only(target.queue_arn(url))
    target.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    target.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45"})

    found = attributes(target, url, "Policy", "VisibilityTimeout")
    assert found["VisibilityTimeout"] == "45"
    assert json.loads(found["Policy"]) == json.loads(policy)


def test_an_empty_policy_removes_it(target: Target) -> None:
    url = target.queue("drop-policy")
    target.sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": tls_only(target.queue_arn(url))}
    )
    target.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    assert "Policy" not in attributes(target, url, "All")


@pytest.mark.gap(COMPACT)
def test_redrive_policy_comes_back_as_compact_json(target: Target) -> None:
    source, dlq = target.queue_with_dlq("compact", max_receive_count=3)
    text = attributes(target, source, "RedrivePolicy")["RedrivePolicy"]
    assert text == json.dumps(
        {"deadLetterTargetArn": target.queue_arn(dlq), "maxReceiveCount": 3},
        separators=(",", ":"),
    )
