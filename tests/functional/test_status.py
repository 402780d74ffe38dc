"""``status`` against moto in-process: queue depths, ages (peek and CloudWatch), running
executions with their jobs; and Terraform outputs as a configuration source."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bridge.aws import Clients
from bridge.config import BridgeConfig, ConfigError, load_config, load_tf_outputs
from bridge.contract import parse_job
from bridge.local_stack.resources import StackSettings, create_resources
from bridge.ops.inspect.executions import ExecutionLens
from bridge.ops.status import collect
from tests.support.aws import start
from tests.support.polling import eventually, visible


def by_label(status: Any) -> dict[str, Any]:
    return {queue.label: queue for queue in status.queues}


def test_status_counts_queues_and_the_jobs_of_running_executions(
    aws: Clients, stack: dict[str, str]
) -> None:
    config = BridgeConfig(**stack)
    execution = start(aws.sfn, stack["state_machine_arn"], [{"n": i} for i in range(3)], "s")
    assert eventually(lambda: visible(aws.sqs, stack["jobs_queue_url"]) == 3)
    (message,) = aws.sqs.receive_message(QueueUrl=stack["jobs_queue_url"], WaitTimeSeconds=1)[
        "Messages"
    ]
    job = parse_job(message["Body"])
    aws.sfn.send_task_success(taskToken=job.token, output="{}")

    def one_done() -> Any:
        status = collect(aws, config)
        return status if status.executions and status.executions[0].jobs.done == 1 else None

    status = eventually(one_done, timeout_s=10)

    queues = by_label(status)
    assert list(queues) == [
        "jobs",
        "jobs DLQ",
        "jobs archive",
        "results",
        "results DLQ",
        "results archive",
    ]
    assert (queues["jobs"].visible, queues["jobs"].in_flight) == (2, 1)
    assert "maxReceiveCount" in queues["jobs"].age_note and queues["jobs"].age_source is None
    (run,) = status.executions
    assert (run.name, run.arn) == ("s", execution)
    assert (run.jobs.total, run.jobs.waiting, run.jobs.running, run.jobs.done) == (3, 0, 2, 1)
    assert status.consumers is None and "unknown" in status.consumers_note
    assert json.loads(json.dumps(status.to_json(), default=str))["queues"][0]["name"] == (
        "callback-bridge-jobs"
    )


def test_the_age_of_a_queue_without_redrive_policy_comes_from_a_peek_that_consumes_nothing(
    aws: Clients, stack: dict[str, str]
) -> None:
    for n in range(3):
        aws.sqs.send_message(QueueUrl=stack["jobs_archive_url"], MessageBody=str(n))

    archive = by_label(collect(aws, BridgeConfig(**stack), now=lambda: 4e9))["jobs archive"]

    assert archive.age_source == "peek" and archive.visible == 3
    assert archive.oldest_age_s is not None and archive.oldest_age_s > 1e9
    assert visible(aws.sqs, stack["jobs_archive_url"]) == 3


def test_on_aws_the_age_comes_from_cloudwatch(aws: Clients, stack: dict[str, str]) -> None:
    cloudwatch = boto3.client("cloudwatch")
    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {
                "MetricName": "ApproximateAgeOfOldestMessage",
                "Dimensions": [{"Name": "QueueName", "Value": "callback-bridge-jobs"}],
                "Timestamp": datetime.now(UTC),
                "Value": 42.0,
            }
        ],
    )

    queues = by_label(collect(aws, BridgeConfig(**stack), cloudwatch=cloudwatch))

    assert (queues["jobs"].oldest_age_s, queues["jobs"].age_source) == (42.0, "cloudwatch")
    assert queues["results"].oldest_age_s is None
    assert queues["results"].age_note == "no datapoint in the last 15 min"


def test_a_cloudwatch_refusal_is_a_note_not_a_failure(aws: Clients, stack: dict[str, str]) -> None:
    cloudwatch = boto3.client("cloudwatch")
    with Stubber(cloudwatch) as stub:
        for _ in range(6):
            stub.add_client_error("get_metric_statistics", "AccessDenied", "not allowed")
        queues = by_label(collect(aws, BridgeConfig(**stack), cloudwatch=cloudwatch))

    assert queues["jobs"].age_note == "CloudWatch: AccessDenied"
    assert queues["jobs"].visible == 0


def test_distributed_map_jobs_are_counted_from_the_map_run(aws: Clients) -> None:
    resources = create_resources(aws, StackSettings(prefix="dist", map_mode="DISTRIBUTED"))
    execution = start(aws.sfn, resources["state_machine_arn"], [{"n": 0}, {"n": 1}], "d")
    assert eventually(lambda: visible(aws.sqs, resources["jobs_queue_url"]) == 2)

    counts = ExecutionLens(aws.sfn).job_counts(execution)

    assert (counts.source, counts.total, counts.running, counts.done) == ("map run", 2, 2, 0)


# --- --tf-outputs -----------------------------------------------------------------------------

#: The shape of ``terraform output -json`` for infra/examples/complete/outputs.tf.
TF_OUTPUTS = {
    "region": {"sensitive": False, "type": "string", "value": "eu-west-1"},
    "jobs_queue_url": {"sensitive": False, "type": "string", "value": "https://sqs/1/cb-jobs"},
    "results_queue_url": {"sensitive": False, "type": "string", "value": "https://sqs/1/cb-res"},
    "jobs_dlq_url": {"sensitive": False, "type": "string", "value": "https://sqs/1/cb-jobs-dlq"},
    "results_dlq_url": {"sensitive": False, "type": "string", "value": "https://sqs/1/cb-r-dlq"},
    "jobs_archive_url": {"sensitive": False, "type": "string", "value": "https://sqs/1/cb-j-dl"},
    "state_machine_arn": {"sensitive": False, "type": "string", "value": "arn:sm"},
    "completion_function_name": {"sensitive": False, "type": "string", "value": "fn"},
    "alarm_names": {"sensitive": False, "type": ["list", "string"], "value": ["a"]},
    "bridge_environment": {"sensitive": False, "type": ["map", "string"], "value": {"A": "b"}},
}


def test_terraform_outputs_fill_the_configuration(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(TF_OUTPUTS))

    config = load_config({"BRIDGE_JOBS_QUEUE_URL": "from-env"}, tf_outputs=path)

    assert config.jobs_queue_url == "https://sqs/1/cb-jobs"  # the explicit file wins
    assert config.jobs_archive_url == "https://sqs/1/cb-j-dl"
    assert (config.region, config.state_machine_arn) == ("eu-west-1", "arn:sm")
    assert config.results_archive_url is None and config.endpoint_url is None
    assert "Terraform outputs" in config.source


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read Terraform outputs"),
        ("{", "not valid JSON"),
        ("[]", "must hold a JSON object"),
        ('{"other": {"value": "x"}}', "name no callback-bridge setting"),
    ],
)
def test_bad_terraform_outputs_are_named(tmp_path: Path, content: str | None, problem: str) -> None:
    path = tmp_path / "outputs.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=problem):
        load_tf_outputs(path)
