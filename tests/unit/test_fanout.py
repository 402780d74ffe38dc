"""Jobs files for S3-fed fan-outs (bridge.ops.fanout): what is accepted, what is refused and how the
refusal reads; the upload and the execution input it starts (moto in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bridge.ops.fanout import FanOutError, JobResult, load_jobs_file, parse_jobs, start_from_items

REGION = "us-east-1"


def test_a_json_array_and_json_lines_give_the_same_jobs() -> None:
    jobs = [{"n": 1}, {"n": 2, "type": "render"}]
    assert parse_jobs(json.dumps(jobs)) == jobs
    assert parse_jobs('{"n": 1}\n\n{"n": 2, "type": "render"}\n') == jobs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "jobs file is empty: give a JSON array of job objects or JSON Lines"),
        ("[]", "jobs file holds no jobs"),
        ("[1, 2", "jobs file is not valid JSON: Expecting ',' delimiter at line 1 column 6"),
        ('[{"n": 1}, 7]', "jobs file: job 1 is int, not a JSON object"),
        ('[{"n": 1}, [2]]', "jobs file: job 1 is an array, not a JSON object"),
        ('{"n": 1}\n"two"\n', "jobs file: line 2 is str, not a JSON object"),
        ('{"n": 1}\n\n[3]\n', "jobs file: line 3 is an array, not a JSON object"),
        ('{"n": 1}\n{"n": \n', "jobs file line 2 is not valid JSON"),
    ],
)
def test_a_bad_jobs_file_is_refused_in_one_line_naming_what_is_wrong(
    text: str, message: str
) -> None:
    with pytest.raises(FanOutError) as refused:
        parse_jobs(text)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"n": 1}\n\n{"n": NaN}\n', "jobs file line 3 is not valid JSON: NaN at $.n"),
        ('{"n": 1}\n{"n": 2, "n": 3}\n', "jobs file line 2 is not valid JSON: duplicate key 'n'"),
        (
            '{"n": 1}\n{"deep": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
            "jobs file line 2 is not valid JSON: nested deeper than 63 levels at byte",
        ),
        (
            '[{"n": 1}, {"deep": ' + "[" * 500_000 + "]" * 500_000 + "}]",
            "jobs file is not valid JSON: nested deeper than 64 levels at byte",
        ),
        ('[{"n": 1}, {"x": Infinity}]', "jobs file is not valid JSON: Infinity at $[1].x"),
    ],
)
def test_a_job_the_worker_would_refuse_is_refused_here_naming_its_line(
    text: str, message: str
) -> None:
    """Read as strictly as the worker reads a job: a bad one is refused before the run, not
    dead-lettered during it."""
    with pytest.raises(FanOutError) as refused:
        parse_jobs(text)
    assert message in str(refused.value)


def test_a_job_over_the_item_limit_is_refused_before_anything_is_uploaded() -> None:
    jobs = [{"n": 1}, {"blob": "x" * 262_144}]
    with pytest.raises(FanOutError, match="jobs file: job 1 is 262,155 bytes"):
        parse_jobs(json.dumps(jobs))


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FanOutError, match=r"cannot read jobs file .*missing\.json"):
        load_jobs_file(tmp_path / "missing.json")
    binary = tmp_path / "jobs.bin"
    binary.write_bytes(b"\xff\xfe[")
    with pytest.raises(FanOutError, match="is not UTF-8 text"):
        load_jobs_file(binary)


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any, str]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        s3.create_bucket(Bucket="fanout")
        definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
        arn = sfn.create_state_machine(
            name="bridge",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/x",
        )["stateMachineArn"]
        yield sfn, s3, arn


def test_start_uploads_the_jobs_and_starts_an_execution_that_names_only_their_place(
    aws: tuple[Any, Any, str],
) -> None:
    sfn, s3, arn = aws
    jobs = [{"n": n} for n in range(5)]
    execution = start_from_items(sfn, s3, arn, "fanout", jobs, name="run-7")
    described = sfn.describe_execution(executionArn=execution)
    assert described["name"] == "run-7"
    assert json.loads(described["input"]) == {
        "items": {"bucket": "fanout", "key": "items/run-7.json"}
    }
    stored = s3.get_object(Bucket="fanout", Key="items/run-7.json")["Body"].read()
    assert json.loads(stored) == jobs


def test_a_bad_execution_name_is_refused_before_the_upload(aws: tuple[Any, Any, str]) -> None:
    sfn, s3, arn = aws
    with pytest.raises(FanOutError, match="execution name 'a b'"):
        start_from_items(sfn, s3, arn, "fanout", [{"n": 1}], name="a b")
    assert s3.list_objects_v2(Bucket="fanout").get("KeyCount", 0) == 0


def test_a_job_result_reads_as_json_without_the_other_fields() -> None:
    assert JobResult(2, "SUCCEEDED", {"x": 1}).as_dict() == {
        "index": 2,
        "status": "SUCCEEDED",
        "output": {"x": 1},
    }
    assert JobResult(3, "FAILED", error="E", cause="c").as_dict() == {
        "index": 3,
        "status": "FAILED",
        "error": "E",
        "cause": "c",
    }
