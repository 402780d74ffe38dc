"""The state machine as `infra/examples/complete` would deploy it, run on the embedded stack.

No provider registry is reachable here, so Terraform cannot apply; instead the example's variable
defaults are read (python-hcl2), rendered through the same template and parameters the
state_machine module passes to templatefile(), and the result runs with a real worker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.local_stack import LocalStack
from bridge.local_stack.resources import LOCAL_ROLE_ARN
from bridge.state_machine import StateMachineParams, render_definition
from tests.support.polling import wait_for_execution
from tests.support.stack import WorkerFactory
from tests.support.terraform import REPO, blocks

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLE = REPO / "infra" / "examples" / "complete" / "variables.tf"

#: Module input -> StateMachineParams field, for what the example passes through unchanged.
PASSED_THROUGH = {
    "heartbeat_seconds": "heartbeat_seconds",
    "timeout_seconds": "timeout_seconds",
    "max_concurrency": "max_concurrency",
    "map_mode": "map_mode",
    "failure_policy": "failure_policy",
    "tolerated_failure_count": "tolerated_failure_count",
    "tolerated_failure_percentage": "tolerated_failure_percentage",
    "max_queue_wait_seconds": "max_queue_wait_seconds",
    "job_timeout_seconds": "job_timeout_seconds",
}


def example_defaults() -> dict[str, Any]:
    variables = dict(blocks(EXAMPLE, "variable"))
    return {
        field: variables[name].get("default")
        for name, field in PASSED_THROUGH.items()
        if name in variables
    }


def test_the_complete_example_definition_runs_jobs_end_to_end(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    assert stack.clients and stack.config
    values = {k: v for k, v in example_defaults().items() if v is not None}
    assert "timeout_seconds" in values, "the example's defaults could not be read"
    params = StateMachineParams(jobs_queue_url=stack.config.jobs_queue_url or "", **values)
    machine = stack.clients.sfn.create_state_machine(
        name="complete-example", definition=render_definition(params), roleArn=LOCAL_ROLE_ARN
    )["stateMachineArn"]
    workers("--handler", "consumers.demo_handler:work")
    arn = stack.clients.sfn.start_execution(
        stateMachineArn=machine,
        input=json.dumps({"jobs": [{"n": 1, "sleep_ms": 10}, {"n": 2, "type": "render"}]}),
    )["executionArn"]
    described = wait_for_execution(stack.clients.sfn, arn, timeout_s=60)
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert [entry["status"] for entry in output] == ["SUCCEEDED", "SUCCEEDED"]
    assert output[1]["output"]["type"] == "render"
