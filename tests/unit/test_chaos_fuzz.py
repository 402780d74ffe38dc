"""Poison generation: reproducible by seed, every kind on both queues, each message invalid as
labelled, unique and acceptable to SQS."""

from __future__ import annotations

import json
import re

import pytest

from bridge.chaos.fuzz import KINDS, MARKER_ATTRIBUTE, TOKEN_KINDS, generate
from bridge.contract import MAX_JSON_DEPTH, ContractError, parse_job, parse_result

SQS_FORBIDDEN = {chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"} | {"\ufffe", "\uffff"}


@pytest.fixture(scope="module")
def poison() -> list:
    return generate(54, 11)


def test_the_same_seed_gives_the_same_messages(poison: list) -> None:
    assert generate(54, 11) == poison
    assert generate(54, 12) != poison


def test_every_kind_reaches_both_queues(poison: list) -> None:
    assert {(p.queue, p.kind) for p in poison} == {(q, k) for q in ("jobs", "results")
                                                   for k in KINDS}  # fmt: skip


def test_malformed_kinds_break_the_contract_and_token_kinds_keep_it(poison: list) -> None:
    for p in poison:
        parse = parse_job if p.queue == "jobs" else parse_result
        if p.kind in TOKEN_KINDS:
            assert parse(p.body).job_id == p.job_id, p.kind
            assert p.expect == "rejected"
        elif (p.queue, p.kind) == ("results", "non_finite"):
            # A result may carry NaN: the callback fails the task Bridge.InvalidOutput.
            result = parse(p.body)
            assert result.job_id == p.job_id and p.expect == "rejected"
            assert any(w in p.body for w in ("NaN", "Infinity"))
        else:
            with pytest.raises(ContractError):
                parse(p.body)
            assert p.expect == "dead_letter"


def test_each_message_is_marked_uniquely_and_fits_sqs(poison: list) -> None:
    markers = [p.marker for p in poison]
    assert len(set(markers)) == len(markers)
    for p in poison:
        assert p.marker in p.body
        assert p.attributes[MARKER_ATTRIBUTE]["StringValue"] == p.marker
        assert next(iter(p.attributes)) == MARKER_ATTRIBUTE  # kept first by quarantine
        assert len(p.attributes) <= 10
        assert not SQS_FORBIDDEN & set(p.body)
        assert len(p.body.encode()) <= 262_144


def test_the_long_token_kind_uses_the_longest_token_aws_issues(poison: list) -> None:
    long = [p for p in poison if p.kind == "long_token"]
    assert long and all(len(json.loads(p.body)["token"]) == 2048 for p in long)
    # every fuzzed token has AWS's shape: base64, hundreds of characters or more
    for p in poison:
        assert p.token and re.fullmatch(r"AQ[A-Za-z0-9+/]+==", p.token), p.token[:40]
        assert 300 <= len(p.token) <= 2048


@pytest.fixture(scope="module")
def many() -> list:
    return generate(96, 4)


def test_deep_nesting_reaches_100000_levels_and_fits_a_message(many: list) -> None:
    deep = [p for p in many if p.kind == "deep_nesting"]
    depths = {max_depth(p.body) for p in deep}
    assert min(depths) > MAX_JSON_DEPTH and max(depths) >= 100_000
    assert {p.queue for p in deep} == {"jobs", "results"}
    assert all(len(p.body.encode()) <= 262_144 - 1024 for p in deep)  # room for attributes


def test_duplicate_keys_repeat_a_key_whose_last_value_alone_is_valid(many: list) -> None:
    duplicated = [p for p in many if p.kind == "duplicate_keys"]
    assert {p.queue for p in duplicated} == {"jobs", "results"}
    for p in duplicated:
        pairs = json.loads(p.body, object_pairs_hook=lambda kv: kv)
        keys = [k for k, _ in pairs]
        nested = [v for _, v in pairs if isinstance(v, list)]
        assert len(keys) > len(set(keys)) or any(len({k for k, _ in n}) < len(n) for n in nested), (
            p.body[:200]
        )


def max_depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (c == "\\", c != '"')
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


@pytest.mark.parametrize("version", [True, 1.0])
def test_versions_that_only_compare_equal_to_1_are_refused(version: object) -> None:
    """Found by the fuzzer: JSON ``true`` and ``1.0`` passed as contract version 1."""
    job = {"version": version, "token": "t" * 20, "job_id": "j", "execution_arn": "a",
           "map_index": 0, "attempt": 0, "type": "x"}  # fmt: skip
    with pytest.raises(ContractError, match="version"):
        parse_job(json.dumps(job))
