"""Evaluate the small subset of HCL expressions the Terraform timing rules are written in.

python-hcl2 parses the .tf files but does not evaluate expressions: a condition comes back as
its source text (``"${var.a + 60 <= min(172800, 100 * var.b)}"``). To prove that Terraform's
validation accepts exactly what ``bridge.timing`` accepts, the tests evaluate those texts for
sample values. Supported: numbers, strings with ``${}`` interpolation, ``true``/``false``/
``null``, ``var.*`` and ``local.*`` references, lists, the operators (with HCL's precedence),
the conditional, and the functions in ``FUNCTIONS``. Anything else raises ``Unsupported``, so a
rule written with a construct the tests cannot evaluate fails loudly instead of passing.

Semantics kept from HCL because they matter for these rules: ``&&`` and ``||`` evaluate both
operands (no short-circuit: ``var.x == null || var.x > 0`` is an error when ``x`` is null), a
conditional evaluates only the branch it selects, and arithmetic or comparison with null is an
error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Unsupported(ValueError):
    """The expression uses a construct this evaluator does not implement."""


class HclError(ValueError):
    """Terraform would report an error evaluating the expression (e.g. null in arithmetic)."""


def _number(value: Any) -> float | int:
    if value is None:
        raise HclError("null in arithmetic or comparison")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HclError(f"not a number: {value!r}")
    return value


def to_string(value: Any) -> str:
    """Terraform's number/bool-to-string conversion (``tostring``, interpolation)."""
    if value is None:
        raise HclError("null in a string template")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _join(separator: Any, items: Any) -> str:
    return str(separator).join(to_string(item) for item in items)


def _coalesce(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    raise HclError("coalesce: no non-null argument")


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "floor": lambda x: math.floor(_number(x)),
    "ceil": lambda x: math.ceil(_number(x)),
    "min": lambda *xs: min(_number(x) for x in xs),
    "max": lambda *xs: max(_number(x) for x in xs),
    "tostring": to_string,
    "join": _join,
    "concat": lambda *lists: [item for sub in lists for item in sub],
    "coalesce": _coalesce,
}

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_-]*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:(),.\[\]])|(?P<quote>\"))"
)

# Binary operators by HCL precedence, lowest first.
_LEVELS: list[dict[str, Callable[[Any, Any], Any]]] = [
    {"||": lambda a, b: _bool(a) or _bool(b)},
    {"&&": lambda a, b: _bool(a) and _bool(b)},
    {"==": lambda a, b: a == b, "!=": lambda a, b: a != b},
    {
        "<": lambda a, b: _number(a) < _number(b),
        ">": lambda a, b: _number(a) > _number(b),
        "<=": lambda a, b: _number(a) <= _number(b),
        ">=": lambda a, b: _number(a) >= _number(b),
    },
    {"+": lambda a, b: _number(a) + _number(b), "-": lambda a, b: _number(a) - _number(b)},
    {
        "*": lambda a, b: _number(a) * _number(b),
        "/": lambda a, b: _number(a) / _number(b),
        "%": lambda a, b: _number(a) % _number(b),
    },
]


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise HclError(f"not a bool: {value!r}")
    return value


@dataclass
class Scope:
    """The values an expression can see: ``var.*`` and the (unevaluated) ``local.*`` texts."""

    variables: Mapping[str, Any]
    locals: Mapping[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    def local(self, name: str) -> Any:
        if name not in self._cache:
            if name not in self.locals:
                raise Unsupported(f"local.{name} is not defined")
            value = self.locals[name]
            if isinstance(value, str):
                value = evaluate(value, self)
            elif not isinstance(value, int | float | bool):
                raise Unsupported(f"local.{name} is not a scalar expression")
            self._cache[name] = value
        return self._cache[name]


def evaluate(text: str, scope: Scope) -> Any:
    """The value of a python-hcl2 attribute text: ``${expr}`` or a template with literals."""
    parts = _template_parts(text)
    if len(parts) == 1 and not isinstance(parts[0], str):
        return _Parser(parts[0].source, scope).parse_all()
    return "".join(
        part if isinstance(part, str) else to_string(_Parser(part.source, scope).parse_all())
        for part in parts
    )


def references(text: str) -> set[str]:
    """``var.x`` and ``local.y`` names an expression text mentions."""
    return set(re.findall(r"\b((?:var|local)\.[A-Za-z_][A-Za-z0-9_-]*)", text))


@dataclass(frozen=True)
class _Interpolation:
    source: str


def _template_parts(body: str) -> list[str | _Interpolation]:
    """Split a template body into literal text (escapes resolved) and ``${...}`` sources."""
    parts: list[str | _Interpolation] = []
    literal: list[str] = []
    i = 0
    while i < len(body):
        if body.startswith("$${", i):
            literal.append("${")
            i += 3
        elif body.startswith("${", i):
            end = _matching_brace(body, i + 1)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_Interpolation(body[i + 2 : end]))
            i = end + 1
        elif body.startswith("%{", i):
            raise Unsupported("template directives")
        elif body[i] == "\\" and i + 1 < len(body):
            literal.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(body[i + 1], "?"))
            i += 2
        else:
            literal.append(body[i])
            i += 1
    if literal or not parts:
        parts.append("".join(literal))
    return parts


