"""Each reader of a message the bridge did not write, given one built to break it: an over-deep
body, duplicate keys, NaN. Every one answers (a rejection, ``None``, a named error); none
raises what its caller does not expect."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest

from bridge.chaos.reconcile import Execution, _entries, _task_output
from bridge.claim_check import ClaimCheckError, Pointer, fetch
from bridge.dead_letter_record import DeadLetter
from bridge.ops.inspect.executions import _json, scheduled_message
from consumers.intake import Intake, Rejection

DEEP = "[" * 100_000 + "]" * 100_000


def deep_body(**fields: Any) -> str:
    return json.dumps(fields)[:-1] + f', "input": {DEEP}}}'


def test_intake_refuses_an_over_deep_job_naming_the_depth_and_no_token() -> None:
    with pytest.raises(Rejection) as caught:
        Intake().parse({"MessageId": "m-1", "Body": deep_body(version=1, token="t")})
    assert caught.value.field == "body" and "nested deeper than 64" in caught.value.problem
    assert caught.value.token is None


@pytest.mark.parametrize(
    ("body", "problem", "token"),
    [
        (deep_body(TaskToken="tok"), "nested deeper than 64", None),
        ('{"TaskToken": "tok", "n": 1, "n": 2}', "duplicate key 'n'", "tok"),
        ('{"TaskToken": "a", "TaskToken": "b"}', "duplicate key 'TaskToken'", None),
        ('{"TaskToken": "tok", "x": NaN}', "NaN at $.x", "tok"),
    ],
)
def test_intake_of_foreign_messages_is_as_strict(
    body: str, problem: str, token: str | None
) -> None:
    """``--token-path``: the token is still read when it is unambiguous, so the task is told."""
    with pytest.raises(Rejection) as caught:
        Intake(token_path="$.TaskToken").parse({"MessageId": "m-1", "Body": body})
    assert problem in caught.value.problem and caught.value.token == token


def test_a_dead_letter_record_of_any_shape_is_read_without_raising() -> None:
    deep = DeadLetter.from_record({"messageId": "m", "body": deep_body(job_id="j", token="t")})
    assert (deep.token, deep.job_id, deep.execution_arn) == (None, None, None)
    doubled = DeadLetter.from_record(
        {"messageId": "m", "body": '{"token": "t", "job_id": "a", "job_id": "b", "x": NaN}'}
    )
    assert (doubled.token, doubled.job_id) == ("t", None)  # which job id? neither


def test_execution_documents_read_back_are_strict_and_never_raise() -> None:
    assert _json(DEEP) is None
    assert _json('{"a": 1, "a": 2}') is None
    assert _json('{"jobs": [{"n": 1}]}') == {"jobs": [{"n": 1}]}
    event = {
        "type": "TaskScheduled",
        "taskScheduledEventDetails": {"parameters": json.dumps({"MessageBody": DEEP})},
    }
    assert scheduled_message(event) is None


def test_the_chaos_reconciler_reads_over_deep_outputs_as_unreadable() -> None:
    execution = Execution("arn", "run-1", [], 0.0)
    execution.described = {"output": DEEP}
    assert _entries(execution) is None
    assert _task_output({"taskSucceededEventDetails": {"output": DEEP}}) is None


def test_a_claim_checked_output_is_read_strictly() -> None:
    class S3:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
            return {"Body": io.BytesIO(self.body)}

    def pointer(body: bytes) -> Pointer:
        return Pointer("b", "k", len(body), hashlib.sha256(body).hexdigest())

    fine = b'{"rows": [1, 2]}'
    assert fetch(S3(fine), pointer(fine)) == {"rows": [1, 2]}
    for body, problem in [
        (DEEP.encode(), "nested deeper than 63 levels"),
        (b'{"x": NaN}', "NaN at $.x"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
    ]:
        with pytest.raises(ClaimCheckError, match="cannot be read: ") as caught:
            fetch(S3(body), pointer(body))
        assert problem in str(caught.value)
