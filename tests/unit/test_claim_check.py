"""Claim checks and result sizes without AWS: when an output goes to S3, what the pointer looks
like, how a result is fitted into a message and how batches are split by bytes."""

from __future__ import annotations

import hashlib
import json

import pytest

from bridge.claim_check import (
    DEFAULT_MARGIN_BYTES,
    ClaimCheck,
    ClaimCheckError,
    Pointer,
    is_pointer,
    message_bytes,
    object_key,
)
from bridge.contract import (
    CLIP_MARKER,
    MAX_MESSAGE_BYTES,
    MAX_OUTPUT_BYTES,
    encode,
    output_size,
    parse_result,
)
from consumers.results import MAX_BATCH_BYTES, fit_result, split_by_size
from consumers.runner import Outcome
from tests.support.messages import make_result

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:sm:run-7"
DIGEST = "ab" * 32


def result_with_output_of(size: int, token_chars: int = 2048):
    """A succeeded result whose output serialises to exactly ``size`` bytes, with a long token."""
    output = "x" * (size - 2)  # the JSON string's quotes
    assert output_size(output) == size
    return make_result(output=output, token="t" * token_chars, execution_arn=EXECUTION)


# --- when an output goes to S3 -----------------------------------------------------------------
def test_a_small_output_travels_inline() -> None:
    result = make_result()
    assert ClaimCheck().reason(result, 12) is None
    assert ClaimCheck().apply(result) is result


def test_the_default_threshold_keeps_the_whole_message_under_the_queue_limit_with_margin() -> None:
    check = ClaimCheck()
    assert check.message_budget == MAX_MESSAGE_BYTES - DEFAULT_MARGIN_BYTES
    overhead = message_bytes(result_with_output_of(1000)) - 1000
    assert overhead > 2048  # the token and the worker/timing fields count
    largest_inline = check.message_budget - overhead
    fits = result_with_output_of(largest_inline)
    assert message_bytes(fits) == check.message_budget
    assert check.reason(fits, largest_inline) is None
    over = result_with_output_of(largest_inline + 1)
    why = check.reason(over, largest_inline + 1)
    assert why is not None and "results queue accepts 262144" in why


def test_262000_bytes_fit_step_functions_but_not_a_result_message() -> None:
    result = result_with_output_of(262_000)
    assert output_size(result.output) <= MAX_OUTPUT_BYTES
    assert message_bytes(result) > MAX_MESSAGE_BYTES
    assert ClaimCheck().reason(result, 262_000) is not None


def test_an_output_over_step_functions_limit_always_goes_by_claim_check() -> None:
    why = ClaimCheck(max_message_bytes=MAX_MESSAGE_BYTES).reason(make_result(), 300_000)
    assert why == "output is 300000 bytes; Step Functions accepts 262144"


def test_an_explicit_threshold_sends_smaller_outputs_to_s3_too() -> None:
    check = ClaimCheck(object(), "bucket-1", threshold_bytes=1000)
    assert check.reason(result_with_output_of(1000), 1000) is None
    assert "over the claim-check threshold" in (
        check.reason(result_with_output_of(1001), 1001) or ""
    )


def test_without_a_bucket_a_too_large_output_fails_naming_the_setting() -> None:
    sent = ClaimCheck().apply(result_with_output_of(262_000))
    assert sent.outcome == "failed" and sent.output is None
    assert sent.error == "Bridge.OutputTooLarge"
    assert "--claim-check-bucket" in (sent.cause or "")
    assert "BRIDGE_CLAIM_CHECK_BUCKET" in (sent.cause or "")
    assert message_bytes(sent) < MAX_MESSAGE_BYTES


def test_failures_are_never_claim_checked() -> None:
    failure = make_result(outcome="failed", output=None, error="Boom", cause="c" * 30_000)
    assert ClaimCheck().apply(failure) is failure


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"bucket": "b"}, "needs an S3 client"),
        ({"bucket": ""}, "must not be empty"),
        ({"threshold_bytes": 10}, "threshold needs a bucket"),
        ({"threshold_bytes": -1, "bucket": "b", "s3": object()}, "threshold must be"),
        ({"max_message_bytes": 1_048_576}, "max message size"),
        ({"max_message_bytes": 512}, "max message size"),
        ({"margin_bytes": 200_000}, "margin"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(values: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ClaimCheck(**values)


# --- the pointer -------------------------------------------------------------------------------
def test_the_pointer_is_the_documented_shape_and_nothing_more() -> None:
    pointer = Pointer("bucket-1", "claim-checks/run-7/j/x.json", 1_048_576, DIGEST)
    output = pointer.as_output()
    assert output == {
        "s3": {
            "bucket": "bucket-1",
            "key": "claim-checks/run-7/j/x.json",
            "size": 1_048_576,
            "sha256": DIGEST,
        }
    }
    assert json.loads(json.dumps(output)) == output
    assert Pointer.parse(output) == pointer == Pointer.parse(output["s3"])
    assert is_pointer(output)
    assert pointer.url == "s3://bucket-1/claim-checks/run-7/j/x.json"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("s3://bucket/key", "expected an object"),
        ({"s3": {"key": "k", "size": 1, "sha256": DIGEST}}, "'bucket'"),
        ({"s3": {"bucket": "b", "key": "", "size": 1, "sha256": DIGEST}}, "'key'"),
        ({"s3": {"bucket": "b", "key": "k", "size": -1, "sha256": DIGEST}}, "'size'"),
        ({"s3": {"bucket": "b", "key": "k", "size": True, "sha256": DIGEST}}, "'size'"),
        ({"s3": {"bucket": "b", "key": "k", "size": 1, "sha256": "ABC"}}, "'sha256'"),
    ],
)
def test_a_malformed_pointer_is_named(value: object, problem: str) -> None:
    with pytest.raises(ClaimCheckError, match=problem):
        Pointer.parse(value)
    assert not is_pointer(value)


