"""Queue attributes as SQS keeps and returns them, where the Terraform AWS provider reads them
back after every write (``aws_sqs_queue``, ``aws_sqs_queue_policy``,
``aws_sqs_queue_redrive_policy``, ``aws_sqs_queue_redrive_allow_policy``).

AWS behaviour and sources (SQS API reference, SetQueueAttributes and GetQueueAttributes):

* ``RedriveAllowPolicy`` is a queue attribute like any other: set by CreateQueue or
  SetQueueAttributes, returned by GetQueueAttributes (by name or with ``All``); setting it to
  an empty string removes it (what ``terraform destroy`` of the resource does, then waits for).
* SetQueueAttributes changes only the attributes it names: a call without ``Policy`` leaves the
  queue's policy as it was.
* ``RedrivePolicy`` comes back as compact JSON, ``{"deadLetterTargetArn":"arn:...",
  "maxReceiveCount":5}`` (as in the API reference's examples).

moto 5.2.5 stores ``RedriveAllowPolicy`` but never returns it and refuses it as an attribute
name in GetQueueAttributes (the provider then waits for it until its timeout: minutes per
queue); it resets ``Policy`` to none on any SetQueueAttributes that does not name it (the
provider's redrive-policy resources wipe the queue policies it just set); it returns
``RedrivePolicy`` with ``json.dumps``' spaces.
"""

from __future__ import annotations

import json
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

REDRIVE_ALLOW = "sqs-redrive-allow-policy"
KEEP_POLICY = "sqs-set-attributes-keeps-policy"
COMPACT = "sqs-compact-redrive-policy"


def redrive_allow_policy() -> list[Replacement]:
    """AWS (API reference, GetQueueAttributes): it returns ``RedriveAllowPolicy`` once set (by
    name or with ``All``). moto 5.2.5 keeps it on the queue object but leaves it out of
    ``Queue.BASE_ATTRIBUTES``, so it is never returned and naming it is ``InvalidAttributeName``.
    Adds it to ``BASE_ATTRIBUTES`` and gives queues a ``redrive_allow_policy`` of ``None`` until
    one is set."""
    from moto.sqs.models import Queue

    base = expect(Queue, "BASE_ATTRIBUTES")
    if "RedriveAllowPolicy" in base:
        raise ValueError("moto's Queue.BASE_ATTRIBUTES already has RedriveAllowPolicy")
    return [
        Replacement(Queue, "BASE_ATTRIBUTES", [*base, "RedriveAllowPolicy"]),
        Replacement(Queue, "redrive_allow_policy", None, adds=True),
    ]


def set_attributes_keeps_policy() -> list[Replacement]:
    """AWS (API reference, SetQueueAttributes): it leaves every attribute it does not name as it
    was; an empty ``Policy`` removes the policy. moto 5.2.5's ``Queue._set_attributes`` sets
    ``policy`` to ``attributes.get("Policy")``, so any call without ``Policy`` removes it. Wraps
    ``_set_attributes`` to put the previous policy back when the call did not name one."""
    from moto.sqs.models import Queue

    original = expect(Queue, "_set_attributes")

    def _set_attributes(self: Any, attributes: dict[str, Any], now: float | None = None) -> None:
        previous = getattr(self, "policy", None)
        original(self, attributes, now)
        if "Policy" not in attributes:
            self.policy = previous
        elif not attributes["Policy"]:
            self.policy = None

    return [Replacement(Queue, "_set_attributes", _set_attributes)]


def compact_redrive_policy() -> list[Replacement]:
    """AWS (API reference, GetQueueAttributes, examples): it returns ``RedrivePolicy`` as compact
    JSON (no spaces after ``:`` and ``,``). moto 5.2.5 returns ``json.dumps(policy)`` with them,
    which the Terraform provider reports as a change on every plan. Wraps ``Queue.attributes`` to
    re-encode it, and to leave out a ``RedriveAllowPolicy`` that was never set."""
    from moto.sqs.models import Queue

    original = expect(Queue, "attributes")

    def attributes(self: Any) -> dict[str, Any]:
        result: dict[str, Any] = original.fget(self)
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy, separators=(",", ":"))
        if not result.get("RedriveAllowPolicy"):  # never set, or removed with ""
            result.pop("RedriveAllowPolicy", None)
        return result

    return [Replacement(Queue, "attributes", property(attributes, doc=original.__doc__))]


PATCHES: list[Patch] = [
    Patch(
        REDRIVE_ALLOW,
        "GetQueueAttributes returns RedriveAllowPolicy once set (by name or with All)",
        redrive_allow_policy,
    ),
    Patch(
        KEEP_POLICY,
        "SetQueueAttributes leaves a Policy it does not name as it was",
        set_attributes_keeps_policy,
    ),
    Patch(
        COMPACT,
        "RedrivePolicy comes back as compact JSON",
        compact_redrive_policy,
    ),
]
