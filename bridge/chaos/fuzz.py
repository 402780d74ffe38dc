"""Poison and fuzzed messages for both queues, generated with hypothesis, reproducible by seed.

Why hypothesis: its strategies reach the shapes hand-written cases forget (surrogate-free but
exotic text, nested wrong types, boundary lengths). Why not ``strategy.example()``: that API is
for interactive use, warns, and is not seeded. The public, deterministic way is to run a
``@given`` function outside pytest under :func:`hypothesis.seed` with the example database off
and only the generate phase (no shrinking, no replay of stored failures): the function simply
collects what it is given, and the same seed gives the same messages.

Every message is built to break exactly one rule (or, for the token kinds, to be well formed but
carry a token Step Functions never issued), and carries a unique marker (``chaos-poison-N``) in
its body, so the reconciliation can find where each one ended: in a DLQ or its archive (the body
is kept byte for byte), or rejected with a logged reason naming its job id.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from bridge.contract import (
    MAX_ERROR_CHARS,
    MAX_JSON_DEPTH,
    MAX_TOKEN_CHARS,
    ContractError,
    parse_job,
    parse_result,
)

Queue = Literal["jobs", "results"]
#: Where a poison message must end: a DLQ or its archive, or acknowledged with a logged reason.
Expect = Literal["dead_letter", "rejected"]

#: Message attribute carrying the marker (kept first: quarantine keeps the first 8 attributes).
MARKER_ATTRIBUTE = "chaos-poison-id"

#: Stands for the marker while generating; :func:`generate` numbers the messages in order.
PLACEHOLDER = "chaos-poison-?"

MALFORMED_KINDS = (
    "not_json",
    "not_object",
    "wrong_type",
    "missing_field",
    "huge_field",
    "wrong_version",
    "bad_attributes",
    "deep_nesting",
    "duplicate_keys",
    "non_finite",
)
#: Well formed, but the token was never issued (or is 2,048 characters of nothing).
TOKEN_KINDS = ("unissued_token", "long_token")
KINDS = MALFORMED_KINDS + TOKEN_KINDS
#: Nesting depths of ``deep_nesting``: 100,000 (about 200 KB of arrays: what fits in a
#: message; first, so even the smallest campaign sends it), just over the contract's limit, and
#: where Python 3.11's recursion gave out (about 1,000) and 3.12's (about 5,000). Objects nest
#: at most :data:`MAX_OBJECT_DEPTH` levels (6 bytes a level).
DEPTHS = (100_000, MAX_JSON_DEPTH + 1, 1_000, 5_000)
MAX_OBJECT_DEPTH = 20_000

#: Characters SQS accepts in a body or a string attribute (#x9 #xA #xD #x20-#xD7FF
#: #xE000-#xFFFD and above): hypothesis draws from all of them.
_SQS_TEXT = st.characters(
    codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x7f"
).filter(lambda c: c in "\t\n\r" or (ord(c) >= 0x20 and not 0xFFFE <= ord(c) <= 0xFFFF))
_NAME = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=30).filter(
    lambda n: not n.lower().startswith(("aws", "amazon", "bridge", "chaos")) and n[0] != "-"
)
_JSON_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(_SQS_TEXT)
)


@dataclass(frozen=True)
class Poison:
    """One message to inject."""

    marker: str
    queue: Queue
    kind: str
    body: str
    attributes: dict[str, Any] = field(default_factory=dict)
    expect: Expect = "dead_letter"
    #: The job id a rejection is logged under (token kinds).
    job_id: str | None = None
    #: A never-issued token the logs must not show in full.
    token: str | None = None


def _token(draw: Any, length: int | None = None) -> str:
    """A token Step Functions never issued, shaped like the ones it does: base64, hundreds to
    2,048 characters (``AQ...``, ``=`` padded)."""
    size = length or draw(st.integers(300, MAX_TOKEN_CHARS))
    alphabet = string.ascii_letters + string.digits + "+/"
    # hypothesis draws at most a few thousand characters: a drawn stem, repeated to size.
    stem = draw(st.text(alphabet, min_size=24, max_size=96).filter(lambda t: len(set(t)) >= 12))
    return ("AQ" + stem * (size // len(stem) + 1))[: size - 2] + "=="


def _valid(queue: Queue, marker: str, token: str) -> dict[str, Any]:
    """A message of the contract's shape (the marker is an unknown, ignored field)."""
    common = {"version": 1, "token": token, "job_id": f"{marker}/job", "chaos": marker}
    if queue == "jobs":
        return {
            **common,
            "execution_arn": "arn:aws:states:us-east-1:123456789012:execution:chaos:never",
            "map_index": 0,
            "attempt": 0,
            "type": "chaos",
            "input": {"n": -1, "sleep_ms": 50},
        }
    return {**common, "outcome": "succeeded", "output": {"poison": marker}, "worker": {"id": "x"}}


