"""The composition root: ServiceSettings (and where the queues are) in, a Service built from the
right pieces out; a bad setting is refused in one line naming the flag, before any request."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from bridge.aws import Clients
from bridge.config import BridgeConfig
from consumers.command import CommandRunner
from consumers.compose import build_service
from consumers.isolated import IsolatedPythonRunner
from consumers.runner import PythonRunner
from consumers.settings import ServiceSettings

JOBS = "http://sqs.local/123456789012/jobs"
RESULTS = "http://sqs.local/123456789012/results"
DLQ = "http://sqs.local/123456789012/jobs-dlq"
HANDLER = "consumers.demo_handler:work"


class FakeSqs:
    """Answers GetQueueAttributes like the jobs and results queues; records every call."""

    def __init__(
        self,
        visibility: int = 120,
        max_receives: int | None = 5,
        down: bool = False,
        missing: str | None = None,
        denied: str | None = None,
    ):
        self.visibility, self.max_receives, self.down = visibility, max_receives, down
        self.missing, self.denied = missing, denied
        self.calls: list[dict[str, Any]] = []

    def get_queue_attributes(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.down:
            raise EndpointConnectionError(endpoint_url=kwargs["QueueUrl"])
        if kwargs["QueueUrl"] == self.missing:
            error = {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "no queue"}
            raise ClientError({"Error": error}, "GetQueueAttributes")
        if kwargs["QueueUrl"] == self.denied:
            error = {"Code": "AccessDenied", "Message": "not authorized"}
            raise ClientError({"Error": error}, "GetQueueAttributes")
        if kwargs["AttributeNames"] == ["QueueArn"]:
            return {"Attributes": {"QueueArn": "arn:aws:sqs:eu-west-1:123456789012:jobs-dlq"}}
        if kwargs["AttributeNames"] == ["MaximumMessageSize"]:
            return {"Attributes": {"MaximumMessageSize": "262144"}}
        attributes = {"VisibilityTimeout": str(self.visibility)}
        if self.max_receives is not None:
            policy = {"deadLetterTargetArn": "arn:dlq", "maxReceiveCount": self.max_receives}
            attributes["RedrivePolicy"] = json.dumps(policy)
        return {"Attributes": attributes}


class FakeS3:
    """Answers HeadBucket, or fails it as S3 does (a HEAD answer has no body: the code is the
    bare HTTP status, unless given as a name)."""

    def __init__(self, error: str | None = None) -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def head_bucket(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error:
            message = {"403": "Forbidden", "404": "Not Found"}.get(self.error, "")
            raise ClientError({"Error": {"Code": self.error, "Message": message}}, "HeadBucket")
        return {}


class Connect:
    """The CLI's ``connect``: where the queues are, and the clients; counts its calls."""

    def __init__(self, sqs: FakeSqs | None = None, s3: FakeS3 | None = None, **config: Any) -> None:
        self.sqs = sqs or FakeSqs()
        self.s3 = s3 or FakeS3()
        values = {"jobs_queue_url": JOBS, "results_queue_url": RESULTS, **config}
        self.config = BridgeConfig(**values)
        self.calls = 0

    def __call__(self) -> tuple[BridgeConfig, Clients]:
        self.calls += 1
        return self.config, Clients(sqs=self.sqs, sfn=object(), s3=self.s3)


def settings(**values: Any) -> ServiceSettings:
    return ServiceSettings(**{"handler": HANDLER, "instance_handling": "off", **values})


