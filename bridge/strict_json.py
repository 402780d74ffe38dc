"""Read JSON someone else wrote, refusing what ``json.loads`` would crash on or accept silently.

Why not ``json.loads``: it recurses once per nesting level, so a 2 KB message of nested arrays
raises ``RecursionError`` (on Python 3.11; 3.12 and 3.13 only move the threshold) and kills the
thread that reads it; it keeps the last of two duplicate keys, so two readers of one message can
disagree about what it says; it reads ``NaN``, ``Infinity`` and numbers such as ``1e400`` as
floats JSON cannot carry, which come out again as ``null``: a changed result. Here each of those
is a :class:`JSONError` naming the problem and where it is, and a caller treats it like any other
malformed message.

Depth is checked before decoding, by a linear scan of the brackets outside strings (no recursion,
so any depth is safe on every Python); only text within the limit reaches the decoder. The
limit is the caller's (``bridge.contract.MAX_JSON_DEPTH`` for messages): this module imports
nothing but the standard library, so the contract and anything else may use it.

:func:`value_problem` checks Python values on their way out (a handler's output) for the same
things, iteratively: non-finite floats, nesting, and strings UTF-8 cannot encode.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any, Literal

Kind = Literal["syntax", "depth", "duplicate", "non_finite", "unicode"]

#: A complete JSON string (possessive: linear time however the text is built).
_STRING = re.compile(r'"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+"')
#: What the depth scan looks at: strings (skipped), brackets, and an unterminated string's quote.
_TOKEN = re.compile(r'"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+"|[\[\]{}]|"')
_BRACKET = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
#: A \\u escape of a surrogate: only then can decoded text hold a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
#: A surrogate code point in decoded text: always a lone one (pairs decode to one character).
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONSTANTS = ("NaN", "Infinity", "-Infinity")
#: What json writes as arrays and objects (a tuple, not a union: isinstance is 3x faster).
_CONTAINERS = (dict, list, tuple)
#: Dictionary keys longer than this are shortened in paths (a path names, it need not quote).
_KEY_CHARS = 40


class JSONError(ValueError):
    """Text that is not strict JSON. ``kind`` says which rule it broke (``syntax`` for anything
    ``json`` itself refuses, with the decoder's error in ``decode_error``)."""

    def __init__(
        self, kind: Kind, problem: str, decode_error: json.JSONDecodeError | None = None
    ) -> None:
        super().__init__(problem)
        self.kind: Kind = kind
        self.decode_error = decode_error


def loads(data: str | bytes | bytearray, *, max_depth: int, allow_non_finite: bool = False) -> Any:
    """Decode strict JSON: at most ``max_depth`` levels of arrays and objects (``{"a": [1]}``
    is 2), no duplicate keys at any depth, no NaN or ±Infinity (nor numbers that overflow to
    them), no lone surrogates. Raises :class:`JSONError`, never anything else.

    ``allow_non_finite`` reads NaN and ±Infinity as floats, for a caller that refuses them
    itself with a better answer (the completion handler fails the task with
    ``Bridge.InvalidOutput`` naming the path)."""
    return _decode(_text(data), max_depth, strict=True, non_finite=allow_non_finite)


def loads_lenient(data: str | bytes | bytearray, *, max_depth: int) -> Any:
    """Decode JSON for reading single fields out of a message that may break the rules: depth
    is still enforced (raises :class:`JSONError`), non-finite numbers are read as floats, and
    the value of a duplicated key is :data:`AMBIGUOUS`, so a reader never picks one of two."""
    return _decode(_text(data), max_depth, strict=False, non_finite=True)


class _Ambiguous:
    def __repr__(self) -> str:
        return "AMBIGUOUS"


#: What :func:`loads_lenient` puts where a key appears twice in one object.
AMBIGUOUS: Any = _Ambiguous()


def check_depth(text: str, max_depth: int) -> None:
    """Raise :class:`JSONError` if brackets outside strings nest deeper than ``max_depth``.

    The verdict runs in C (regular expressions and ``accumulate``); only an over-deep text is
    scanned again in Python, stopping where the limit is passed, to name the byte offset."""
    if text.count("[") + text.count("{") <= max_depth:
        return
    outside = _STRING.sub("", text)
    cut = outside.find('"')  # an unterminated string: the decoder stops there anyway
    if cut >= 0:
        outside = outside[:cut]
    steps = map(_STEP.__getitem__, _BRACKET.findall(outside))
    if max(accumulate(steps), default=0) <= max_depth:
        return
    depth = 0
    for match in _TOKEN.finditer(text):
        char = text[match.start()]
        if char == '"':
            if match.end() - match.start() == 1:
                break
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                offset = len(text[: match.start()].encode("utf-8", "surrogatepass"))
                raise JSONError("depth", f"nested deeper than {max_depth} levels at byte {offset}")
        else:
            depth -= 1


def value_problem(value: Any, max_depth: int) -> str | None:
    """What makes ``value`` unfit to travel as JSON unchanged, or ``None``: a NaN or ±Infinity,
    nesting deeper than ``max_depth``, or a string (or key) UTF-8 cannot encode; named with
    the JSONPath-like path of the first one in document order (``$.items[3].score``).

    Iterative, so a self-referencing or absurdly deep value is a problem, not a crash. Types
    ``json`` cannot serialise at all are left to the serialiser to refuse. The common case, a
    fine value, is settled in C (serialise, then scan); only a value with a problem is walked
    in Python to name the path (a 7 MB output: 0.35 s instead of 0.8 s)."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (ValueError, TypeError, RecursionError):
        pass  # NaN, a cycle, absurd depth: walked below; a type json lacks: the caller's
    else:
        if not _SURROGATE.search(text) and not _too_deep(value, max_depth):
            return None
    for path, item, depth in _walk(value):
        if isinstance(item, float) and not math.isfinite(item):
            literal = "NaN" if math.isnan(item) else ("Infinity" if item > 0 else "-Infinity")
            return f"{literal} at {render_path(path)}: JSON has no NaN or Infinity"
        if isinstance(item, str) and _unencodable(item):
            return f"a lone surrogate at {render_path(path)}: UTF-8 cannot encode it"
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels at {render_path(path)}"
        if isinstance(item, dict):
            for key in item:
                if isinstance(key, str) and _unencodable(key):
                    where = render_path(path)
                    return f"a lone surrogate in a key of {where}: UTF-8 cannot encode it"
    return None


Path = tuple[Any, ...] | None  # (parent path, key) linked backwards; None is the root


def render_path(path: Path) -> str:
    """``$``, ``$.x``, ``$.items[3]``, ``$['a key']``."""
    keys: list[Any] = []
    while path is not None:
        path, key = path
        keys.append(key)
    parts = ["$"]
    for key in reversed(keys):
        if isinstance(key, int):
            parts.append(f"[{key}]")
        elif isinstance(key, str) and key.isidentifier() and len(key) <= _KEY_CHARS:
            parts.append(f".{key}")
        else:
            text = str(key)
            text = text if len(text) <= _KEY_CHARS else text[:_KEY_CHARS] + "..."
            parts.append(f"[{json.dumps(text)}]")
    return "".join(parts)


# --- internals -------------------------------------------------------------------------------
def _text(data: str | bytes | bytearray) -> str:
    if isinstance(data, str):
        return data
    if not isinstance(data, bytes | bytearray):
        raise JSONError("syntax", f"not JSON (a {type(data).__name__}, not text)")
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONError("unicode", f"not UTF-8: {exc.reason} at byte {exc.start}") from None


def _decode(text: str, max_depth: int, strict: bool, non_finite: bool) -> Any:
    check_depth(text, max_depth)
    literals: list[str] = []

    def constant(name: str) -> float:
        literals.append(name)
        return float(name)

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            literals.append(text)
        return value

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(items)
        if len(result) != len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    if strict:
                        raise JSONError("duplicate", f"duplicate key {key!r}")
                    result[key] = AMBIGUOUS
                seen.add(key)
        return result

    try:
        value = json.loads(
            text, object_pairs_hook=pairs, parse_constant=constant, parse_float=number
        )
    except JSONError:
        raise
    except json.JSONDecodeError as exc:
        raise JSONError("syntax", f"not JSON ({exc})", exc) from None
    except (ValueError, TypeError, RecursionError, MemoryError) as exc:
        # e.g. an integer of more digits than int() accepts (sys.set_int_max_str_digits)
        raise JSONError("syntax", f"not JSON ({type(exc).__name__}: {exc})") from None
    if literals and not non_finite:
        first, where = literals[0], render_path(_non_finite_path(value))
        if first in _CONSTANTS:
            raise JSONError("non_finite", f"{first} at {where}: JSON has no NaN or Infinity")
        raise JSONError("non_finite", f"{first} at {where}: out of the range of a 64-bit float")
    if strict and _SURROGATE_ESCAPE.search(text):
        problem = value_problem(value, max_depth)
        if problem:
            raise JSONError("unicode", problem)
    return value


def _too_deep(value: Any, max_depth: int) -> bool:
    """Whether containers nest deeper than ``max_depth``: one level at a time, in list
    comprehensions, several times faster than :func:`_walk` (no path is kept)."""
    level = [value]
    for _ in range(max_depth + 1):
        containers = [item for item in level if isinstance(item, _CONTAINERS)]
        if not containers:
            return False
        level = []
        for container in containers:
            level.extend(container.values() if isinstance(container, dict) else container)
    return True


def _non_finite_path(value: Any) -> Path:
    for path, item, _ in _walk(value):
        if isinstance(item, float) and not math.isfinite(item):
            return path
    return None


def _unencodable(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _walk(value: Any) -> Iterator[tuple[Path, Any, int]]:
    """Every value in document order with its path and nesting depth (containers count their
    own level: the root list is at depth 1, its scalars at depth 1 too)."""
    stack: list[tuple[Path, Any, int]] = [(None, value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if isinstance(item, dict):
            depth += 1
            children = [((path, key), child, depth) for key, child in item.items()]
        elif isinstance(item, list | tuple):
            depth += 1
            children = [((path, index), child, depth) for index, child in enumerate(item)]
        else:
            yield path, item, depth
            continue
        yield path, item, depth
        if len(children) and depth <= _STOP:
            stack.extend(reversed(children))


#: Past any sane limit: a cycle would otherwise walk forever (the caller's limit stops first).
_STOP = 1_000_000
