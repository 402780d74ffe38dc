"""bridge.ops.map_children and the jobs of a Distributed Map without an outcome: read from
its child executions, bounded, and said so when the endpoint cannot list them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.ops.jobs import JobReader
from bridge.ops.map_children import ChildrenUnavailable, child_job, children

pytestmark = pytest.mark.unit

PARENT = "arn:aws:states:us-east-1:123456789012:execution:bridge:wide"
RUN = "arn:aws:states:us-east-1:123456789012:mapRun:bridge/FanOut:run-1"
CHILD = "arn:aws:states:us-east-1:123456789012:execution:bridge/FanOut:"


def child(index: int, status: str, output: Any = None, **extra: Any) -> dict[str, Any]:
    described = {
        "executionArn": f"{CHILD}{index}",
        "status": status,
        "input": json.dumps({"item": {"n": index, "type": "render"}, "index": index}),
        **extra,
    }
    if output is not None:
        described["output"] = json.dumps(output)
    return described


class FakeSfn:
    def __init__(self, kids: list[dict[str, Any]], listing: bool = True) -> None:
        self.kids = {kid["executionArn"]: kid for kid in kids}
        self.listing = listing
        self.described: list[str] = []

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.described.append(executionArn)
        if executionArn == PARENT:
            jobs = [{"n": n, "type": "render"} for n in range(3)]
            return {"name": "wide", "status": "FAILED", "input": json.dumps({"jobs": jobs})}
        return self.kids[executionArn]

    def get_execution_history(self, **_: Any) -> dict[str, Any]:
        started = {"mapRunArn": RUN}
        return {
            "events": [{"id": 1, "type": "MapRunStarted", "mapRunStartedEventDetails": started}]
        }

    def list_executions(self, **kwargs: Any) -> dict[str, Any]:
        if not self.listing:
            error = {"Error": {"Code": "ValidationException", "Message": "no stateMachineArn"}}
            raise ClientError(error, "ListExecutions")  # type: ignore[arg-type]
        assert kwargs["mapRunArn"] == RUN
        items = [{"executionArn": arn, "mapRunArn": RUN} for arn in self.kids]
        return {"executions": items[: kwargs["maxResults"]]}


KIDS = [
    child(0, "SUCCEEDED", {"status": "SUCCEEDED", "output": 1}),
    child(1, "SUCCEEDED", {"status": "FAILED", "error": "Bridge.CommandFailed", "cause": "x"}),
    child(2, "FAILED", error="Bridge.JobTimeout", cause="y"),
]


def test_a_child_is_read_as_the_job_it_ran() -> None:
    assert [(c.index, c.status, c.error) for c in map(child_job, KIDS)] == [
        (0, "SUCCEEDED", None),
        (1, "FAILED", "Bridge.CommandFailed"),  # a Pass JobFailed: the output says so
        (2, "FAILED", "Bridge.JobTimeout"),  # a Fail JobFailed (from S3): the child failed
    ]
    assert child_job(KIDS[0]).item == {"n": 0, "type": "render"}


def test_a_failed_distributed_map_lists_its_jobs_from_its_children() -> None:
    reader = JobReader(FakeSfn(KIDS))
    jobs = reader.jobs(PARENT)

    assert [(j.job_id, j.status, j.type, j.source) for j in jobs] == [
        ("wide/RunJob/0", "SUCCEEDED", "render", "child executions"),
        ("wide/RunJob/1", "FAILED", "render", "child executions"),
        ("wide/RunJob/2", "FAILED", "render", "child executions"),
    ]
    assert reader.reads.child_executions == 3 and jobs[1].cause == "x"
    assert [j.output for j in jobs] == [1, None, None]


def test_children_are_read_up_to_the_limit_and_the_rest_is_unknown() -> None:
    sfn = FakeSfn(KIDS)
    reader = JobReader(sfn, max_children=2)
    jobs = reader.jobs(PARENT)

    assert [j.status for j in jobs] == ["SUCCEEDED", "FAILED", "UNKNOWN"]
    assert len([arn for arn in sfn.described if arn != PARENT]) == 2  # one call per child
    assert "stopped at 2 child executions" in reader.reads.describe(None)


def test_an_endpoint_that_cannot_list_children_is_named() -> None:
    reader = JobReader(FakeSfn(KIDS, listing=False))
    jobs = reader.jobs(PARENT)

    assert {j.status for j in jobs} == {"UNKNOWN"} and jobs[2].input == {"n": 2, "type": "render"}
    assert "child executions of " + RUN + " not read" in reader.reads.describe(None)
    with pytest.raises(ChildrenUnavailable, match="ValidationException"):
        list(children(FakeSfn(KIDS, listing=False), RUN))
