"""The interpreter's JSONPath evaluation: speed, not behaviour.

**AWS.** A reference path such as ``$.item`` or ``$$.Map.Item.Value`` names one value by its
field names ("Paths", Step Functions developer guide); what it costs does not depend on how the
service evaluates it.

**moto 5.2.5** evaluates every path with ``jsonpath_ng``: a tree of expression objects whose
``find`` wraps each value it passes in a ``DatumInContext``, then ``extract_json`` inspects the
matches' paths to decide between one value and a list. The bridge's template evaluates about
eleven paths per job, every one of them plain field names, which need none of that machinery.

**The patch** answers a path made only of field names (``$.a.b``, letters, digits and
underscores) by looking the fields up in the dicts directly. Anything else, and any lookup that
does not find a dict holding the field, goes to moto's ``extract_json`` as before, so every
error and every special case (wildcards, slices, array indexes, missing fields) is still moto's.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect, in_modules

#: A path of plain field names after the root: ``$.a``, ``$.a.b_2``.
_FIELDS = re.compile(r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*)+")

#: The interpreter's modules that call ``extract_json``, relative to
#: ``moto.stepfunctions.parser.asl`` (each imported it by name).
_MODULES = (
    "utils.json_path",
    "eval.states",
    "component.common.string.string_expression",
    "component.intrinsic.argument.argument",
    "component.state.choice.comparison.operator.implementations.timestamp_operators",
    "component.state.choice.comparison.operator.implementations.boolean_equals",
    "component.state.choice.comparison.operator.implementations.numeric",
    "component.state.choice.comparison.operator.implementations.string_operators",
)


@functools.lru_cache(maxsize=4096)
def field_names(path: str) -> tuple[str, ...] | None:
    """The field names of a plain field path, or None for any other path."""
    if not _FIELDS.fullmatch(path):
        return None
    return tuple(path.split(".")[1:])


def fast_extract(original: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    def extract_json(path: str, data: Any) -> Any:
        names = field_names(path)
        if names is None:
            return original(path, data)
        value = data
        for name in names:
            if type(value) is not dict or name not in value:
                return original(path, data)  # moto's answer, or moto's error
            value = value[name]
        return value

    return extract_json


def field_paths() -> list[Replacement]:
    """Speed, not behaviour: moto 5.2.5 evaluates every JSONPath, even ``$.item``, through
    ``jsonpath_ng``'s expression objects (see the module docstring; "Paths", Step Functions
    developer guide). The patch looks plain field paths up in the dicts directly and leaves
    every other path, and every miss, to moto."""
    from moto.stepfunctions.parser.asl.utils import json_path

    original = expect(json_path, "extract_json")
    return in_modules(
        (f"moto.stepfunctions.parser.asl.{name}" for name in _MODULES),
        "extract_json",
        original,
        fast_extract(original),
    )


PATCHES: list[Patch] = [
    Patch(
        "sfn-jsonpath-field-paths",
        "a path of plain field names is looked up directly",
        field_paths,
    ),
]
