"""bridge.ops.rerun: names, grouping, and when jobs must go through S3."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.ops.jobs import Job, JobsError
from bridge.ops.rerun import group, needs_s3, rerun_name, start_rerun

pytestmark = pytest.mark.unit

ARN = "arn:aws:states:us-east-1:123456789012:execution:bridge:"


def job(execution: str, index: int, item: Any = None) -> Job:
    return Job(ARN + execution, execution, index, "FAILED", input=item)


def test_a_rerun_is_named_after_its_source_and_fits_80_safe_characters() -> None:
    assert rerun_name("nightly", "0123abcd") == "nightly-rerun-0123abcd"
    long = rerun_name("x" * 80 + ".é", "0123abcd")
    assert len(long) == 80 and long.endswith("x-rerun-0123abcd")
    assert rerun_name("a.b c", "0123abcd") == "a-b-c-rerun-0123abcd"
    assert rerun_name("n") != rerun_name("n")  # a new name each time


def test_jobs_are_grouped_by_execution_once_each_in_order() -> None:
    jobs = [job("a", 3), job("b", 0), job("a", 1), job("a", 3)]
    assert {arn: [j.index for j in group_] for arn, group_ in group(jobs).items()} == {
        ARN + "a": [3, 1],
        ARN + "b": [0],
    }


def test_only_what_exceeds_an_execution_input_goes_through_s3() -> None:
    assert not needs_s3([{"n": n} for n in range(100)])
    assert needs_s3([{"blob": "x" * 200_000}, {"blob": "y" * 100_000}])  # > 256 KiB together
    with pytest.raises(Exception, match="256 KiB"):
        needs_s3([{"blob": "x" * 300_000}])  # one job no route accepts


class Recorder:
    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    def start_execution(self, **kwargs: Any) -> dict[str, str]:
        self.started.append(kwargs)
        return {"executionArn": ARN + kwargs["name"]}


def test_a_rerun_starts_one_execution_with_the_original_items() -> None:
    sfn = Recorder()
    started = start_rerun(
        sfn, None, "sm", [job("a", 2, {"n": 2, "type": "render"}), job("a", 5, {"n": 5})]
    )

    (call,) = sfn.started
    assert call["input"] == '{"jobs":[{"n":2,"type":"render"},{"n":5}]}'
    assert call["name"].startswith("a-rerun-") and started.execution_arn == ARN + call["name"]
    assert started.job_ids == ["a/RunJob/2", "a/RunJob/5"] and started.via == "input"


def test_a_rerun_refuses_what_it_cannot_start() -> None:
    with pytest.raises(JobsError, match="not recorded"):
        start_rerun(Recorder(), None, "sm", [job("a", 0)])
    big = [job("a", 0, {"blob": "x" * 200_000}), job("a", 1, {"blob": "y" * 100_000})]
    with pytest.raises(JobsError, match="BRIDGE_FANOUT_BUCKET"):
        start_rerun(Recorder(), None, "sm", big)
