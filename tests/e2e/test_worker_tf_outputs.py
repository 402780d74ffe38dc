"""A worker configured from ``terraform output -json`` (``--tf-outputs FILE``), the convention
``status``, ``dlq`` and ``run`` follow, runs an execution's jobs (here against the embedded stack,
whose resources stand in for a deployment's outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bridge.local_stack import LocalStack
from tests.support.aws import start
from tests.support.polling import wait_for_execution
from tests.support.stack import WorkerFactory

pytestmark = [pytest.mark.e2e]


@pytest.mark.slow  # over 3.3 s: the full suite (make test stays under 3 minutes)
def test_a_worker_started_from_terraform_outputs_runs_jobs(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.clients and stack.config and stack.config.endpoint_url
    config = stack.config
    outputs = {
        name: {"sensitive": False, "type": "string", "value": getattr(config, name)}
        for name in ("jobs_queue_url", "results_queue_url", "jobs_dlq_url", "state_machine_arn")
    }
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # Left over from `local env` of another stack: the outputs file must win over it.
    monkeypatch.setenv("BRIDGE_JOBS_QUEUE_URL", "http://127.0.0.1:9/123456789012/another-jobs")
    workers(
        "--tf-outputs",
        str(path),
        "--endpoint-url",  # never real AWS from a test
        config.endpoint_url,
        "--region",
        "us-east-1",
        "--command",
        "cat",
        "--instance-handling",
        "off",
    )
    arn = start(stack.clients.sfn, config.state_machine_arn or "", [{"n": 1}, {"n": 2}])
    described = wait_for_execution(stack.clients.sfn, arn, timeout_s=30)
    assert described["status"] == "SUCCEEDED", described
    assert [e["output"] for e in json.loads(described["output"])] == [{"n": 1}, {"n": 2}]