def test_the_service_is_built_from_the_settings() -> None:
    connect = Connect(jobs_dlq_url="http://sqs.local/123456789012/jobs-dlq", instance_id="i-1")

    def clock() -> float:
        return 42.0

    service = build_service(
        settings(
            concurrency=7,
            wait_seconds=5,
            job_timeouts="render=7200",
            token_path="$.TaskToken",
            health_port=0,
            heartbeat_interval=15.0,
        ),
        connect,
        clock=clock,
    )
    worker = service.worker
    assert isinstance(worker.runner, PythonRunner)
    assert (worker.settings.concurrency, worker.settings.wait_seconds) == (7, 5)
    assert worker.settings.jobs_queue_url == JOBS
    assert worker.settings.results_queue_url == RESULTS
    assert (worker.settings.jobs_dlq_url or "").endswith("jobs-dlq")
    assert dict(worker.settings.job_timeouts) == {"render": 7200}
    assert worker.settings.job_timeout_s("render") == 7200
    assert worker.settings.intake.token_path == "$.TaskToken"
    assert worker.identity.instance_id == "i-1"
    # The queue's visibility timeout and maxReceiveCount complete the flags' timing model.
    timing = worker.settings.timing
    assert (timing.visibility_timeout_s, timing.max_receive_count) == (120, 5)
    assert timing.heartbeat_interval_s == 15.0
    assert timing.lifecycle_hook_timeout_s is None  # no instance handling: no hook to check
    assert worker.clock is clock and worker.supervisor.clock is clock
    assert service.health_port == 0 and not service.metrics.enabled
    assert service.on_stopped == []  # instance handling is off
    assert connect.calls == 1


def test_a_visibility_timeout_flag_wins_over_the_queues() -> None:
    service = build_service(settings(visibility_timeout=600), Connect(FakeSqs(visibility=30)))
    assert service.worker.settings.timing.visibility_timeout_s == 600


@pytest.mark.parametrize(
    ("values", "runner"),
    [
        ({}, PythonRunner),
        ({"isolation": "process"}, IsolatedPythonRunner),
        ({"handler": None, "command": "cat"}, CommandRunner),
    ],
)
def test_the_runner_the_flags_ask_for(values: dict[str, Any], runner: type) -> None:
    assert isinstance(build_service(settings(**values), Connect()).worker.runner, runner)


def test_a_metrics_file_and_a_claim_check_bucket_are_wired(tmp_path: Any) -> None:
    connect = Connect(claim_check_bucket="outputs")
    service = build_service(
        settings(metrics=str(tmp_path / "emf.log"), claim_check_threshold=1000), connect
    )
    assert service.metrics.enabled
    claim_check = service.worker.sender.claim_check
    assert (claim_check.bucket, claim_check.threshold_bytes) == ("outputs", 1000)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"handler": None}, "exactly one of --handler"),
        ({"command": "true"}, "exactly one of --handler"),
        ({"isolation": "fork"}, "--isolation"),
        ({"handler": "no_such_module:run"}, "no_such_module"),
        ({"job_timeouts": "render"}, "--job-timeouts"),
        ({"token_path": "$..token[0]"}, "--token-path"),
        ({"metrics": "/no/such/dir/emf.log"}, "--metrics"),
        ({"instance_handling": "maybe"}, "--instance-handling"),
    ],
)
def test_settings_refused_before_connecting(values: dict[str, Any], named: str) -> None:
    connect = Connect()
    with pytest.raises(ValueError) as refused:
        build_service(settings(**values), connect)
    assert named in str(refused.value)
    assert connect.calls == 0


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"concurrency": 0}, "--concurrency must be 1..1000, got 0"),
        ({"concurrency": 1001}, "--concurrency must be 1..1000"),
        ({"wait_seconds": 25}, "--wait-seconds must be 0..20 (SQS long poll), got 25"),
        ({"job_timeout": 50_000}, "--job-timeout: "),
        ({"job_timeouts": "render=50000"}, "--job-timeouts render: "),
        ({"heartbeat_interval": -1.0}, "--heartbeat-interval: must be positive"),
    ],
)
def test_settings_refused_before_any_request(values: dict[str, Any], named: str) -> None:
    connect = Connect()
    with pytest.raises(ValueError) as refused:
        build_service(settings(**values), connect)
    assert str(refused.value).startswith(named)
    assert connect.sqs.calls == []


def test_the_queues_visibility_timeout_is_checked_too() -> None:
    """Known only once the queue answers: still refused naming what to change."""
    with pytest.raises(ValueError, match=r"^--visibility-timeout \(the jobs queue's"):
        build_service(settings(), Connect(FakeSqs(visibility=50_000)))
    # A HeartbeatSeconds that the queue's redelivery time makes too short.
    slow_queue = Connect(FakeSqs(visibility=3600))
    with pytest.raises(ValueError, match=r"^--task-heartbeat-seconds: HeartbeatSeconds 1000"):
        build_service(settings(task_heartbeat_seconds=1000, max_queue_wait=100), slow_queue)


