"""The strict JSON reader: what it refuses, how it names it, and that no depth can crash it."""

from __future__ import annotations

import json
import math
import sys
import time

import pytest

from bridge import strict_json
from bridge.contract import MAX_JSON_DEPTH, MAX_PAYLOAD_DEPTH
from bridge.strict_json import AMBIGUOUS, JSONError, loads, loads_lenient, value_problem


def nested(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


def refusal(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> JSONError:
    with pytest.raises(JSONError) as caught:
        loads(text, max_depth=max_depth)
    return caught.value


def test_the_limit_is_well_below_what_pydantic_and_json_handle() -> None:
    assert MAX_PAYLOAD_DEPTH == MAX_JSON_DEPTH - 1
    # pydantic-core parses and serialises about 254 levels; json recurses per level.
    assert MAX_JSON_DEPTH * 3 < 254 < sys.getrecursionlimit()


def test_depth_at_the_limit_passes_and_one_more_fails() -> None:
    assert loads(nested(MAX_JSON_DEPTH), max_depth=MAX_JSON_DEPTH) is not None
    error = refusal(nested(MAX_JSON_DEPTH + 1))
    assert error.kind == "depth"
    assert str(error) == f"nested deeper than {MAX_JSON_DEPTH} levels at byte {MAX_JSON_DEPTH}"


def test_objects_and_arrays_both_count() -> None:
    text = '{"a": [{"b": [1]}]}'  # 4 levels
    assert loads(text, max_depth=4) == {"a": [{"b": [1]}]}
    assert refusal(text, max_depth=3).kind == "depth"


@pytest.mark.parametrize("levels", [100_000, 500_000])
def test_absurd_depth_fails_cleanly_and_quickly(levels: int) -> None:
    started = time.monotonic()
    error = refusal(nested(levels))
    assert error.kind == "depth" and f"{MAX_JSON_DEPTH} levels" in str(error)
    assert time.monotonic() - started < 5
    # objects too, and an unbalanced text (never closed) the same way
    assert refusal('{"a":' * levels).kind == "depth"
    assert refusal("[" * levels).kind == "depth"


def test_the_error_names_the_byte_offset_in_utf8() -> None:
    text = '{"é": ' + nested(MAX_JSON_DEPTH) + "}"
    # "{" + '"é"' (4 bytes) + ": " + 63 brackets, then the 65th level
    assert str(refusal(text)).endswith(f"at byte {1 + 4 + 2 + MAX_JSON_DEPTH - 1}")


@pytest.mark.parametrize(
    "text",
    [
        '{"s": "' + "[" * 200 + '"}',
        '{"s": "' + "{" * 200 + '", "t": 1}',
        '["\\"' + "[" * 200 + '"]',  # an escaped quote does not end the string
        '["\\\\", ' + "[" * 3 + "]" * 3 + "]",  # an escaped backslash does end the escape
        '{"' + "[" * 200 + '": "' + "]" * 500 + '"}',  # keys are strings too
    ],
)
def test_brackets_inside_strings_do_not_count(text: str) -> None:
    assert loads(text, max_depth=5) == json.loads(text)


def test_a_quote_after_an_escaped_backslash_ends_the_string() -> None:
    # "\\" is a complete string: the brackets after it are structure and count.
    text = '["\\\\", ' + nested(10) + "]"
    assert refusal(text, max_depth=5).kind == "depth"


def test_an_unterminated_string_is_a_syntax_error_not_a_depth_error() -> None:
    error = refusal('["abc' + "[" * 500)
    assert error.kind == "syntax" and str(error).startswith("not JSON (")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('{"version": 2, "version": 1}', "version"),
        ('{"a": [{"b": {"c": 1, "d": 2, "c": 3}}]}', "c"),
        ('[[[{"token": "x", "token": "y"}]]]', "token"),
    ],
)
def test_duplicate_keys_at_any_depth_are_refused(text: str, key: str) -> None:
    error = refusal(text)
    assert error.kind == "duplicate" and str(error) == f"duplicate key {key!r}"


def test_the_same_key_in_different_objects_is_fine() -> None:
    assert loads('[{"a": 1}, {"a": 2}]', max_depth=2) == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"x": NaN}', "NaN at $.x: JSON has no NaN or Infinity"),
        ('{"items": [1, 2, 3, {"score": Infinity}]}', "Infinity at $.items[3].score"),
        ("[-Infinity]", "-Infinity at $[0]"),
        ("NaN", "NaN at $:"),
        ('{"big": 1e400}', "1e400 at $.big: out of the range of a 64-bit float"),
        ('{"a b": [-1e999]}', '-1e999 at $["a b"][0]'),
    ],
)
def test_non_finite_numbers_are_refused_with_their_path(text: str, message: str) -> None:
    error = refusal(text)
    assert error.kind == "non_finite" and message in str(error)


