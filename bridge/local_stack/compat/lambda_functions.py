"""Lambda functions and their SQS event source mappings, as the Terraform AWS provider creates
them and as the embedded stack runs them.

AWS behaviour and sources:

* A function may use a layer version another account shares (Lambda developer guide, "Adding
  layers to functions": "you can also add layers that other accounts have shared"; the public
  Powertools for AWS Lambda layers are published by account 017000801446). CreateFunction
  resolves ``arn:aws:lambda:<region>:<account>:layer:<name>:<version>`` in ``<account>``.
* An SQS event source mapping is polled by Lambda (developer guide, "Using Lambda with Amazon
  SQS": "Lambda polls the queue and invokes your Lambda function synchronously with an event
  that contains queue messages"): SendMessage returns before, and independently of, any
  invocation.

moto 5.2.5 looks every layer up in the function's own account (a shared layer is
``UnknownLayerVersionException``: the provider retries CreateFunction for minutes), and runs an
SQS mapping's function inside SendMessage, in Docker (without Docker it fails and the message
goes back to the queue). The embedded stack runs the mappings itself, in process
(``bridge.local_stack.adopt``), so the second patch only stops moto from invoking them.
"""

from __future__ import annotations

from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

SHARED_LAYERS = "lambda-shared-layers"
POLLED_MAPPINGS = "lambda-sqs-mappings-polled"


def layer_account(arn: str) -> str | None:
    """The account of a layer version ARN (``arn:<p>:lambda:<region>:<account>:layer:...``)."""
    parts = arn.split(":")
    return parts[4] if len(parts) >= 8 and parts[5] == "layer" else None


def shared_layers() -> list[Replacement]:
    """AWS (developer guide, "Adding layers to functions"): CreateFunction accepts a layer
    version shared by another account. moto 5.2.5 resolves every layer in the function's own
    account. Wraps ``LambdaFunction._get_layers_data``: a layer in another account is looked up
    there and, when that account has not published it here either (the public layers of AWS and
    its partners cannot be published locally), recorded as given with a code size of 0. A layer
    of the function's own account that does not exist is still refused, as AWS does."""
    from moto.awslambda.models import LambdaFunction, lambda_backends

    original = expect(LambdaFunction, "_get_layers_data")

    def _get_layers_data(self: Any, arns: list[str]) -> list[dict[str, Any]]:
        layers: list[dict[str, Any]] = []
        for arn in arns:
            account = layer_account(arn)
            if account in (None, self.account_id):
                layers.extend(original(self, [arn]))
                continue
            version = lambda_backends[account][arn.split(":")[3]].layers_versions_by_arn(arn)
            layers.append(
                {"Arn": version.arn, "CodeSize": version.code_size}
                if version
                else {"Arn": arn, "CodeSize": 0}
            )
        return layers

    return [Replacement(LambdaFunction, "_get_layers_data", _get_layers_data)]


def polled_mappings() -> list[Replacement]:
    """AWS (developer guide, "Using Lambda with Amazon SQS"): Lambda polls an SQS event source;
    SendMessage never runs the function. moto 5.2.5 registers each SQS mapping on its queue and
    invokes the function (in Docker) inside every SendMessage. Wraps
    ``LambdaBackend.create_event_source_mapping`` to keep the mapping
    (Get/List/Update/DeleteEventSourceMapping answer as before) but take it off the queue, so
    moto never invokes it; the embedded stack polls adopted mappings itself."""
    from moto.awslambda.models import LambdaBackend
    from moto.sqs.models import sqs_backends

    original = expect(LambdaBackend, "create_event_source_mapping")

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        mapping = original(self, spec)
        for queue in sqs_backends[self.account_id][self.region_name].queues.values():
            if queue.queue_arn == mapping.event_source_arn:
                queue.lambda_event_source_mappings.pop(mapping.function_arn, None)
        return mapping

    return [Replacement(LambdaBackend, "create_event_source_mapping", create_event_source_mapping)]


PATCHES: list[Patch] = [
    Patch(
        SHARED_LAYERS,
        "CreateFunction accepts a layer version another account shares",
        shared_layers,
    ),
    Patch(
        POLLED_MAPPINGS,
        "Lambda polls an SQS event source mapping; SendMessage never invokes the function",
        polled_mappings,
    ),
]