def test_a_queue_that_does_not_answer_is_refused() -> None:
    with pytest.raises(ValueError, match=rf"^jobs queue {re.escape(JOBS)} does not answer"):
        build_service(settings(), Connect(FakeSqs(down=True)))


def test_a_jobs_queue_that_does_not_exist_is_refused_by_name() -> None:
    pattern = (
        rf"^jobs queue {re.escape(JOBS)} does not exist "
        r"\(AWS.SimpleQueueService.NonExistentQueue\) "
        r"\(--jobs-queue-url / BRIDGE_JOBS_QUEUE_URL; configuration from defaults\)$"
    )
    with pytest.raises(ValueError, match=pattern):
        build_service(settings(), Connect(FakeSqs(missing=JOBS)))


def test_a_jobs_dlq_that_does_not_exist_is_refused_by_name_before_any_job() -> None:
    connect = Connect(FakeSqs(missing=DLQ), jobs_dlq_url=DLQ, source="environment")
    with pytest.raises(ValueError) as refused:
        build_service(settings(), connect)
    assert str(refused.value) == (
        f"jobs DLQ {DLQ} does not exist (AWS.SimpleQueueService.NonExistentQueue) "
        "(--jobs-dlq-url / BRIDGE_JOBS_DLQ_URL; configuration from environment)"
    )
    assert [call["QueueUrl"] for call in connect.sqs.calls][-1] == DLQ


def test_a_jobs_dlq_that_is_refused_says_access_denied() -> None:
    connect = Connect(FakeSqs(denied=DLQ), jobs_dlq_url=DLQ)
    with pytest.raises(ValueError, match=rf"^jobs DLQ {re.escape(DLQ)} access denied \("):
        build_service(settings(), connect)


def test_a_jobs_dlq_that_answers_is_asked_only_for_its_arn() -> None:
    connect = Connect(jobs_dlq_url=DLQ)
    build_service(settings(), connect)
    (probe,) = [call for call in connect.sqs.calls if call["QueueUrl"] == DLQ]
    assert probe["AttributeNames"] == ["QueueArn"]


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("404", "does not exist (404)"),
        ("NoSuchBucket", "does not exist (NoSuchBucket)"),
        ("403", "access denied (403: Forbidden)"),
    ],
)
def test_a_claim_check_bucket_that_cannot_be_used_is_refused_by_name(
    code: str, problem: str
) -> None:
    s3 = FakeS3(error=code)
    connect = Connect(claim_check_bucket="outputs", s3=s3)
    with pytest.raises(ValueError) as refused:
        build_service(settings(), connect)
    assert str(refused.value) == (
        f"claim-check bucket outputs {problem} "
        "(--claim-check-bucket / BRIDGE_CLAIM_CHECK_BUCKET; configuration from defaults)"
    )
    assert s3.calls == [{"Bucket": "outputs"}]


def test_no_claim_check_bucket_no_probe() -> None:
    s3 = FakeS3(error="404")
    build_service(settings(), Connect(s3=s3))
    assert s3.calls == []


def test_a_results_queue_that_does_not_exist_is_named_at_start_but_the_worker_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker restarted during a results queue outage must come back to send its spool."""
    with caplog.at_level(logging.WARNING, logger="consumers.compose"):
        build_service(settings(), Connect(FakeSqs(missing=RESULTS)))
    assert f"results queue {RESULTS} does not exist (AWS.SimpleQueueService.NonExist" in (
        caplog.text
    )
    assert "results will be spooled until it can be" in caplog.text


def test_required_instance_metadata_that_does_not_answer_is_refused() -> None:
    connect = Connect(metadata_endpoint="http://127.0.0.1:9")
    with pytest.raises(ValueError, match=r"^--instance-handling: instance metadata does not"):
        build_service(settings(instance_handling="on"), connect)


def test_a_low_max_receive_count_and_no_dlq_are_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="consumers.compose"):
        build_service(settings(), Connect(FakeSqs(max_receives=2)))
    text = caplog.text
    assert "maxReceiveCount is 2" in text and "no jobs DLQ URL" in text