def test_large_finite_numbers_and_big_integers_pass_unchanged() -> None:
    assert loads("[1.7976931348623157e308, 12345678901234567890]", max_depth=1) == [
        1.7976931348623157e308,
        12345678901234567890,
    ]


def test_whatever_json_cannot_decode_is_a_syntax_error() -> None:
    for text in ("{not json", "", "[1,]", "1" * 5000, "\ufeff{}"):
        assert refusal(text).kind == "syntax", text
    assert str(refusal("{")).startswith("not JSON (Expecting property name")
    decode_error = refusal("[1, 2").decode_error
    assert decode_error is not None and decode_error.colno == 6


def test_bytes_must_be_utf8_and_other_types_are_refused() -> None:
    assert loads(b'{"a": "\xc3\xa9"}', max_depth=1) == {"a": "é"}
    assert str(refusal(b'{"a": "\xff"}')) == "not UTF-8: invalid start byte at byte 7"
    with pytest.raises(JSONError):
        loads(None, max_depth=1)  # type: ignore[arg-type]


def test_lone_surrogates_are_refused_but_pairs_and_escaped_backslashes_pass() -> None:
    assert refusal('{"s": "\\ud800"}').kind == "unicode"
    assert "$.s" in str(refusal('{"s": "\\ud800"}'))
    assert loads('"\\ud83d\\ude00"', max_depth=1) == "\U0001f600"
    assert loads('"\\\\ud800"', max_depth=1) == "\\ud800"


def test_the_lenient_reader_marks_duplicates_ambiguous_and_keeps_depth() -> None:
    data = loads_lenient('{"token": "a", "token": "b", "x": NaN, "ok": 1}', max_depth=1)
    assert data["token"] is AMBIGUOUS and math.isnan(data["x"]) and data["ok"] == 1
    with pytest.raises(JSONError, match="nested deeper"):
        loads_lenient(nested(100_000), max_depth=MAX_JSON_DEPTH)


def test_value_problem_names_the_first_bad_value_in_document_order() -> None:
    assert value_problem({"a": [1, 2.5, "x", None, True]}, 3) is None
    assert value_problem(float("nan"), 3) == "NaN at $: JSON has no NaN or Infinity"
    problem = value_problem({"ok": 1, "x": float("inf"), "y": float("nan")}, 3)
    assert problem == "Infinity at $.x: JSON has no NaN or Infinity"
    assert value_problem({"items": [{}, {}, {}, {"score": -math.inf}]}, 3) == (
        "-Infinity at $.items[3].score: JSON has no NaN or Infinity"
    )
    assert value_problem((1, [float("nan")]), 3) == "NaN at $[1][0]: JSON has no NaN or Infinity"


def test_value_problem_checks_depth_and_cycles_without_recursion() -> None:
    deep: list[object] = []
    inner = deep
    for _ in range(200_000):
        inner.append([])
        inner = inner[0]  # type: ignore[assignment]
    problem = value_problem(deep, MAX_PAYLOAD_DEPTH)
    assert problem is not None and problem.startswith(f"nested deeper than {MAX_PAYLOAD_DEPTH}")
    cycle: list[object] = []
    cycle.append(cycle)
    assert value_problem(cycle, 5) == "nested deeper than 5 levels at $[0][0][0][0][0]"
    assert value_problem(nested_value(5), 5) is None


def nested_value(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def test_value_problem_finds_unencodable_strings_and_keys() -> None:
    assert value_problem({"name": "file\udcff"}, 3) == (
        "a lone surrogate at $.name: UTF-8 cannot encode it"
    )
    assert "in a key of $" in str(value_problem({"k\ud800": 1}, 3))
    assert value_problem({"é": "ü", "emoji": "\U0001f600"}, 3) is None


def test_paths_quote_keys_that_are_not_identifiers() -> None:
    render = strict_json.render_path
    assert render(None) == "$"
    assert render(((None, "a"), 0)) == "$.a[0]"
    assert render((None, "two words")) == '$["two words"]'
    assert render((None, "k" * 100)).endswith('..."]')
    assert render((None, "é\ud800")) == '$["\\u00e9\\ud800"]'  # ASCII: safe in any cause
