"""moto's response serialiser: speed, not behaviour.

**AWS.** What a call costs does not depend on how the service is implemented: a ReceiveMessage
of ten messages costs one request, however its response is built (SQS developer guide, "Amazon
SQS standard queues").

**moto 5.2.5.** Each value of each response (every message's id, body, receipt handle and
attributes) is looked up under the names its alias providers offer: six provider objects are
built per value, each asked whether it has an alias, and each alias is also tried in its
``snake_case`` form. The names offered depend only on the field, its shape and the kind of
object it is read from, yet moto works them out again for every value.

**The patch** remembers the names per (picker class, object type, shape, the shape's parent,
field) and tries them in the same order. An object with its own ``Meta`` (aliases of its own),
a picker with providers other than moto's defaults and any picker subclass are still asked
every time.
"""

from __future__ import annotations

import threading
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

#: Entries before the memo starts over (a field per shape and object type: a few hundred).
_LIMIT = 20_000


def alias_cache() -> list[Replacement]:
    """Speed, not behaviour: moto 5.2.5 works out the names to try for each response value
    anew (see the module docstring; a call's cost on AWS does not depend on its response's
    construction, SQS developer guide). The patch memoises them."""
    from moto.core import serialize
    from moto.core.utils import MISSING, get_value

    picker_classes = (serialize.AttributePicker, serialize.XFormedAttributePicker)
    expect(serialize.AttributePicker, "__call__")
    expect(serialize.AttributePicker, "get_possible_keys")
    defaults = expect(serialize, "DEFAULT_ALIAS_PROVIDERS")
    names: dict[tuple[Any, ...], tuple[str, ...]] = {}
    lock = threading.Lock()

    def possible_keys(picker: Any, context: Any) -> Any:
        obj, shape = context.obj, context.shape
        if (
            type(picker) not in picker_classes
            or picker.alias_providers is not defaults
            or "Meta" in getattr(obj, "__dict__", ())
        ):
            return picker.get_possible_keys(context)
        key = (type(picker), type(obj), shape, getattr(shape, "parent", None), context.key)
        try:
            return names[key]
        except KeyError:
            found = tuple(picker.get_possible_keys(context))
            with lock:
                if len(names) >= _LIMIT:
                    names.clear()
                names[key] = found
            return found

    def __call__(self: Any, context: Any) -> Any:  # moto's, with the names memoised
        obj = context.obj
        for possible_key in possible_keys(self, context):
            value = get_value(obj, possible_key, MISSING)
            if value is not MISSING:
                break
        else:
            value = None
        key_path = f"{context.key_path}.{context.key}"
        for transform_path, transform in self.response_transformers.items():
            if key_path.endswith(transform_path):
                value = transform(value)
                break
        return value

    return [Replacement(serialize.AttributePicker, "__call__", __call__)]


PATCHES: list[Patch] = [
    Patch(
        "moto-serializer-aliases",
        "the names a response value is looked up under are worked out once per field",
        alias_cache,
    ),
]
