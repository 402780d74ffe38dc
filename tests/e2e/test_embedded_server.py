"""The embedded server's connection handling: kept alive between requests, ended on stop."""

from __future__ import annotations

import gc
import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

from bridge.local_stack import server as server_module
from bridge.local_stack.server import EmbeddedServer
from bridge.local_stack.stack import LocalStack
from tests.support.aws import loopback_client
from tests.support.stack import e2e_settings

pytestmark = pytest.mark.e2e

SIGNED = {
    "Content-Type": "application/x-www-form-urlencoded",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sqs/aws4_request, "
    "SignedHeaders=host, Signature=0",
}


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[EmbeddedServer, list[int]]]:
    """A started server and the number of connections it has accepted."""
    accepted = [0]
    original = server_module._LoopbackServer.process_request

    def process_request(self: Any, *args: Any) -> None:
        accepted[0] += 1
        original(self, *args)

    monkeypatch.setattr(server_module._LoopbackServer, "process_request", process_request)
    server = EmbeddedServer().start()
    try:
        yield server, accepted
    finally:
        server.stop()


def test_a_client_reuses_one_connection_for_many_calls(
    counted: tuple[EmbeddedServer, list[int]],
) -> None:
    server, accepted = counted
    sqs = loopback_client("sqs", server.endpoint_url, max_attempts=6)
    url = sqs.create_queue(QueueName="keep-alive")["QueueUrl"]
    before = accepted[0]
    for n in range(20):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in received] == [f"m{n}" for n in range(10)]
    assert accepted[0] - before <= 1, f"{accepted[0] - before} connections for 21 calls"


def test_requests_with_bodies_follow_each_other_on_one_connection(
    counted: tuple[EmbeddedServer, list[int]],
) -> None:
    """Each body is read in full, so the next request on the connection parses cleanly."""
    server, _ = counted
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for name in ("first", "second", "third"):
        connection.request("POST", "/", body=f"Action=CreateQueue&QueueName={name}", headers=SIGNED)
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200 and name in body
        assert response.getheader("Connection") != "close"
    connection.close()


def test_stopping_the_server_ends_kept_alive_connections() -> None:
    server = EmbeddedServer().start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("POST", "/", body="Action=ListQueues", headers=SIGNED)
    assert connection.getresponse().read()
    server.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        connection.request("POST", "/", body="Action=ListQueues", headers=SIGNED)
        connection.getresponse().read()
    connection.close()


def test_in_process_clients_share_the_servers_state_and_counts_without_a_connection(
    counted: tuple[EmbeddedServer, list[int]],
) -> None:
    """The stack's own callers (the interpreter's SQS tasks, the local event source, the
    completion handler) are answered in process: same backends, same request counts."""
    server, accepted = counted
    over_http = loopback_client("sqs", server.endpoint_url)
    url = over_http.create_queue(QueueName="in-process")["QueueUrl"]
    before_connections, before_counts = accepted[0], server.counter.snapshot()  # type: ignore[union-attr]
    in_process = server.in_process(loopback_client("sqs", server.endpoint_url))
    sfn = server.in_process(loopback_client("stepfunctions", server.endpoint_url))
    for n in range(3):
        in_process.send_message(QueueUrl=url, MessageBody=f"m{n}")
    assert sfn.list_state_machines()["stateMachines"] == []
    with pytest.raises(in_process.exceptions.QueueDoesNotExist):
        in_process.get_queue_attributes(QueueUrl=url + "-missing", AttributeNames=["All"])
    assert in_process.get_queue_url(QueueName="in-process")["QueueUrl"] == url  # the server's
    assert accepted[0] == before_connections  # no HTTP
    counts = server.counter.snapshot()  # type: ignore[union-attr]
    assert counts["sqs:SendMessage"] - before_counts.get("sqs:SendMessage", 0) == 3
    assert counts["states:ListStateMachines"] == 1
    assert counts["sqs:GetQueueUrl"] - before_counts.get("sqs:GetQueueUrl", 0) == 1
    received = over_http.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in received) == ["m0", "m1", "m2"]


def test_an_in_process_client_pointed_elsewhere_keeps_its_http(
    counted: tuple[EmbeddedServer, list[int]],
) -> None:
    """A client whose endpoint is not the server (the chaos campaign's fault proxy) is not
    answered in process: its requests go where it points."""
    server, _ = counted
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # closed below: nothing listens there
    elsewhere = server.in_process(loopback_client("sqs", f"http://127.0.0.1:{port}"))
    with pytest.raises(EndpointConnectionError):
        elsewhere.list_queues()
    assert server.counter.snapshot().get("sqs:ListQueues", 0) == 0  # type: ignore[union-attr]


