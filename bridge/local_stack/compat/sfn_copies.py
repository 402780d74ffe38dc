"""The interpreter's defensive copies: speed, not behaviour.

**AWS.** A state's input, output and every path it extracts are JSON values; what one state
does to its copy never shows in another's (Step Functions developer guide, "Processing input
and output in Step Functions"), and a state's cost does not depend on how the service keeps
them apart.

**moto 5.2.5.** The interpreter keeps them apart with ``copy.deepcopy``: every path a state
reads (``States._extract``), every reset of ``$states.input``, every string expression, every
ResultPath and every evaluation frame's stack. ``deepcopy`` is general: it keeps a memo of
every object it visits, so that shared references and cycles survive, and dispatches each
value through ``__reduce_ex__`` lookups. JSON values have neither, and those copies are most
of a Map iteration's own CPU.

**The patch** gives those modules a ``copy`` whose ``deepcopy`` copies dicts and lists
recursively, returns immutable scalars (strings, numbers, booleans, None, timestamps) as they
are, and hands anything else (moto's own objects on a frame's stack, a program state) to
``copy.deepcopy``. The result is a new value wherever ``deepcopy`` would make one, so no state
sees another's changes; only identity *within* one value is not kept, which JSON cannot
express. Reverted with the stack.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import types
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, in_modules

#: Values that cannot change: a copy of one may be the value itself (as ``deepcopy`` does for
#: the builtin scalars).
_IMMUTABLE = frozenset(
    {
        str,
        int,
        float,
        bool,
        type(None),
        bytes,
        datetime.datetime,
        datetime.date,
        decimal.Decimal,
    }
)

#: The interpreter's modules that copy JSON values with ``copy.deepcopy``, relative to
#: ``moto.stepfunctions.parser.asl``.
_MODULES = (
    "eval.states",
    "eval.environment",
    "eval.event.event_manager",
    "component.common.string.string_expression",
    "component.common.path.result_path",
    "component.intrinsic.function.statesfunction.json_manipulation.json_merge",
    "component.state.exec.execute_state",
    "component.state.exec.state_map.state_map",
    "component.state.exec.state_parallel.state_parallel",
    "component.state.exec.state_task.service.state_task_service",
)


def json_copy(value: Any, memo: Any = None) -> Any:
    """A deep copy of a JSON value; anything that is not one is copied by ``copy.deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if kind is list:
        return [json_copy(item) for item in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value, memo)


#: What the patched modules see as ``copy``: the standard module with ``deepcopy`` replaced.
JSON_COPY_MODULE = types.SimpleNamespace(**{**vars(copy), "deepcopy": json_copy})


def json_copies() -> list[Replacement]:
    """Speed, not behaviour: moto 5.2.5's interpreter copies every JSON value a state reads or
    writes with the general ``copy.deepcopy``; the patch gives it a copier made for JSON (see
    the module docstring; "Processing input and output in Step Functions", Step Functions
    developer guide)."""
    return in_modules(
        (f"moto.stepfunctions.parser.asl.{name}" for name in _MODULES),
        "copy",
        copy,
        JSON_COPY_MODULE,
    )


PATCHES: list[Patch] = [
    Patch(
        "sfn-json-copy",
        "a state's JSON values are copied as JSON, not by the general deepcopy",
        json_copies,
    ),
]
