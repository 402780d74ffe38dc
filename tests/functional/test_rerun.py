"""bridge.ops.rerun against moto in-process: jobs too many for an execution input go through
S3 as ``run --jobs-file`` sends them, and the new execution reads them from there."""

from __future__ import annotations

import json

import boto3
import pytest

from bridge.aws import Clients
from bridge.ops import rerun
from bridge.ops.jobs import Job

pytestmark = pytest.mark.functional


def test_jobs_beyond_the_inline_limits_go_through_the_fanout_bucket(
    aws: Clients, stack: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="fanout")
    monkeypatch.setattr(rerun, "max_inline_jobs", lambda: 1)  # as if 2 jobs were too many
    source = stack["state_machine_arn"].replace(":stateMachine:", ":execution:") + ":big"
    jobs = [Job(source, "big", i, "FAILED", input={"n": i}) for i in (4, 7)]

    started = rerun.start_rerun(aws.sfn, s3, stack["state_machine_arn"], jobs, "fanout")

    assert started.via == "s3" and started.job_ids == ["big/RunJob/4", "big/RunJob/7"]
    described = aws.sfn.describe_execution(executionArn=started.execution_arn)
    items = json.loads(described["input"])["items"]
    assert items["bucket"] == "fanout" and items["key"].startswith("items/big-rerun-")
    body = s3.get_object(Bucket="fanout", Key=items["key"])["Body"].read()
    assert json.loads(body) == [{"n": 4}, {"n": 7}]