def test_an_output_with_more_than_the_pointer_is_not_a_pointer() -> None:
    output = {**Pointer("b", "k", 1, DIGEST).as_output(), "other": 1}
    assert not is_pointer(output)


def test_the_key_groups_by_execution_and_job_and_names_the_content() -> None:
    key = object_key(EXECUTION, "run-7/RunJob/3/0", DIGEST)
    assert key == f"claim-checks/run-7/run-7/RunJob/3/0/{DIGEST}.json"
    odd = object_key(None, "id with spaces?#", DIGEST, prefix="/custom/")
    assert odd == f"custom/no-execution/id_with_spaces__/{DIGEST}.json"


# --- fitting a result into one message ---------------------------------------------------------
def test_a_result_that_fits_is_sent_as_it_is() -> None:
    result = make_result()
    assert fit_result(result) == (result, encode(result))


def test_a_huge_cause_is_clipped_to_fit_keeping_head_and_tail() -> None:
    cause = "HEAD" + "m" * 30_000 + "TAIL"
    result = make_result(outcome="failed", output=None, error="Boom", cause=cause)
    fitted = fit_result(result, max_bytes=8192)
    assert fitted is not None
    shrunk, body = fitted
    assert len(body.encode()) <= 8192
    assert parse_result(body) == shrunk
    assert shrunk.error == "Boom"
    assert shrunk.cause and shrunk.cause.startswith("HEAD") and shrunk.cause.endswith("TAIL")
    assert CLIP_MARKER.split("{")[0] in shrunk.cause


def test_multibyte_causes_are_measured_in_bytes() -> None:
    result = make_result(outcome="failed", output=None, error="Boom", cause="é" * 30_000)
    fitted = fit_result(result, max_bytes=4096)
    assert fitted is not None and len(fitted[1].encode()) <= 4096


def test_a_succeeded_result_too_large_for_the_message_fails_instead_of_its_batch() -> None:
    fitted = fit_result(result_with_output_of(262_000))
    assert fitted is not None
    shrunk, body = fitted
    assert shrunk.outcome == "failed" and shrunk.error == "Bridge.OutputTooLarge"
    assert "BRIDGE_CLAIM_CHECK_BUCKET" in (shrunk.cause or "")
    assert len(body.encode()) <= MAX_MESSAGE_BYTES


def test_a_result_that_can_never_fit_is_reported_as_such() -> None:
    assert fit_result(make_result(token="t" * 2048), max_bytes=1024) is None


# --- splitting batches by bytes ----------------------------------------------------------------
def test_batches_stay_under_the_total_byte_limit_and_ten_entries() -> None:
    sizes = [100_000, 100_000, 100_000, 50, 50]
    batches = split_by_size(sizes, max_bytes=MAX_BATCH_BYTES)
    assert batches == [[0, 1], [2, 3, 4]]
    assert all(sum(sizes[i] for i in batch) <= MAX_BATCH_BYTES for batch in batches)
    assert split_by_size([1] * 25) == [list(range(10)), list(range(10, 20)), list(range(20, 25))]


def test_a_262000_byte_message_goes_alone_and_keeps_its_neighbours_order() -> None:
    sizes = [300, 262_000, 300, 300]
    assert split_by_size(sizes) == [[0], [1], [2, 3]]
    assert split_by_size([]) == []


# --- the runner's size rule ---------------------------------------------------------------------
def test_an_oversized_success_is_refused_but_keeps_its_output_for_a_claim_check() -> None:
    document = {"blob": "x" * 300_000}
    outcome = Outcome.success(document)
    assert not outcome.succeeded and outcome.error == "Bridge.OutputTooLarge"
    assert "BRIDGE_CLAIM_CHECK_BUCKET" in (outcome.cause or "")
    assert outcome.oversized_output is document
    assert Outcome.success({"small": 1}).oversized_output is None


def test_an_output_beyond_what_a_claim_check_carries_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("consumers.runner.MAX_CLAIM_CHECK_BYTES", 300_000)
    outcome = Outcome.success("x" * 400_000)
    assert outcome.error == "Bridge.OutputTooLarge" and outcome.oversized_output is None
    assert "write it to S3" in (outcome.cause or "")


def test_sha256_in_a_pointer_is_of_the_stored_bytes() -> None:
    document = b'{"a":1}'
    digest = hashlib.sha256(document).hexdigest()
    assert Pointer.parse({"bucket": "b", "key": "k", "size": 7, "sha256": digest}).size == 7