def _matching_brace(text: str, i: int) -> int:
    """i points at ``{``; the index of its ``}``, skipping strings and nested braces."""
    depth, in_string = 0, False
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise Unsupported(f"unbalanced braces in {text!r}")


class _Parser:
    """Recursive descent over the tokens of one expression, evaluating as it goes.

    Branches a conditional does not select are parsed with ``live=False``: their syntax is
    checked, their values are not computed (HCL discards their errors)."""

    def __init__(self, source: str, scope: Scope) -> None:
        self.source, self.scope, self.pos = source, scope, 0

    def parse_all(self) -> Any:
        value = self.conditional(live=True)
        if self.source[self.pos :].strip():
            raise Unsupported(f"unexpected {self.source[self.pos :]!r} in {self.source!r}")
        return value

    # --- tokens ---------------------------------------------------------------------------
    def peek(self) -> tuple[str, str] | None:
        match = _TOKEN.match(self.source, self.pos)
        if not match or match.end() == self.pos:
            if self.source[self.pos :].strip():
                raise Unsupported(f"cannot read {self.source[self.pos :]!r}")
            return None
        kind = match.lastgroup or ""
        return kind, match.group(kind)

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (expected is not None and token[1] != expected):
            raise Unsupported(f"expected {expected!r} at {self.source[self.pos :]!r}")
        match = _TOKEN.match(self.source, self.pos)
        assert match
        self.pos = match.end()
        return token

    def at(self, op: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "op" and token[1] == op

    # --- grammar --------------------------------------------------------------------------
    def conditional(self, live: bool) -> Any:
        condition = self.binary(0, live)
        if not self.at("?"):
            return condition
        self.take("?")
        chosen = _bool(condition) if live else False
        yes = self.conditional(live and chosen)
        self.take(":")
        no = self.conditional(live and not chosen)
        return (yes if chosen else no) if live else None

    def binary(self, level: int, live: bool) -> Any:
        if level == len(_LEVELS):
            return self.unary(live)
        left = self.binary(level + 1, live)
        while True:
            token = self.peek()
            if not token or token[0] != "op" or token[1] not in _LEVELS[level]:
                return left
            self.take()
            right = self.binary(level + 1, live)
            left = _LEVELS[level][token[1]](left, right) if live else None

    def unary(self, live: bool) -> Any:
        if self.at("!"):
            self.take()
            value = self.unary(live)
            return (not _bool(value)) if live else None
        if self.at("-"):
            self.take()
            value = self.unary(live)
            return -_number(value) if live else None
        return self.primary(live)

    def primary(self, live: bool) -> Any:
        kind, text = self.take()
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "quote":
            return self.string(live)
        if kind == "op" and text == "(":
            value = self.conditional(live)
            self.take(")")
            return value
        if kind == "op" and text == "[":
            items = []
            while not self.at("]"):
                items.append(self.conditional(live))
                if not self.at("]"):
                    self.take(",")
            self.take("]")
            return items
        if kind == "name":
            return self.name(text, live)
        raise Unsupported(f"unexpected {text!r} in {self.source!r}")

    def name(self, text: str, live: bool) -> Any:
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if text in ("var", "local") and self.at("."):
            self.take(".")
            _, attr = self.take()
            if self.at(".") or self.at("["):
                raise Unsupported(f"{text}.{attr} with attribute or index access")
            if not live:
                return None
            if text == "var":
                if attr not in self.scope.variables:
                    raise Unsupported(f"var.{attr} has no value in this scope")
                return self.scope.variables[attr]
            return self.scope.local(attr)
        if self.at("("):
            if text not in FUNCTIONS:
                raise Unsupported(f"function {text}()")
            self.take("(")
            args = []
            while not self.at(")"):
                args.append(self.conditional(live))
                if not self.at(")"):
                    self.take(",")
            self.take(")")
            return FUNCTIONS[text](*args) if live else None
        raise Unsupported(f"reference {text!r}")

    def string(self, live: bool) -> Any:
        """After an opening quote: read to the closing one (``${}`` aware), then render."""
        start = self.pos
        i = start
        while i < len(self.source) and self.source[i] != '"':
            if self.source[i] == "\\":
                i += 2
            elif self.source.startswith("${", i):
                i = _matching_brace(self.source, i + 1) + 1
            else:
                i += 1
        if i >= len(self.source):
            raise Unsupported(f"unterminated string in {self.source!r}")
        self.pos = i + 1
        body = self.source[start:i]
        if not live:
            return None
        return "".join(
            part
            if isinstance(part, str)
            else to_string(_Parser(part.source, self.scope).parse_all())
            for part in _template_parts(body)
        )