_REQUIRED = {
    "jobs": ("version", "token", "job_id", "execution_arn", "map_index", "attempt", "type"),
    "results": ("version", "token", "job_id", "outcome", "worker"),
}
_WRONG = st.one_of(
    st.lists(_JSON_SCALAR, max_size=3), st.dictionaries(st.text(max_size=5), _JSON_SCALAR)
)


@st.composite
def poison_message(draw: Any, queue: Queue, kind: str, marker: str) -> Poison:
    """One ``kind`` of poison for ``queue``, marked with ``marker``."""
    token = _token(draw)
    message = _valid(queue, marker, token)
    attributes: dict[str, Any] = {MARKER_ATTRIBUTE: {"DataType": "String", "StringValue": marker}}
    expect: Expect = "dead_letter"
    if kind == "not_json":
        body = f"{marker} " + draw(st.text(_SQS_TEXT, max_size=200))
    elif kind == "not_object":
        body = json.dumps([marker, draw(_JSON_SCALAR)])
    elif kind == "wrong_type":
        name = draw(st.sampled_from(_REQUIRED[queue][1:]))
        message[name] = draw(_WRONG)
        body = json.dumps(message)
    elif kind == "missing_field":
        del message[draw(st.sampled_from(_REQUIRED[queue]))]
        body = json.dumps(message)
    elif kind == "huge_field":
        if queue == "results" and draw(st.booleans()):
            message.update(outcome="failed", output=None, error="E" * (MAX_ERROR_CHARS + 1))
        else:
            message["token"] = _token(draw, draw(st.integers(MAX_TOKEN_CHARS + 1, 200_000)))
        body = json.dumps(message)
    elif kind == "wrong_version":
        message["version"] = draw(
            st.one_of(st.sampled_from([0, 2, "1", 1.5, None, True]), st.integers(2, 10**6))
        )
        body = json.dumps(message)
    elif kind == "bad_attributes":
        message.pop("job_id")  # malformed too, so it has a destination
        body = json.dumps(message)
        binary = draw(st.binary(min_size=1, max_size=64)) + b"\xff\xfe\xc3\x28"  # not UTF-8
        attributes["raw"] = {"DataType": "Binary", "BinaryValue": binary}
        extra = draw(
            st.dictionaries(_NAME, st.text(_SQS_TEXT, min_size=1, max_size=50), max_size=9)
        )
        for name, value in extra.items():
            attributes.setdefault(name, {"DataType": "String", "StringValue": value})
    elif kind == "deep_nesting":
        body = _deep(draw, queue, message)
    elif kind == "duplicate_keys":
        body = _duplicate(draw, queue, message)
    elif kind == "non_finite":
        value = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
        field_name = "input" if queue == "jobs" else "output"
        message[field_name] = {"marker": marker, "x": "@VALUE@"}
        body = json.dumps(message).replace('"@VALUE@"', value)
        if queue == "results":  # well formed: the callback fails (InvalidOutput) or the task
            expect = "rejected"  # is closed (never issued); acknowledged with the reason
    elif kind in TOKEN_KINDS:
        if kind == "long_token":
            message["token"] = token = _token(draw, MAX_TOKEN_CHARS)
        body, expect = json.dumps(message), "rejected"
    else:
        raise ValueError(f"unknown poison kind {kind!r}")
    attributes = dict(list(attributes.items())[:10])  # SQS's limit
    return Poison(
        marker, queue, kind, body, attributes, expect, job_id=f"{marker}/job", token=token
    )


def _deep(draw: Any, queue: Queue, message: dict[str, Any]) -> str:
    """Nested past the limit: the job's input or the result's output (token readable), or the
    whole message wrapped (nothing readable). The depth is left as a placeholder, settled by
    :func:`generate` (:func:`settle_depth`), so every depth of :data:`DEPTHS` is sent in turn."""
    shape = draw(st.sampled_from(["array", "object"]))
    if draw(st.booleans()):
        return f"@OPEN-{shape}@" + json.dumps(message) + f"@CLOSE-{shape}@"
    field_name = "input" if queue == "jobs" else "output"
    message[field_name] = f"@NEST-{shape}@"
    return json.dumps(message)


