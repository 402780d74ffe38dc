"""Scale-in safety pieces (consumers.imds, consumers.instance) against the real loopback IMDS
(bridge.local_stack.imds) and an Auto Scaling group in in-process moto with the compat patches."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bridge.aws import Clients
from bridge.local_stack import compat
from bridge.local_stack.compat import autoscaling as autoscaling_patches
from bridge.local_stack.imds import (
    EmbeddedInstance,
    InstanceMetadataServer,
    StaticInstance,
    announce,
)
from bridge.local_stack.resources import StackSettings, create_instance_group
from consumers.imds import InstanceMetadata, MetadataError
from consumers.instance import (
    InstanceWatcher,
    LifecycleAction,
    ScaleInProtection,
    discover_group,
)
from tests.support.polling import eventually

REGION = "us-east-1"


@dataclass
class Group:
    """The embedded stack's consumers group, in moto, with the IMDS of its one instance."""

    autoscaling: Any
    ec2: Any
    name: str
    hook: str
    instance_id: str
    imds: InstanceMetadataServer

    def instance(self) -> dict[str, Any] | None:
        found = self.autoscaling.describe_auto_scaling_instances(InstanceIds=[self.instance_id])
        return next(iter(found["AutoScalingInstances"]), None)

    def ec2_state(self) -> str:
        reservations = self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"]
        return str(reservations[0]["Instances"][0]["State"]["Name"])


def make_group(hook_timeout_s: int = 300) -> Iterator[Group]:
    compat.apply(autoscaling_patches.PATCHES)
    try:
        with mock_aws():
            clients = Clients(
                sqs=None,
                sfn=None,
                autoscaling=boto3.client("autoscaling", REGION),
                ec2=boto3.client("ec2", REGION),
            )
            ids = create_instance_group(
                clients, StackSettings(prefix="unit", lifecycle_hook_timeout_s=hook_timeout_s)
            )
            instance = EmbeddedInstance(
                clients.autoscaling, ids["asg_name"], ids["instance_id"], REGION
            )
            with InstanceMetadataServer(instance) as imds:
                yield Group(
                    clients.autoscaling,
                    clients.ec2,
                    ids["asg_name"],
                    ids["lifecycle_hook_name"],
                    ids["instance_id"],
                    imds,
                )
    finally:
        compat.revert()


@pytest.fixture
def group() -> Iterator[Group]:
    yield from make_group()


@pytest.fixture
def short_hook_group() -> Iterator[Group]:
    yield from make_group(hook_timeout_s=1)


