"""Lambda functions and SQS event source mappings as the Terraform provider creates them
(``compat/lambda_functions.py``): a layer another account shares, and a mapping Lambda polls.

Not run against AWS: they create functions and IAM roles. The clients do not retry, so stock
moto's refusal fails its canary at once.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.local_stack.compat.lambda_functions import POLLED_MAPPINGS, SHARED_LAYERS
from tests.support.aws import loopback_client
from tests.support.conformance import Target

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

POWERTOOLS = (
    "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-x86_64:27"
)


@dataclass
class Lambda:
    client: Any
    sqs: Any
    role_arn: str
    prefix: str

    def function(self, name: str, **kwargs: Any) -> dict[str, Any]:
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("h.py", "def handler(event, context):\n    return {}\n")
        answer: dict[str, Any] = self.client.create_function(
            FunctionName=self.prefix + name,
            Runtime="python3.12",
            Role=self.role_arn,
            Handler="h.handler",
            Code={"ZipFile": code.getvalue()},
            **kwargs,
        )
        return answer


@pytest.fixture
def lambdas(target: Target) -> Iterator[Lambda]:
    if target.is_aws:
        pytest.skip("creates functions and roles; embedded only")
    endpoint = target.sqs.meta.endpoint_url
    iam = loopback_client("iam", endpoint)
    role = iam.create_role(RoleName=f"{target.prefix}fn", AssumeRolePolicyDocument="{}")
    yield Lambda(
        loopback_client("lambda", endpoint),
        loopback_client("sqs", endpoint),
        role["Role"]["Arn"],
        target.prefix,
    )


@pytest.mark.gap(SHARED_LAYERS)
def test_a_function_may_use_a_layer_another_account_shares(lambdas: Lambda) -> None:
    created = lambdas.function("shared", Layers=[POWERTOOLS])
    assert [layer["Arn"] for layer in created["Layers"]] == [POWERTOOLS]
    read = lambdas.client.get_function_configuration(FunctionName=created["FunctionArn"])
    assert [layer["Arn"] for layer in read["Layers"]] == [POWERTOOLS]


def test_a_missing_layer_of_the_functions_own_account_is_refused(lambdas: Lambda) -> None:
    missing = "arn:aws:lambda:us-east-1:123456789012:layer:nothing-here:1"
    with pytest.raises(ClientError):
        lambdas.function("own-missing", Layers=[missing])


@pytest.mark.gap(POLLED_MAPPINGS)
def test_send_message_does_not_run_a_mapped_function(lambdas: Lambda, target: Target) -> None:
    """Lambda polls the queue in its own time; stock moto receives the message inside
    SendMessage (to run the function in Docker), so our first receive is its second."""
    url = target.queue("mapped")
    function = lambdas.function("mapped")
    mapping = lambdas.client.create_event_source_mapping(
        EventSourceArn=target.queue_arn(url), FunctionName=function["FunctionArn"], BatchSize=1
    )
    assert lambdas.client.get_event_source_mapping(UUID=mapping["UUID"])["BatchSize"] == 1

    lambdas.sqs.send_message(QueueUrl=url, MessageBody="job")
    messages = lambdas.sqs.receive_message(
        QueueUrl=url, MessageSystemAttributeNames=["ApproximateReceiveCount"], WaitTimeSeconds=1
    )["Messages"]
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in messages] == ["1"]
