"""Poison generation: reproducible by seed, every kind on both queues, each message invalid as
labelled, unique and acceptable to SQS."""

from __future__ import annotations

import json

import pytest

from bridge.chaos.fuzz import KINDS, MARKER_ATTRIBUTE, TOKEN_KINDS, generate
from bridge.contract import ContractError, parse_job, parse_result

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


@pytest.mark.parametrize("version", [True, 1.0])
def test_versions_that_only_compare_equal_to_1_are_refused(version: object) -> None:
    """Found by the fuzzer: JSON ``true`` and ``1.0`` passed as contract version 1."""
    job = {"version": version, "token": "t" * 20, "job_id": "j", "execution_arn": "a",
           "map_index": 0, "attempt": 0, "type": "x"}  # fmt: skip
    with pytest.raises(ContractError, match="version"):
        parse_job(json.dumps(job))
