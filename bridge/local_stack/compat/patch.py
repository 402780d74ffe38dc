"""What one compatibility patch is made of, and the checks a patch makes while it is built.

Below both the registry (``compat/__init__``, which applies and reverts every patch) and the
patch modules themselves, so neither imports the other's package code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bridge.local_stack.compat.version import CompatError


@dataclass(frozen=True)
class Replacement:
    """Set ``owner.attribute`` to ``new`` while the patch is applied. With ``adds`` the
    attribute must not exist yet (an API moto lacks); if moto ever grows it, the patch fails
    so it gets reviewed instead of shadowing moto's own."""

    owner: Any
    attribute: str
    new: Any
    adds: bool = False


@dataclass(frozen=True)
class Patch:
    """One gap. ``build`` imports moto, checks its targets and returns the replacements."""

    name: str
    aws_behaviour: str
    build: Callable[[], list[Replacement]]
    #: Run on revert, before the attributes are restored (e.g. stop the patch's threads).
    cleanup: Callable[[], None] | None = None


def expect(owner: Any, attribute: str) -> Any:
    """The current ``owner.attribute``; raises if moto moved it (a patch that no longer fits)."""
    if not hasattr(owner, attribute):
        raise CompatError(f"{getattr(owner, '__name__', owner)}.{attribute} no longer exists")
    return getattr(owner, attribute)


def in_modules(
    modules: Iterable[str], attribute: str, original: Any, new: Any
) -> list[Replacement]:
    """``new`` for ``attribute`` in each of ``modules`` (dotted names, imported here): for a
    moto function or module that several of moto's modules imported by name. Each must still
    hold ``original``; one that holds something else raises, naming it."""
    import importlib

    replacements = []
    for name in modules:
        module = importlib.import_module(name)
        if expect(module, attribute) is not original:
            raise CompatError(f"{name}.{attribute} is no longer {original!r}")
        replacements.append(Replacement(module, attribute, new))
    return replacements
