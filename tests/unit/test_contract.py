"""The wire contract: what round-trips, and what is rejected with the field named."""

from __future__ import annotations

import json

import pytest

from bridge.contract import (
    MAX_CAUSE_CHARS,
    ContractError,
    encode,
    mask_token,
    parse_job,
    parse_result,
)
from tests.support.messages import make_job, make_result


def test_job_round_trips() -> None:
    job = make_job(type="render", input={"frame": 7, "nested": [1, {"a": None}]})
    assert parse_job(encode(job)) == job


def test_job_input_may_be_any_json_value() -> None:
    assert parse_job(encode(make_job(input=[1, "two"]))).input == [1, "two"]


def test_result_round_trips_success_and_failure() -> None:
    ok = make_result()
    assert parse_result(encode(ok)) == ok
    failed = make_result(outcome="failed", output=None, error="Boom", cause="stack")
    assert parse_result(encode(failed)) == failed


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    data = json.loads(encode(make_job()))
    data["added_in_v1_1"] = "x"
    assert parse_job(json.dumps(data)).job_id == "exec-1/RunJob/0/0"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "body"),
        ("[1, 2]", "body"),
        (json.dumps({**json.loads(encode(make_job())), "version": 2}), "version"),
        (
            json.dumps({k: v for k, v in json.loads(encode(make_job())).items() if k != "token"}),
            "token",
        ),
        (json.dumps({**json.loads(encode(make_job())), "token": ""}), "token"),
        (json.dumps({**json.loads(encode(make_job())), "map_index": -1}), "map_index"),
    ],
)
def test_bad_jobs_name_the_field(body: str, field: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_job(body)
    assert info.value.field == field
    assert field in str(info.value)


def test_failed_result_needs_an_error() -> None:
    data = json.loads(encode(make_result()))
    data.update(outcome="failed", output=None)
    with pytest.raises(ContractError, match="error"):
        parse_result(json.dumps(data))


def test_succeeded_result_carries_no_error() -> None:
    data = json.loads(encode(make_result()))
    data.update(error="E")
    with pytest.raises(ContractError):
        parse_result(json.dumps(data))


def test_cause_is_bounded_by_the_aws_limit() -> None:
    data = json.loads(encode(make_result(outcome="failed", output=None, error="E")))
    data["cause"] = "c" * (MAX_CAUSE_CHARS + 1)
    with pytest.raises(ContractError) as info:
        parse_result(json.dumps(data))
    assert info.value.field == "cause"


def test_result_without_worker_is_rejected() -> None:
    data = json.loads(encode(make_result()))
    del data["worker"]
    with pytest.raises(ContractError) as info:
        parse_result(json.dumps(data))
    assert info.value.field == "worker"


def test_mask_token_never_shows_the_whole_token() -> None:
    token = "AAAAKgAAAAIAAAAAAAAAA" + "z" * 500 + "tail42"
    masked = mask_token(token)
    assert token not in masked
    assert masked.startswith("…tail42")
    assert str(len(token)) in masked
    assert mask_token(None) == "<none>"