def test_an_in_process_client_reaches_its_own_regions_resources(
    counted: tuple[EmbeddedServer, list[int]],
) -> None:
    """moto picks an SQS request's region from its signature's credential scope: in-process
    requests, unsigned, still carry that scope, so a Map in another region (a foreign
    deployment in the chaos campaign) sends to its own region's queue."""
    server, _ = counted
    west = boto3.client(
        "sqs",
        endpoint_url=server.endpoint_url,
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    url = west.create_queue(QueueName="west-only")["QueueUrl"]
    in_process = server.in_process(
        boto3.client(
            "sqs",
            endpoint_url=server.endpoint_url,
            region_name="us-west-2",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    )
    seen: list[str] = []
    server.counter.observers.append(lambda environ: seen.append(environ["HTTP_AUTHORIZATION"]))  # type: ignore[union-attr]
    in_process.send_message(QueueUrl=url, MessageBody="from the west")
    (message,) = west.receive_message(QueueUrl=url)["Messages"]
    assert message["Body"] == "from the west"
    assert "/us-west-2/sqs/" in seen[0] and "Signature=unsigned-in-process" in seen[0]


def test_start_up_objects_sit_out_full_collections_while_the_stack_runs(
    tmp_path: Path,
) -> None:
    """What start-up built lives as long as the stack: a full collection that walked it again
    cost a 1,000-job fan-out up to 0.8 s. Once stopped, the stack's objects are collectable."""
    with LocalStack(e2e_settings(), state_file=tmp_path / "local.json"):
        frozen = gc.get_freeze_count()
        assert frozen > 100_000  # moto's and botocore's modules and models
        assert len(gc.get_objects()) < frozen  # what a full pass still walks
    assert gc.get_freeze_count() == 0


VARYING_HEADERS = {"date", "x-amzn-requestid", "x-amz-crc32", "server"}


def answer(client: Any, operation: str, **params: Any) -> dict[str, Any]:
    """What the server answered to one call, error or not."""
    seen: dict[str, Any] = {}

    def keep(http_response: Any, **_: Any) -> None:
        headers = {k.lower(): v for k, v in http_response.headers.items()}
        seen["status"] = http_response.status_code
        seen["headers"] = {k: v for k, v in headers.items() if k not in VARYING_HEADERS}
        seen["body"] = json.loads(http_response.content or b"{}")

    client.meta.events.register("after-call", keep)
    try:
        getattr(client, operation)(**params)
    except client.exceptions.ClientError:
        pass
    finally:
        client.meta.events.unregister("after-call", keep)
    return seen


def test_sqs_requests_answered_without_flask_get_moto_apps_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The consumers' SQS calls skip moto's Flask routing (bridge.local_stack.direct_dispatch);
    each answer is the one moto's application gives: status, headers and body."""
    from bridge.local_stack import direct_dispatch

    server = EmbeddedServer().start()
    try:
        sqs = loopback_client("sqs", server.endpoint_url)
        url = sqs.create_queue(QueueName="direct")["QueueUrl"]
        calls: list[tuple[str, dict[str, Any]]] = [
            ("get_queue_url", {"QueueName": "direct"}),
            ("get_queue_url", {"QueueName": "missing"}),
            ("get_queue_attributes", {"QueueUrl": url, "AttributeNames": ["All"]}),
            ("receive_message", {"QueueUrl": url, "MaxNumberOfMessages": 10}),
            ("send_message", {"QueueUrl": url, "MessageBody": "m", "DelaySeconds": 901}),
            (
                "delete_message_batch",
                {"QueueUrl": url, "Entries": [{"Id": "a", "ReceiptHandle": "not-a-handle"}]},
            ),
            ("list_queues", {}),
        ]
        dispatched: list[str] = []
        original = direct_dispatch.dispatch

        def counting(request: Any, service_url: str) -> Any:
            dispatched.append(service_url)
            return original(request, service_url)

        monkeypatch.setattr(direct_dispatch, "dispatch", counting)
        direct = [answer(sqs, operation, **params) for operation, params in calls]
        assert len(dispatched) == len(calls)  # none went through Flask
        monkeypatch.setattr(direct_dispatch, "SQS_TARGET", "(through moto's application)")
        through_moto = [answer(sqs, operation, **params) for operation, params in calls]
        assert direct == through_moto
        assert {a["status"] for a in direct} == {200, 400}
    finally:
        server.stop()
