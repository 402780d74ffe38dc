"""configure_logging: JSON or text lines, extras kept, and botocore's DEBUG output (request and
response bodies against moto) carries no task token in full."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bridge.contract import MAX_TOKEN_CHARS, Job, encode, mask_token
from bridge.logs import configure_logging, owned_handlers
from bridge.redaction import TokenRedactingFilter, register, registry

# Shaped like a real task token: base64 with + / =, as long as the API allows.
TOKEN = ("AQCoAAAAKgAAAAMAAAAAAAAAAbT9" + "r2+Qk/x7Lw0=" * 200)[:MAX_TOKEN_CHARS]
MASK = mask_token(TOKEN)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    registry.clear()
    yield
    for handler in owned_handlers():
        root.removeHandler(handler)
    for handler in root.handlers:
        for found in [f for f in handler.filters if isinstance(f, TokenRedactingFilter)]:
            handler.removeFilter(found)
    root.setLevel(level)
    registry.clear()


def job_body() -> str:
    return encode(
        Job(
            version=1,
            token=TOKEN,
            job_id="exec-1/RunJob/0/0",
            execution_arn="arn:aws:states:us-east-1:123456789012:execution:sm:exec-1",
            map_index=0,
            attempt=0,
            type="render",
            input={"n": 1},
        )
    )


def test_botocore_debug_against_moto_never_shows_the_token() -> None:
    capture = io.StringIO()
    configure_logging("DEBUG", "json", "callback-bridge-worker", stream=capture)
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        # Request body {"taskToken": "..."}. moto answers InvalidToken or nothing depending on
        # whether an earlier test turned its state machine execution on (a global setting).
        with contextlib.suppress(ClientError):
            sfn.send_task_heartbeat(taskToken=TOKEN)
        url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=job_body())  # token escaped once
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)  # escaped in repr
        assert json.loads(received["Messages"][0]["Body"])["token"] == TOKEN
        register(TOKEN)  # as the worker does for every token it reads
        logging.getLogger("consumers.worker").error(
            "heartbeat failed for %s", TOKEN, extra={"job_id": "exec-1/RunJob/0/0"}
        )
    out = capture.getvalue()
    assert "botocore" in out
    assert "SendTaskHeartbeat" in out
    assert "ReceiveMessage" in out
    assert TOKEN not in out
    assert TOKEN[-64:] not in out  # no sizeable piece either
    assert out.count(MASK) >= 4  # request, send body, receive response, our own line
    lines = [json.loads(line) for line in out.splitlines()]
    assert {"timestamp", "level", "logger", "message", "service"} <= lines[0].keys()
    ours = [line for line in lines if line["logger"] == "consumers.worker"]
    assert ours == [
        {
            "timestamp": ours[0]["timestamp"],
            "level": "ERROR",
            "logger": "consumers.worker",
            "message": f"heartbeat failed for {MASK}",
            "location": ours[0]["location"],
            "process": ours[0]["process"],
            "service": "callback-bridge-worker",
            "job_id": "exec-1/RunJob/0/0",
        }
    ]


def test_json_lines_carry_extras_and_exceptions_on_one_line() -> None:
    capture = io.StringIO()
    configure_logging("info", "json", "svc", stream=capture)
    log = logging.getLogger("consumers.worker")
    log.debug("not shown at INFO")
    log.info("job %s started", "j-1", extra={"job_id": "j-1", "attempt": 2})
    try:
        raise ValueError("bad input\nsecond line")
    except ValueError:
        log.exception("job failed", extra={"job_id": "j-1"})
    lines = [json.loads(line) for line in capture.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["job j-1 started", "job failed"]
    assert lines[0]["job_id"] == "j-1"
    assert lines[0]["attempt"] == 2
    assert lines[0]["timestamp"].endswith("+00:00")
    assert lines[1]["exception_name"] == "ValueError"
    assert "second line" in lines[1]["exception"]


def test_text_format_shows_service_logger_and_extras() -> None:
    capture = io.StringIO()
    configure_logging("DEBUG", "text", "callback-bridge-worker", stream=capture)
    logging.getLogger("consumers.worker").info(
        'sent {"token": "%s"}', TOKEN, extra={"job_id": "j-1"}
    )
    line = capture.getvalue().strip()
    assert " INFO callback-bridge-worker[" in line
    assert "consumers.worker: sent" in line
    assert line.endswith("job_id=j-1")
    assert TOKEN not in line
    assert MASK in line


def test_configuring_twice_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "text", "svc", stream=first)
    configure_logging("WARNING", "json", "svc", stream=second)
    assert len(owned_handlers()) == 1
    logging.getLogger("x").info("quiet")
    logging.getLogger("x").warning("loud")
    assert first.getvalue() == ""
    assert [json.loads(line)["message"] for line in second.getvalue().splitlines()] == ["loud"]


@pytest.mark.parametrize(
    ("level", "fmt", "named"),
    [("verbose", "json", "'verbose'"), ("INFO", "yaml", "'yaml'"), ("", "text", "''")],
)
def test_unknown_level_or_format_is_refused_by_name(level: str, fmt: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        configure_logging(level, fmt, "svc", stream=io.StringIO())
    assert owned_handlers() == []
