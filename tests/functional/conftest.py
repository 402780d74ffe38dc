"""In-process moto (``mock_aws``) with state machine execution on, and the bridge's resources
created exactly as the embedded stack creates them."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from bridge.aws import Clients
from bridge.local_stack.resources import StackSettings, create_resources
from tests.support.aws import embedded_moto


@pytest.fixture
def aws() -> Iterator[Clients]:
    with embedded_moto():
        yield Clients(sqs=boto3.client("sqs"), sfn=boto3.client("stepfunctions"))


@pytest.fixture
def stack(aws: Clients) -> dict[str, str]:
    return create_resources(
        aws,
        StackSettings(
            # A stop can race a receive that is already under way (the worker then gives the
            # message straight back): that costs one receive, so leave room for it.
            jobs_max_receive_count=4,
            results_max_receive_count=2,
            results_visibility_timeout_s=1,
        ),
    )
