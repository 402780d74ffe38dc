"""The in-process transport builds moto's ``Request`` itself (``in_process.moto_request``);
moto reads it exactly as the one its own ``Request.from_primitives`` builds.

The requests are real botocore requests, as the stack's in-process callers prepare them: each
protocol the stack speaks (SQS's JSON, Step Functions' JSON, S3's REST with keys that need
escaping, Auto Scaling's query form), captured before they would be sent."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from moto.core.request import Request

from bridge.local_stack.in_process import moto_request

ENDPOINT = "http://127.0.0.1:5123"
QUEUE_URL = f"{ENDPOINT}/123456789012/jobs"


class Captured(Exception):
    """Stops a call once its prepared request is seen."""

    def __init__(self, request: Any) -> None:
        super().__init__("captured")
        self.request = request


def prepared(service: str, call: Callable[[Any], Any]) -> Any:
    """The request ``call`` would send to ``service`` on the embedded server."""
    client = boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    def capture(request: Any, **_: Any) -> None:
        raise Captured(request)

    client.meta.events.register_first("before-send", capture)
    with pytest.raises(Captured) as captured:
        call(client)
    return captured.value.request


REQUESTS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "sqs json": ("sqs", lambda c: c.send_message(QueueUrl=QUEUE_URL, MessageBody='{"n": "ü"}')),
    "sqs receive": (
        "sqs",
        lambda c: c.receive_message(QueueUrl=QUEUE_URL, MaxNumberOfMessages=10),
    ),
    "states json": (
        "stepfunctions",
        lambda c: c.send_task_success(taskToken="AQ+/=token", output='{"r": 1}'),
    ),
    "s3 put, escaped key": (
        "s3",
        lambda c: c.put_object(Bucket="b", Key="runs/a b/ü%+#?.json", Body=b"[1, 2]"),
    ),
    "s3 list, query": (
        "s3",
        lambda c: c.list_objects_v2(Bucket="b", Prefix="runs/ü x/", MaxKeys=5),
    ),
    "s3 metadata names": (
        "s3",
        lambda c: c.put_object(Bucket="b", Key="k", Body=b"", Metadata={"my_key": "v"}),
    ),
    "autoscaling form": (
        "autoscaling",
        lambda c: c.describe_auto_scaling_groups(AutoScalingGroupNames=["consumers"]),
    ),
}


def what_moto_reads(request: Any) -> dict[str, Any]:
    environ = {
        key: value
        for key, value in request.environ.items()
        if key not in {"wsgi.input", "wsgi.errors", "werkzeug.request"}
    }
    return {
        "environ": environ,
        "data": request.get_data(),
        "form": request.form.to_dict(flat=False),
        "args": request.args.to_dict(flat=False),
        "headers": sorted(request.headers),  # an environ has no order moto relies on
        "path": request.path,
        "raw_url": request.raw_url,
        "url": request.url,
    }


@pytest.mark.parametrize("name", REQUESTS)
def test_moto_reads_the_same_request_as_from_primitives(name: str) -> None:
    service, call = REQUESTS[name]
    request = prepared(service, call)
    mine = what_moto_reads(moto_request(request.method, request.url, request.headers, request.body))
    if hasattr(request.body, "seek"):
        request.body.seek(0)  # a stream (S3's PutObject), read once already
    motos = what_moto_reads(
        Request.from_primitives(request.method, request.url, request.headers, request.body)
    )
    assert mine == motos


def test_a_streamed_body_is_left_to_moto() -> None:
    body = io.BytesIO(b"streamed")
    request = moto_request("PUT", f"{ENDPOINT}/b/k", {"Content-Length": "8"}, body)
    assert request.get_data() == b"streamed"
    assert request.environ["CONTENT_LENGTH"] == "8"
