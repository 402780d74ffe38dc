"""Large outputs by claim check on the embedded stack: a real worker process, the real state
machine, the completion handler, moto's S3 and queues as small as Terraform's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bridge.claim_check import fetch, is_pointer
from bridge.local_stack import LocalStack
from tests.support.aws import start
from tests.support.polling import wait_for_execution
from tests.support.stack import WorkerFactory, assert_queues_empty

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HANDLER = "tests.e2e.test_claim_check:rows"


def rows(job_input: Any, job: Any) -> Any:
    """The worker's handler: ``job_input["rows"]`` rows of 1,000 bytes each."""
    return {"job": job.job_id, "rows": ["r" * 1000] * int(job_input["rows"])}


def test_a_1_mib_output_reaches_the_execution_as_a_pointer_to_the_document(
    stack: LocalStack, workers: WorkerFactory
) -> None:
    assert stack.clients and stack.config and stack.clients.s3
    assert stack.config.claim_check_bucket == "callback-bridge-claim-checks"
    workers("--handler", HANDLER, "--concurrency", "3")
    # ~1 MiB, ~261 KB (under Step Functions' limit, over the queue's once token and fields are
    # added) and a small one, in one execution.
    jobs = [{"rows": 1049}, {"rows": 260}, {"rows": 1}]
    arn = start(stack.clients.sfn, stack.config.state_machine_arn or "", jobs, name="claim-check")
    described = wait_for_execution(stack.clients.sfn, arn, timeout_s=60)
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])

    assert [entry["status"] for entry in output] == ["SUCCEEDED"] * 3
    large, near_limit, small = (entry["output"] for entry in output)
    assert is_pointer(large) and is_pointer(near_limit)
    assert large["s3"]["bucket"] == stack.config.claim_check_bucket
    assert large["s3"]["key"].startswith("claim-checks/claim-check/claim-check/RunJob/0/0/")
    assert large["s3"]["size"] > 1_048_576
    document = fetch(stack.clients.s3, large)
    assert document == {"job": "claim-check/RunJob/0/0", "rows": ["r" * 1000] * 1049}
    assert fetch(stack.clients.s3, near_limit)["rows"] == ["r" * 1000] * 260
    assert small == {"job": "claim-check/RunJob/2/0", "rows": ["r" * 1000]}
    # Every job answered once: nothing left to run again, nothing dead-lettered.
    assert_queues_empty(stack)
