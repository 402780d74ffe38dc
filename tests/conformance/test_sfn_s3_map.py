"""The S3-fed Distributed Map the bridge's large fan-outs use (``FanOutFromS3``,
bridge/ops/fanout.py): items read from a JSON array object, results written back to S3.

AWS: "ItemReader (Map)" and "ResultWriter (Map)", Step Functions developer guide. The result
files follow the manifest: ``<Prefix>/<map run id>/manifest.json`` lists ``SUCCEEDED_n.json`` and
``FAILED_n.json``, whose entries carry each child's ``Input`` and ``Output`` (JSON strings) or
its ``Error`` and ``Cause``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from bridge.aws import client_config
from tests.support.conformance import Target, wait_status

pytestmark = [pytest.mark.conformance, pytest.mark.slow]


def _s3(target: Target) -> Any:
    if target.is_aws:
        pytest.skip("the AWS conformance role is granted SQS only; S3 is checked locally")
    return boto3.client(
        "s3",
        endpoint_url=target.sqs.meta.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=client_config(),
    )


def _bucket(s3: Any, items: list[dict[str, Any]]) -> str:
    bucket = f"cbconf-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="items/in.json", Body=json.dumps(items).encode())
    return bucket


def _machine(target: Target, name: str, results_to: str | None, **tolerance: Any) -> str:
    """One Distributed Map reading ``$.bucket``/items/in.json; an item with ``fail`` fails.
    ``results_to``: no ResultWriter (None), the bucket the input names ("$.bucket"), or a
    bucket name."""
    state: dict[str, Any] = {
        "Type": "Map",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket.$": "$.bucket", "Key": "items/in.json"},
        },
        "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Check",
            "States": {
                "Check": {
                    "Type": "Choice",
                    "Default": "Ok",
                    "Choices": [
                        {"Variable": "$.value.fail", "IsPresent": True, "Next": "Fail"},
                    ],
                },
                "Fail": {"Type": "Fail", "Error": "Item.Failed", "Cause": "asked to"},
                "Ok": {"Type": "Pass", "Parameters": {"doubled.$": "$.value.n"}, "End": True},
            },
        },
        **tolerance,
        "End": True,
    }
    if results_to:
        where = {"Bucket.$": results_to} if results_to.startswith("$") else {"Bucket": results_to}
        state["ResultWriter"] = {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {
                **where,
                "Prefix.$": "States.Format('results/{}', $$.Execution.Name)",
            },
        }
    return target.state_machine(name, {"StartAt": "M", "States": {"M": state}})


def _json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_an_item_reader_maps_over_a_json_array_object(target: Target) -> None:
    s3 = _s3(target)
    bucket = _bucket(s3, [{"n": 1}, {"n": 2}, {"n": 3}])
    arn = _machine(target, "s3read", None)
    execution = target.sfn.start_execution(
        stateMachineArn=arn, input=json.dumps({"bucket": bucket})
    )["executionArn"]
    described = wait_status(target, execution)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == [{"doubled": 1}, {"doubled": 2}, {"doubled": 3}]


@pytest.mark.gap("sfn-result-writer-files")
def test_a_result_writer_writes_each_childs_result_to_files_the_manifest_lists(
    target: Target,
) -> None:
    s3 = _s3(target)
    bucket = _bucket(s3, [{"n": 1}, {"n": 2, "fail": True}, {"n": 3}])
    arn = _machine(target, "s3write", bucket, ToleratedFailurePercentage=100)
    execution = target.sfn.start_execution(
        stateMachineArn=arn, input=json.dumps({"bucket": bucket}), name="run-1"
    )["executionArn"]
    described = wait_status(target, execution)
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    details = output["ResultWriterDetails"]
    assert details["Bucket"] == bucket
    assert details["Key"].startswith("results/run-1/")
    assert details["Key"].endswith("/manifest.json")
    manifest = _json(s3, bucket, details["Key"])
    assert manifest["DestinationBucket"] == bucket
    assert manifest["MapRunArn"] == output["MapRunArn"]
    files = manifest["ResultFiles"]
    succeeded = [e for f in files["SUCCEEDED"] for e in _json(s3, bucket, f["Key"])]
    failed = [e for f in files["FAILED"] for e in _json(s3, bucket, f["Key"])]
    assert sorted(json.loads(e["Output"])["doubled"] for e in succeeded) == [1, 3]
    assert all(e["Status"] == "SUCCEEDED" for e in succeeded)
    assert sorted(json.loads(e["Input"])["index"] for e in succeeded) == [0, 2]
    assert len(failed) == 1
    assert (failed[0]["Status"], failed[0]["Error"], failed[0]["Cause"]) == (
        "FAILED",
        "Item.Failed",
        "asked to",
    )
    assert json.loads(failed[0]["Input"]) == {"value": {"n": 2, "fail": True}, "index": 1}


@pytest.mark.gap("sfn-result-writer-parameters")
def test_result_writer_parameter_paths_select_from_the_state_input(target: Target) -> None:
    s3 = _s3(target)
    bucket = _bucket(s3, [{"n": 1}])
    arn = _machine(target, "s3path", "$.bucket")
    execution = target.sfn.start_execution(
        stateMachineArn=arn, input=json.dumps({"bucket": bucket}), name="run-2"
    )["executionArn"]
    described = wait_status(target, execution)
    assert described["status"] == "SUCCEEDED", described
    details = json.loads(described["output"])["ResultWriterDetails"]
    assert details["Bucket"] == bucket
    assert details["Key"].startswith("results/run-2/")
    assert _json(s3, bucket, details["Key"])["DestinationBucket"] == bucket
