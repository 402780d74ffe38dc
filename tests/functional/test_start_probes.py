"""Fail fast at start, against moto with clients built as the worker and the CLI build them:
every queue and bucket the worker uses is probed before it takes a job, and an AWS error names
the queue URL or bucket it was about (issue 19, item 6)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from botocore.exceptions import ClientError

from bridge.aws import Clients, build_clients
from bridge.cli.options import aws_errors, client_error_line, resolve_config
from bridge.config import BridgeConfig
from bridge.errors import target
from consumers.compose import build_service
from consumers.settings import ServiceSettings
from tests.support.aws import embedded_moto

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[BridgeConfig]:
    """moto with a jobs queue, a results queue, a jobs DLQ and a claim-check bucket."""
    monkeypatch.setenv("AWS_REGION", REGION)
    with embedded_moto():
        clients = build_clients(BridgeConfig(region=REGION), s3=True, autoscaling=False)
        urls = {
            f"{name}_url": clients.sqs.create_queue(QueueName=name.replace("_", "-"))["QueueUrl"]
            for name in ("jobs_queue", "results_queue", "jobs_dlq")
        }
        clients.s3.create_bucket(Bucket="bridge-outputs")
        yield BridgeConfig(
            region=REGION, claim_check_bucket="bridge-outputs", source="environment", **urls
        )


def build(config: BridgeConfig, tmp_path: Path) -> None:
    settings = ServiceSettings(
        handler="consumers.demo_handler:work",
        instance_handling="off",
        state_dir=str(tmp_path / "state"),
    )

    def connect() -> tuple[BridgeConfig, Clients]:
        return config, build_clients(config, s3=True, autoscaling=False)

    build_service(settings, connect)


def test_a_worker_whose_queues_and_bucket_answer_starts(aws: BridgeConfig, tmp_path: Path) -> None:
    build(aws, tmp_path)


def test_a_mistyped_jobs_dlq_stops_the_worker_naming_it(aws: BridgeConfig, tmp_path: Path) -> None:
    wrong = (aws.jobs_dlq_url or "") + "-typo"
    with pytest.raises(ValueError) as refused:
        build(aws.model_copy(update={"jobs_dlq_url": wrong}), tmp_path)
    assert str(refused.value).startswith(f"jobs DLQ {wrong} does not exist (")
    assert str(refused.value).endswith(
        "(--jobs-dlq-url / BRIDGE_JOBS_DLQ_URL; configuration from environment)"
    )


def test_a_missing_claim_check_bucket_stops_the_worker_naming_it(
    aws: BridgeConfig, tmp_path: Path
) -> None:
    with pytest.raises(ValueError) as refused:
        build(aws.model_copy(update={"claim_check_bucket": "bridge-outputz"}), tmp_path)
    assert str(refused.value) == (
        "claim-check bucket bridge-outputz does not exist (404) "
        "(--claim-check-bucket / BRIDGE_CLAIM_CHECK_BUCKET; configuration from environment)"
    )


def test_a_claim_check_bucket_that_is_no_bucket_name_is_refused(
    aws: BridgeConfig, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"^claim-check bucket 's3://x/y' is not a valid name"):
        build(aws.model_copy(update={"claim_check_bucket": "s3://x/y"}), tmp_path)


def test_an_aws_error_carries_the_queue_url_it_was_about(aws: BridgeConfig) -> None:
    sqs = build_clients(aws, autoscaling=False).sqs
    wrong = (aws.results_queue_url or "") + "-typo"
    with pytest.raises(ClientError) as failed:
        sqs.get_queue_attributes(QueueUrl=wrong, AttributeNames=["All"])
    assert target(failed.value) == ("QueueUrl", wrong)
    assert str(failed.value) == str(ClientError(failed.value.response, "GetQueueAttributes"))


def test_the_cli_line_names_the_queue_and_where_its_url_came_from(
    aws: BridgeConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = (aws.jobs_queue_url or "") + "-typo"
    monkeypatch.setenv("BRIDGE_JOBS_QUEUE_URL", wrong)
    config = resolve_config(None)
    sqs = build_clients(config, autoscaling=False).sqs
    with pytest.raises(typer.Exit) as exited, aws_errors():
        sqs.get_queue_attributes(QueueUrl=wrong, AttributeNames=["All"])
    assert exited.value.exit_code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        f"error: queue {wrong} does not exist (GetQueueAttributes; jobs_queue_url "
        "(env BRIDGE_JOBS_QUEUE_URL), configuration from environment)"
    )


def test_a_bucket_error_names_the_bucket(aws: BridgeConfig) -> None:
    s3 = build_clients(aws, s3=True, autoscaling=False).s3
    with pytest.raises(ClientError) as failed:
        s3.head_bucket(Bucket="no-such-bridge-bucket")
    assert client_error_line(failed.value).startswith(
        "bucket no-such-bridge-bucket does not exist (HeadBucket"
    )


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        (["status"], "BRIDGE_JOBS_QUEUE_URL"),
        (["dlq", "list"], "BRIDGE_JOBS_DLQ_URL"),
        (
            ["worker", "--handler", "consumers.demo_handler:work", "--instance-handling", "off"],
            "BRIDGE_JOBS_QUEUE_URL",
        ),
        (
            ["worker", "--handler", "consumers.demo_handler:work", "--instance-handling", "off"],
            "BRIDGE_JOBS_DLQ_URL",
        ),
    ],
    ids=["status", "dlq list", "worker jobs queue", "worker jobs DLQ"],
)
def test_a_mistyped_queue_url_is_named_by_every_command(
    aws: BridgeConfig,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: list[str],
    variable: str,
) -> None:
    """status, dlq list and worker: one line naming the URL that does not exist and where it
    came from, exit code 2."""
    from typer.testing import CliRunner

    from bridge.cli.main import app

    monkeypatch.chdir(tmp_path)  # no state file here: the environment is the configuration
    for name in ("jobs_queue_url", "results_queue_url", "jobs_dlq_url"):
        monkeypatch.setenv(f"BRIDGE_{name.upper()}", getattr(aws, name) or "")
    wrong = os.environ[variable] + "-typo"
    monkeypatch.setenv(variable, wrong)
    monkeypatch.setenv("BRIDGE_STATE_DIR", str(tmp_path / "state"))
    done = CliRunner().invoke(app, command)
    assert done.exit_code == 2, done.output
    (line,) = [line for line in done.output.splitlines() if line.startswith("error: ")]
    assert wrong in line and "does not exist" in line and "environment" in line, line
    assert variable in line, line
