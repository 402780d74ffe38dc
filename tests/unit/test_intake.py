"""Reading job messages: the contract, or another shape through --token-path/--input-path."""

from __future__ import annotations

import json

import pytest

from consumers.intake import Intake, Rejection
from tests.support.messages import body, make_job

TOKEN = "AAAA" + "t" * 60


def message(payload: object, message_id: str = "m-1") -> dict[str, str]:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return {"MessageId": message_id, "Body": text}


def test_contract_jobs_parse_as_they_are() -> None:
    job = make_job()
    assert Intake().parse(message(body(job))) == job


def test_a_readable_token_is_kept_when_another_field_is_wrong() -> None:
    broken = {**json.loads(body(make_job(token=TOKEN))), "map_index": -1}
    with pytest.raises(Rejection) as refused:
        Intake().parse(message(broken))
    assert refused.value.field == "map_index" and refused.value.token == TOKEN


def test_the_documentation_shape_is_adopted_and_the_handler_never_sees_the_token() -> None:
    intake = Intake(token_path="$.TaskToken")
    job = intake.parse(message({"MessageTitle": "hello", "TaskToken": TOKEN}, "msg-7"))
    assert (job.token, job.job_id, job.type) == (TOKEN, "msg-7", "default")
    assert job.input == {"MessageTitle": "hello"}


def test_an_input_path_selects_part_of_the_message() -> None:
    intake = Intake(token_path="$.meta.token", input_path="$.work", default_type="render")
    job = intake.parse(message({"meta": {"token": TOKEN}, "work": [1, 2]}))
    assert (job.input, job.type) == ([1, 2], "render")


@pytest.mark.parametrize(
    ("payload", "field", "has_token"),
    [
        ("not json", "body", False),
        ({"MessageTitle": "x"}, "$.TaskToken", False),
        ({"TaskToken": 42}, "$.TaskToken", False),
        ({"TaskToken": TOKEN}, "$.work", True),
    ],
)
def test_messages_that_cannot_be_jobs_say_why(payload: object, field: str, has_token: bool) -> None:
    intake = Intake(token_path="$.TaskToken", input_path="$.work" if has_token else "$")
    with pytest.raises(Rejection) as refused:
        intake.parse(message(payload))
    assert refused.value.field == field
    assert (refused.value.token is not None) == has_token


@pytest.mark.parametrize("path", ["TaskToken", "$..token", "$.items[0]", "$['token']"])
def test_paths_beyond_dotted_names_are_refused_at_start(path: str) -> None:
    with pytest.raises(ValueError, match="--token-path"):
        Intake(token_path=path)
