"""The embedded stack playing EC2: its consumers group, its instance's metadata service, and
``callback-bridge local announce`` driving a worker's scale-in code as EC2 would."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.local_stack import LocalStack, StackSettings
from consumers.imds import InstanceMetadata
from consumers.instance import InstanceWatcher, LifecycleAction, ScaleInProtection

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLI = [sys.executable, "-m", "bridge.cli.main", "local"]


@pytest.fixture
def ec2_stack(tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack(StackSettings(), state_file=tmp_path / "local.json") as running:
        yield running


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def group_instances(stack: LocalStack) -> list[dict[str, Any]]:
    assert stack.clients is not None and stack.config is not None
    groups = stack.clients.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=[stack.config.asg_name]
    )["AutoScalingGroups"]
    return list(groups[0]["Instances"])


def test_the_stack_has_one_instance_with_metadata_and_a_drain_hook(ec2_stack: LocalStack) -> None:
    config = ec2_stack.config
    assert config is not None and config.metadata_endpoint
    assert config.asg_name == "callback-bridge-consumers"
    assert config.lifecycle_hook_name == "callback-bridge-drain"
    assert [i["InstanceId"] for i in group_instances(ec2_stack)] == [config.instance_id]
    assert ec2_stack.clients is not None
    hooks = ec2_stack.clients.autoscaling.describe_lifecycle_hooks(
        AutoScalingGroupName=config.asg_name
    )["LifecycleHooks"]
    assert [h["LifecycleTransition"] for h in hooks] == ["autoscaling:EC2_INSTANCE_TERMINATING"]

    metadata = InstanceMetadata(config.metadata_endpoint)
    assert metadata.instance_id() == config.instance_id
    assert metadata.target_lifecycle_state() == "InService"
    assert ec2_stack.state_file is not None
    state = json.loads(ec2_stack.state_file.read_text())
    assert state["metadata_endpoint"] == config.metadata_endpoint
    assert state["instance_id"] == config.instance_id

    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in cli("env", "--state-file", str(ec2_stack.state_file)).stdout.splitlines()
    )
    assert shlex.split(exports["AWS_EC2_METADATA_SERVICE_ENDPOINT"]) == [config.metadata_endpoint]
    assert shlex.split(exports["BRIDGE_ASG_NAME"]) == [config.asg_name]
    assert shlex.split(exports["BRIDGE_LIFECYCLE_HOOK_NAME"]) == [config.lifecycle_hook_name]


def test_announce_terminate_drains_through_the_lifecycle_hook(ec2_stack: LocalStack) -> None:
    config, clients = ec2_stack.config, ec2_stack.clients
    assert config and clients and config.asg_name and config.instance_id
    assert config.metadata_endpoint and config.lifecycle_hook_name and ec2_stack.state_file
    protection = ScaleInProtection(
        clients.autoscaling, config.asg_name, config.instance_id, idle_debounce_s=0
    )
    assert protection.update(1) is True  # busy: protected from scale-in
    terminating = threading.Event()
    watcher = InstanceWatcher(
        InstanceMetadata(config.metadata_endpoint), on_termination=terminating.set, poll_s=0.1
    ).start()
    try:
        done = cli("announce", "terminate", "--state-file", str(ec2_stack.state_file))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == (
            f"termination announced for {config.instance_id}: target lifecycle state Terminated"
        )
        assert terminating.wait(5), "the watcher never saw the termination"
    finally:
        watcher.stop()
    (instance,) = group_instances(ec2_stack)
    assert instance["LifecycleState"] == "Terminating:Wait"  # protection does not stop it

    assert protection.update(0) is True  # AWS refuses to release a terminating instance...
    assert protection.disabled  # ... so it stops asking
    action = LifecycleAction(
        clients.autoscaling, config.asg_name, config.lifecycle_hook_name, config.instance_id
    )
    assert action.heartbeat()
    assert action.complete()
    assert group_instances(ec2_stack) == []


def test_announce_spot_serves_a_notice(ec2_stack: LocalStack) -> None:
    assert ec2_stack.state_file and ec2_stack.config and ec2_stack.config.metadata_endpoint
    done = cli("announce", "spot", "--seconds", "30", "--state-file", str(ec2_stack.state_file))
    assert done.returncode == 0, done.stderr
    notice = InstanceMetadata(ec2_stack.config.metadata_endpoint).spot_action()
    assert notice is not None and notice["action"] == "terminate"
    assert notice["time"] in done.stdout


def test_announce_without_a_stack_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = cli("announce", "terminate", "--state-file", str(tmp_path / "none.json"))
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "local up" in lines[0]


def test_stopping_the_stack_stops_its_metadata_service(tmp_path: Path) -> None:
    stack = LocalStack(StackSettings()).start()
    assert stack.config is not None and stack.config.metadata_endpoint
    metadata = InstanceMetadata(stack.config.metadata_endpoint, timeout_s=0.5)
    assert metadata.available()
    stack.stop()
    assert not InstanceMetadata(stack.config.metadata_endpoint, timeout_s=0.5).available()
