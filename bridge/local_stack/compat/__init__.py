"""The compatibility layer: small, named patches that make moto behave like AWS where the bridge
depends on it.

Each gap between moto and AWS gets one :class:`Patch` whose docstring states the AWS behaviour and
the documentation page it comes from. Patches are applied only to the embedded stack (in this
process, before its server serves a request) and reverted when it stops; the bridge never patches
anything when it talks to AWS. Every patch is guarded twice:

* by moto's version: the tested range is the ``moto`` pin in ``pyproject.toml``; outside it the
  stack refuses to start with one line naming both versions;
* by its targets: a patch whose target (a class, method or function) has moved raises
  :class:`CompatError` naming the patch, so a gap is never left open silently.

``tests/conformance`` states each behaviour as a test; its canaries run the same tests against
moto as shipped and expect them to fail, so the day moto fixes a gap the suite names the patch to
delete.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect, in_modules
from bridge.local_stack.compat.version import CompatError, check_moto_version

__all__ = [
    "CompatError",
    "Patch",
    "Replacement",
    "applied",
    "apply",
    "check_moto_version",
    "expect",
    "in_modules",
    "revert",
]


def _check(replacement: Replacement) -> None:
    owner, attribute = replacement.owner, replacement.attribute
    if not replacement.adds:
        expect(owner, attribute)
    elif hasattr(owner, attribute):
        name = getattr(owner, "__name__", owner)
        raise CompatError(f"moto now has {name}.{attribute} itself; review this patch")


def _refuse_collisions(built: list[tuple[Patch, list[Replacement]]]) -> None:
    """Every patch is built against moto as shipped, so two patches replacing the same attribute
    would not stack: the second would silently drop the first. Refuse that instead; a patch that
    needs another's behaviour extends that patch."""
    owners: dict[tuple[int, str], str] = {}
    for patch, replacements in built:
        for r in replacements:
            key = (id(r.owner), r.attribute)
            if key in owners and owners[key] != patch.name:
                name = getattr(r.owner, "__name__", r.owner)
                raise CompatError(
                    f"compat patches '{owners[key]}' and '{patch.name}' both replace "
                    f"{name}.{r.attribute}; merge them into one patch"
                )
            owners[key] = patch.name


_lock = threading.Lock()
#: (owner, attribute, original value, whether the owner itself defined it)
_originals: list[tuple[Any, str, Any, bool]] = []
_applied: list[Patch] = []


def registry() -> list[Patch]:
    """Every patch, in the order they are applied."""
    from bridge.local_stack.compat import (
        autoscaling,
        autoscaling_readback,
        dispatch_speed,
        ec2_launch_templates,
        iam_managed_policies,
        lambda_functions,
        serialize_speed,
        sfn_api,
        sfn_copies,
        sfn_execution_end,
        sfn_limits,
        sfn_paths,
        sfn_redrive,
        sfn_s3_map,
        sfn_scale,
        sqs_attributes,
        sqs_in_flight,
        sqs_message_contents,
        sqs_redrive,
        sqs_speed,
        stepfunctions,
    )

    return [
        *stepfunctions.PATCHES,
        *sfn_execution_end.PATCHES,
        *sfn_scale.PATCHES,
        *sfn_copies.PATCHES,
        *sfn_paths.PATCHES,
        *sfn_limits.PATCHES,
        *sfn_s3_map.PATCHES,
        *sfn_redrive.PATCHES,
        *sqs_redrive.PATCHES,
        *sqs_speed.PATCHES,
        *sqs_message_contents.PATCHES,
        *sqs_in_flight.PATCHES,
        *autoscaling.PATCHES,
        *autoscaling_readback.PATCHES,
        *ec2_launch_templates.PATCHES,
        *sfn_api.PATCHES,
        *sqs_attributes.PATCHES,
        *lambda_functions.PATCHES,
        *iam_managed_policies.PATCHES,
        *dispatch_speed.PATCHES,
        *serialize_speed.PATCHES,
    ]


def apply(patches: Iterable[Patch] | None = None) -> list[str]:
    """Check moto's version, then apply ``patches`` (default: all). Idempotent."""
    check_moto_version()
    with _lock:
        if _applied:
            return [patch.name for patch in _applied]
        built: list[tuple[Patch, list[Replacement]]] = []
        for patch in registry() if patches is None else patches:
            try:
                replacements = patch.build()
                for replacement in replacements:
                    _check(replacement)
            except Exception as exc:
                raise CompatError(
                    f"compat patch '{patch.name}' no longer fits the installed moto: {exc}"
                ) from exc
            built.append((patch, replacements))
        _refuse_collisions(built)
        for patch, replacements in built:  # all checked first: never half-applied
            for r in replacements:
                own = r.attribute in vars(r.owner)
                # The raw class-dict entry keeps staticmethod/classmethod wrappers intact.
                original = (
                    vars(r.owner)[r.attribute] if own else getattr(r.owner, r.attribute, None)
                )
                _originals.append((r.owner, r.attribute, original, own))
                setattr(r.owner, r.attribute, r.new)
            _applied.append(patch)
        return [patch.name for patch in _applied]


def revert() -> None:
    """Restore moto as shipped (in reverse order, so stacked replacements unwind)."""
    with _lock:
        for patch in reversed(_applied):
            if patch.cleanup:
                patch.cleanup()
        while _originals:
            owner, attribute, original, own = _originals.pop()
            if own or not isinstance(owner, type):
                setattr(owner, attribute, original)
            else:  # added, or inherited by a class: remove ours, do not pin a copy
                delattr(owner, attribute)
        _applied.clear()


def applied() -> list[str]:
    with _lock:
        return [patch.name for patch in _applied]
