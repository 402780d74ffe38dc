"""A real worker process on the embedded stack's EC2 instance: scale-in protection while busy,
a termination that drains and completes the lifecycle action, a spot notice that releases.

The stack serves instance metadata on loopback (``AWS_EC2_METADATA_SERVICE_ENDPOINT``
convention, through the state file) for the one instance of its consumers group; the tests tell
it to announce a termination or a spot interruption as EC2 would.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bridge.local_stack import LocalStack
from bridge.local_stack.imds import announce
from tests.e2e.scripts import job_script, runs
from tests.support.aws import start
from tests.support.polling import eventually, visible, wait_for_execution
from tests.support.stack import WorkerFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAST = ("--visibility-timeout", "2", "--heartbeat-interval", "1", "--cancel-grace", "1")


def instance(stack: LocalStack) -> dict[str, Any] | None:
    assert stack.clients and stack.config
    found = stack.clients.autoscaling.describe_auto_scaling_instances(
        InstanceIds=[stack.config.instance_id]
    )["AutoScalingInstances"]
    return found[0] if found else None


def protected(stack: LocalStack) -> bool:
    described = instance(stack)
    return bool(described and described["ProtectedFromScaleIn"])


def test_scale_in_protection_follows_the_work(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    assert stack.clients and stack.config
    workers(
        "--command", job_script(tmp_path), "--scale-in-protection", "--protection-idle", "1", *FAST
    )
    assert not protected(stack)
    arn = start(
        stack.clients.sfn, stack.config.state_machine_arn, [{"marks": str(tmp_path), "sleep_s": 3}]
    )
    assert eventually(lambda: protected(stack), timeout_s=15), "busy but not protected"
    assert wait_for_execution(stack.clients.sfn, arn, timeout_s=30)["status"] == "SUCCEEDED"
    assert eventually(lambda: not protected(stack), timeout_s=10), "idle but still protected"


@pytest.mark.slow
def test_termination_drains_heartbeats_the_hook_and_completes_it(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    assert stack.clients and stack.config
    process = workers(
        "--command",
        job_script(tmp_path),
        "--scale-in-protection",
        "--lifecycle-hook-timeout",
        "30",  # the shortest AWS allows: a heartbeat at once, then every 10 s
        "--drain-timeout",
        "60",
        *FAST,
    )
    # Longer than the watcher's 5 s metadata poll, so the notice arrives while it runs.
    arn = start(
        stack.clients.sfn, stack.config.state_machine_arn, [{"marks": str(tmp_path), "sleep_s": 9}]
    )
    assert eventually(lambda: runs(tmp_path), timeout_s=20)
    assert stack.config.metadata_endpoint
    before = stack.request_counts().get("query:RecordLifecycleActionHeartbeat", 0)
    announce(stack.config.metadata_endpoint, "terminate")
    assert (instance(stack) or {}).get("LifecycleState") == "Terminating:Wait"
    assert process.wait(timeout=30) == 0  # drained: the running job finished first
    described = wait_for_execution(stack.clients.sfn, arn, timeout_s=10)
    assert json.loads(described["output"])[0]["status"] == "SUCCEEDED"
    heartbeats = stack.request_counts().get("query:RecordLifecycleActionHeartbeat", 0) - before
    assert heartbeats >= 1, "the hook was not heartbeated while the job ran"
    assert stack.request_counts().get("query:CompleteLifecycleAction", 0) == 1
    assert eventually(lambda: instance(stack) is None, timeout_s=10), "termination did not proceed"


def test_a_spot_notice_releases_what_cannot_finish_in_time(
    stack: LocalStack, workers: WorkerFactory, tmp_path: Path
) -> None:
    assert stack.clients and stack.config
    process = workers("--command", job_script(tmp_path), *FAST)
    start(
        stack.clients.sfn,
        stack.config.state_machine_arn,
        [{"marks": str(tmp_path), "mode": "hang"}],
    )
    assert eventually(lambda: list(tmp_path.glob("*.started")), timeout_s=20)
    assert stack.config.metadata_endpoint
    announce(stack.config.metadata_endpoint, "spot", seconds=32)  # leaves 2 s to drain
    try:
        assert process.wait(timeout=20) == 0
    except subprocess.TimeoutExpired:
        pytest.fail("the worker did not stop after the spot notice")
    assert eventually(lambda: visible(stack.clients.sqs, stack.config.jobs_queue_url) == 1, 5)