@pytest.fixture
def static_imds() -> Iterator[InstanceMetadataServer]:
    with InstanceMetadataServer(StaticInstance("i-0123456789abcdef0")) as imds:
        yield imds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def protection_calls(autoscaling: Any) -> list[bool]:
    """Record each SetInstanceProtection request's ProtectedFromScaleIn."""
    calls: list[bool] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["ProtectedFromScaleIn"])

    autoscaling.meta.events.register(
        "provide-client-params.autoscaling.SetInstanceProtection", record
    )
    return calls


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def raw(imds: InstanceMetadataServer, path: str, method: str = "GET", **headers: str) -> int:
    request = urllib.request.Request(imds.endpoint + path, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


# --- the IMDS and its client -------------------------------------------------------------------


def test_metadata_client_reads_the_instance(static_imds: InstanceMetadataServer) -> None:
    metadata = InstanceMetadata(static_imds.endpoint)
    assert metadata.available()
    assert metadata.instance_id() == "i-0123456789abcdef0"
    assert metadata.target_lifecycle_state() == "InService"
    assert metadata.spot_action() is None
    assert metadata.get("meta-data/placement/region") == "us-east-1"

    static_imds.announce_spot_interruption(120)
    notice = metadata.spot_action()
    assert notice is not None and notice["action"] == "terminate"
    assert notice["time"].endswith("Z")


def test_endpoint_comes_from_the_sdk_variable(static_imds: InstanceMetadataServer) -> None:
    env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": static_imds.endpoint + "/"}
    assert InstanceMetadata(environ=env).instance_id() == "i-0123456789abcdef0"
    assert InstanceMetadata(environ={}).endpoint == "http://169.254.169.254"
    disabled = InstanceMetadata(static_imds.endpoint, environ={"AWS_EC2_METADATA_DISABLED": "true"})
    assert not disabled.available()


def test_imds_requires_a_token_like_an_imdsv2_only_instance(
    static_imds: InstanceMetadataServer,
) -> None:
    assert raw(static_imds, "/latest/meta-data/instance-id") == 401
    assert raw(static_imds, "/latest/meta-data/instance-id", **{"X-aws-ec2-metadata-token": "x"})
    ttl = "X-aws-ec2-metadata-token-ttl-seconds"
    assert raw(static_imds, "/latest/api/token", "PUT") == 400
    assert raw(static_imds, "/latest/api/token", "PUT", **{ttl: "21601"}) == 400
    assert raw(static_imds, "/latest/api/token", "PUT", **{ttl: "60", "X-Forwarded-For": "a"}) == (
        403
    )
    assert raw(static_imds, "/latest/api/token", "PUT", **{ttl: "60"}) == 200


def test_a_forgotten_token_is_replaced_once(static_imds: InstanceMetadataServer) -> None:
    metadata = InstanceMetadata(static_imds.endpoint)
    assert metadata.instance_id()
    static_imds._tokens.clear()  # an IMDS restart forgets every token
    assert metadata.instance_id() == "i-0123456789abcdef0"


def test_no_metadata_service_is_quick_and_clear() -> None:
    metadata = InstanceMetadata(f"http://127.0.0.1:{closed_port()}", timeout_s=0.5)
    started = time.monotonic()
    assert not metadata.available()
    assert time.monotonic() - started < 1
    with pytest.raises(MetadataError, match=r"127\.0\.0\.1"):
        metadata.target_lifecycle_state()


def test_control_endpoint_rejects_bad_input(static_imds: InstanceMetadataServer) -> None:
    assert raw(static_imds, "/bridge-control/spot?seconds=soon", "POST") == 400
    assert raw(static_imds, "/bridge-control/spot?seconds=-1", "POST") == 400
    assert raw(static_imds, "/bridge-control/reboot", "POST") == 404


# --- scale-in protection -------------------------------------------------------------------


def test_protection_follows_jobs_with_an_idle_debounce(group: Group) -> None:
    clock = Clock()
    calls = protection_calls(group.autoscaling)
    protection = ScaleInProtection(
        group.autoscaling, group.name, group.instance_id, idle_debounce_s=30, clock=clock
    )
    assert protection.update(0) is None  # idle but not for 30 s yet: nothing to say
    assert protection.update(2) is True
    assert group.instance()["ProtectedFromScaleIn"] is True  # type: ignore[index]
    protection.update(3)
    protection.update(1)
    clock.now += 5
    protection.update(0)  # idle, within the debounce: still protected
    clock.now += 20
    protection.update(1)  # busy again before the debounce ended
    protection.update(0)
    clock.now += 29
    assert protection.update(0) is True
    clock.now += 1
    assert protection.update(0) is False
    assert group.instance()["ProtectedFromScaleIn"] is False  # type: ignore[index]
    protection.update(0)
    assert calls == [True, False]  # the API only on a change


def test_idle_worker_releases_protection_left_from_before(group: Group) -> None:
    group.autoscaling.set_instance_protection(
        AutoScalingGroupName=group.name, InstanceIds=[group.instance_id], ProtectedFromScaleIn=True
    )
    clock = Clock()
    protection = ScaleInProtection(
        group.autoscaling, group.name, group.instance_id, idle_debounce_s=30, clock=clock
    )
    clock.now += 30
    assert protection.update(0) is False
    assert group.instance()["ProtectedFromScaleIn"] is False  # type: ignore[index]


def test_failed_protection_is_retried_later_and_never_raised(group: Group) -> None:
    clock = Clock()
    failures = iter([True])

    def throttle_once(**_: Any) -> None:
        if next(failures, False):
            error = {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}
            raise ClientError(error, "SetInstanceProtection")  # type: ignore[arg-type]

    group.autoscaling.meta.events.register(
        "before-call.autoscaling.SetInstanceProtection", throttle_once
    )
    protection = ScaleInProtection(
        group.autoscaling, group.name, group.instance_id, clock=clock, retry_after_s=10
    )
    assert protection.update(1) is None  # failed, logged
    clock.now += 5
    assert protection.update(1) is None  # not retried before retry_after_s
    clock.now += 5
    assert protection.update(1) is True
    assert group.instance()["ProtectedFromScaleIn"] is True  # type: ignore[index]


def test_protection_stops_once_the_instance_is_terminating(group: Group) -> None:
    clock = Clock()
    calls = protection_calls(group.autoscaling)
    protection = ScaleInProtection(group.autoscaling, group.name, group.instance_id, clock=clock)
    announce(group.imds.endpoint, "terminate")
    assert protection.update(1) is None  # AWS refuses: not InService any more
    assert protection.disabled
    protection.update(0)
    clock.now += 60
    protection.update(0)
    assert calls == [True]


# --- termination notice, lifecycle action ------------------------------------------------------


def test_watcher_reports_termination_once_and_the_action_completes(group: Group) -> None:
    terminated = threading.Event()
    count = []

    def on_termination() -> None:
        count.append(1)
        terminated.set()

    watcher = InstanceWatcher(
        InstanceMetadata(group.imds.endpoint), on_termination=on_termination, poll_s=0.05
    ).start()
    try:
        time.sleep(0.2)
        assert not terminated.is_set()
        answer = announce(group.imds.endpoint, "terminate")
        assert answer["target_lifecycle_state"] == "Terminated"
        assert terminated.wait(5), "the watcher never saw the termination"
        assert group.instance()["LifecycleState"] == "Terminating:Wait"  # type: ignore[index]
        time.sleep(0.2)
        assert count == [1]
    finally:
        watcher.stop()

    action = LifecycleAction(group.autoscaling, group.name, group.hook, group.instance_id)
    assert action.heartbeat()
    assert action.complete("CONTINUE")
    assert group.instance() is None  # left the group
    assert group.ec2_state() == "terminated"
    assert action.complete()  # once only: no second call
    assert not action.heartbeat()


def test_watcher_reports_a_spot_notice_with_the_time_left(
    static_imds: InstanceMetadataServer,
) -> None:
    left: list[float] = []
    watcher = InstanceWatcher(
        InstanceMetadata(static_imds.endpoint), on_spot_interruption=left.append, poll_s=0.05
    ).start()
    try:
        announce(static_imds.endpoint, "spot", seconds=90)
        assert eventually(lambda: left, timeout_s=5)
        time.sleep(0.2)
    finally:
        watcher.stop()
    assert len(left) == 1 and 85 <= left[0] <= 90


def test_watcher_survives_an_unreachable_metadata_service_and_bad_callbacks(
    static_imds: InstanceMetadataServer,
) -> None:
    down = InstanceWatcher(
        InstanceMetadata(f"http://127.0.0.1:{closed_port()}", timeout_s=0.2),
        on_termination=lambda: pytest.fail("no metadata, no termination"),
    )
    down.poll()
    down.poll()
    assert not down.terminating

    def broken() -> None:
        raise RuntimeError("callback bug")

    watcher = InstanceWatcher(InstanceMetadata(static_imds.endpoint), on_termination=broken)
    static_imds.announce_termination()
    watcher.poll()  # logged, not raised
    assert watcher.terminating


def test_heartbeats_hold_the_instance_past_the_hook_timeout(short_hook_group: Group) -> None:
    group = short_hook_group
    announce(group.imds.endpoint, "terminate")
    action = LifecycleAction(group.autoscaling, group.name, group.hook, group.instance_id)
    action.start_heartbeats(every_s=0.3)
    try:
        time.sleep(1.6)  # the hook's HeartbeatTimeout is 1 s
        assert group.instance()["LifecycleState"] == "Terminating:Wait"  # type: ignore[index]
    finally:
        assert action.complete()
    assert group.instance() is None


def test_without_heartbeats_the_hook_timeout_terminates(short_hook_group: Group) -> None:
    group = short_hook_group
    announce(group.imds.endpoint, "terminate")
    assert eventually(lambda: group.instance() is None, timeout_s=5)
    assert group.ec2_state() == "terminated"
    action = LifecycleAction(group.autoscaling, group.name, group.hook, group.instance_id)
    assert not action.complete()  # no active action any more: logged, not raised


def test_group_is_discovered_from_the_instance_id(group: Group) -> None:
    instance_id = InstanceMetadata(group.imds.endpoint).instance_id()
    assert discover_group(group.autoscaling, instance_id) == group.name
    assert discover_group(group.autoscaling, "i-00000000000000000") is None


def test_imds_control_answers_with_json(group: Group) -> None:
    request = urllib.request.Request(
        group.imds.endpoint + "/bridge-control/spot?seconds=30", data=b"", method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["action"] == "terminate"


@pytest.mark.parametrize(
    "text", ['{"action": "terminate", "time": 1700000000}', "not json", "[1]", '{"time": "noon"}']
)
def test_an_unreadable_spot_notice_is_still_a_notice(text: str) -> None:
    class Canned(InstanceMetadata):
        def get(self, path: str) -> str | None:
            return text

    notice = Canned("http://127.0.0.1:9").spot_action()
    assert notice == {"action": "unknown", "time": None, "unreadable": text}