def settle_depth(body: str, depth: int) -> str:
    """``body`` of :func:`_deep` with its nesting ``depth`` levels deep (objects: at most
    :data:`MAX_OBJECT_DEPTH`)."""
    for shape, opener, closer in (("array", "[", "]"), ("object", '{"a":', "}")):
        levels = min(depth, MAX_OBJECT_DEPTH) if shape == "object" else depth
        body = (
            body.replace(f'"@NEST-{shape}@"', opener * levels + "0" + closer * levels)
            .replace(f"@OPEN-{shape}@", opener * levels)
            .replace(f"@CLOSE-{shape}@", closer * levels)
        )
    return body


def _duplicate(draw: Any, queue: Queue, message: dict[str, Any]) -> str:
    """A key twice: ``version`` (2 then 1), ``token`` (two tokens), ``job_id``, or a key inside
    the input or output; the last value alone would be a valid message."""
    where = draw(st.sampled_from(["version", "token", "job_id", "nested"]))
    if where == "nested":
        field_name = "input" if queue == "jobs" else "output"
        message[field_name] = "@DUP@"
        return json.dumps(message).replace('"@DUP@"', '{"n": -1, "n": 1}')
    first: Any = {"version": 2, "token": _token(draw), "job_id": "other/RunJob/0/0"}[where]
    return "{" + json.dumps(where) + ": " + json.dumps(first) + ", " + json.dumps(message)[1:]


def still_poison(poison: Poison) -> bool:
    """The malformed kinds must break the contract (a generated message that happens to be
    valid would run: it is dropped, not injected under a false label)."""
    if poison.expect == "rejected":
        return True
    parse = parse_job if poison.queue == "jobs" else parse_result
    try:
        parse(poison.body)
    except ContractError:
        return True
    return False


def generate(count: int, seed_value: int) -> list[Poison]:
    """``count`` poison messages, every kind on both queues in turn, the same for one seed.

    One ``@given`` run per (queue, kind), collecting as many examples as that pair needs:
    hypothesis starts with the simplest value (the boundary case) and grows more varied."""
    pairs: list[tuple[Queue, str]] = [(q, k) for k in KINDS for q in ("jobs", "results")]
    wanted = [count // len(pairs) + (i < count % len(pairs)) for i in range(len(pairs))]
    by_pair: list[list[Poison]] = []
    for index, ((queue, kind), n) in enumerate(zip(pairs, wanted, strict=True)):
        drawn: list[Poison] = []
        if n:
            _collect(queue, kind, n, seed_value * 1_000 + index, drawn)
        if kind == "deep_nesting":
            drawn = [
                replace(p, body=settle_depth(p.body, DEPTHS[k % len(DEPTHS)]))
                for k, p in enumerate(drawn)
            ]
        by_pair.append(drawn)
    ordered = [
        by_pair[i][round_]
        for round_ in range(max(wanted, default=0))
        for i in range(len(pairs))
        if round_ < len(by_pair[i])
    ]
    marked = [_remark(p, f"chaos-poison-{n}") for n, p in enumerate(ordered)]
    return [p for p in marked if still_poison(p)]


def _collect(queue: Queue, kind: str, n: int, seed_value: int, into: list[Poison]) -> None:
    @seed(seed_value)
    @settings(
        max_examples=n,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(poison_message(queue, kind, PLACEHOLDER))
    def collect(message: Poison) -> None:
        if len(into) < n:
            into.append(message)

    collect()
    while into and len(into) < n:  # a tiny strategy space can end early: repeat
        into.append(into[len(into) % len(into)])


def _remark(poison: Poison, marker: str) -> Poison:
    """A copy of ``poison`` under another marker (the marker appears only as itself)."""
    body = poison.body.replace(poison.marker, marker)
    attributes = {**poison.attributes}
    attributes[MARKER_ATTRIBUTE] = {"DataType": "String", "StringValue": marker}
    job_id = poison.job_id.replace(poison.marker, marker) if poison.job_id else None
    return Poison(
        marker, poison.queue, poison.kind, body, attributes, poison.expect, job_id, poison.token
    )
