"""The wire contract: what round-trips, and what is rejected with the field named."""

from __future__ import annotations

import json

import pytest

from bridge.callback import callback_for
from bridge.contract import (
    MAX_CAUSE_CHARS,
    MAX_OUTPUT_BYTES,
    MAX_PAYLOAD_DEPTH,
    ContractError,
    encode,
    mask_token,
    output_size,
    parse_job,
    parse_result,
    payload_problem,
    read_token,
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


# --- strict JSON: what a message may not contain ------------------------------------------------
def test_an_over_deep_message_is_a_contract_error_and_has_no_token() -> None:
    deep = '{"version": 1, "token": "t", "input": ' + "[" * 500_000 + "]" * 500_000 + "}"
    with pytest.raises(ContractError, match="nested deeper than 64 levels at byte") as caught:
        parse_job(deep)
    assert caught.value.field == "body"
    assert read_token(deep) is None  # never raises


def test_duplicate_keys_are_refused_even_where_the_last_value_would_pass() -> None:
    valid = encode(make_job())
    with pytest.raises(ContractError, match="duplicate key 'version'"):
        parse_job('{"version": 2, ' + valid[1:])
    # the token is still readable, unless the token itself is duplicated
    assert read_token('{"version": 2, ' + valid[1:]) == make_job().token
    assert read_token('{"token": "other", ' + valid[1:]) is None


def test_nan_in_a_job_is_refused_and_encode_never_writes_null_for_it() -> None:
    body = encode(make_job()).replace('"input":{"n":1}', '"input":{"x":NaN}')
    with pytest.raises(ContractError, match=r"NaN at \$\.input\.x"):
        parse_job(body)
    assert read_token(body) == make_job().token
    for output in (float("nan"), {"x": float("inf")}, {"items": [1, {"score": float("-inf")}]}):
        with pytest.raises(ContractError) as caught:
            encode(make_result(output=output))
        assert caught.value.field == "output" and "JSON has no NaN or Infinity" in str(caught.value)
    with pytest.raises(ContractError, match=r"input: NaN at \$\.n"):
        encode(make_job(input={"n": float("nan")}))


def test_nan_in_a_result_survives_only_in_its_output_to_be_refused_there() -> None:
    """The completion handler fails such a task with Bridge.InvalidOutput (bridge.callback):
    the output is what is wrong, and it is never sent as null."""
    body = encode(make_result()).replace('"output":{"ok":true}', '"output":{"x":NaN}')
    result = parse_result(body)
    assert payload_problem(result.output) == "NaN at $.x: JSON has no NaN or Infinity"
    with pytest.raises(ContractError, match="worker"):
        parse_result(body.replace('"id":"host:1"', '"id":NaN'))
    with pytest.raises(ContractError, match="version"):
        parse_result(body.replace('"version":1', '"version":NaN'))


def test_payload_depth_leaves_room_for_the_message_around_it() -> None:
    output: object = 1
    for _ in range(MAX_PAYLOAD_DEPTH):
        output = [output]
    assert parse_result(encode(make_result(output=output))).output == output
    with pytest.raises(ContractError, match=f"nested deeper than {MAX_PAYLOAD_DEPTH} levels"):
        encode(make_result(output=[output]))
    assert payload_problem([output]) is not None


def test_characters_sqs_refuses_are_written_as_json_escapes() -> None:
    output = {"s": "a\uffffb", "t": ["\ufffe"]}
    body = encode(make_result(output=output))
    assert "\ufffe" not in body and "\uffff" not in body
    assert parse_result(body).output == output


def test_non_ascii_outputs_count_their_utf8_bytes_not_their_escapes() -> None:
    """120,000 bytes of "é" fit Step Functions' 256 KiB; written as \\u00e9 they would not."""
    output = {"text": "é" * 60_000}
    assert output_size(output) == len('{"text":""}') + 120_000 < MAX_OUTPUT_BYTES
    callback = callback_for(make_result(output=output))
    assert callback.operation == "send_task_success"
    assert json.loads(callback.arguments["output"]) == output
    assert "é" in callback.arguments["output"]
