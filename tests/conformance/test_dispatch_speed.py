"""Speed of moto's request dispatch and serialiser, and of botocore in the stack's own callers
(patches ``moto-request-id-substitution``, ``botocore-user-agent-cache`` and
``moto-serializer-aliases``), without a change in what a response says.

The canaries count work, not time. What the responses say is checked here for the request id,
and by every other conformance test for the fields the serialiser writes."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.support.conformance import Target, local_only, receive_all, send_batch

pytestmark = [pytest.mark.conformance, pytest.mark.slow]

SENDS = 5


def send_some(target: Target, url: str) -> None:
    """SENDS identical-looking SendMessage calls: what the canaries count work over."""
    for n in range(SENDS):
        target.sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")


@pytest.mark.gap("moto-request-id-substitution")
def test_json_responses_are_not_searched_for_an_xml_request_id(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_only(target)
    import re

    from moto.core import responses

    url = target.queue("request-id")
    searched: list[int] = []  # characters searched, per call

    class CountingRe:
        def __getattr__(self, name: str) -> Any:
            return getattr(re, name)

        def sub(self, pattern: Any, replacement: Any, string: Any, **kwargs: Any) -> Any:
            searched.append(len(string) if isinstance(string, str | bytes) else 0)
            return re.sub(pattern, replacement, string, **kwargs)

    monkeypatch.setattr(responses, "re", CountingRe())
    send_some(target, url)
    assert sum(searched) == 0, f"{sum(searched)} characters of {SENDS} JSON bodies searched"


def test_an_xml_response_carries_its_request_id_in_its_body_and_header(target: Target) -> None:
    local_only(target)
    sts = boto3.client(
        "sts",
        endpoint_url=target.sqs.meta.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    metadata = sts.get_caller_identity()["ResponseMetadata"]  # RequestId: from the XML body
    assert metadata["RequestId"] == metadata["HTTPHeaders"]["x-amzn-requestid"]


@pytest.mark.gap("botocore-user-agent-cache")
def test_user_agent_components_are_not_cleaned_on_every_request(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_only(target)
    from botocore import useragent

    url = target.queue("user-agent")
    target.sqs.send_message(QueueUrl=url, MessageBody="first")
    allowed = useragent._USERAGENT_ALLOWED_CHARACTERS
    checked = [0]

    class Counting:
        def __contains__(self, character: object) -> bool:
            checked[0] += 1
            return character in allowed

    monkeypatch.setattr(useragent, "_USERAGENT_ALLOWED_CHARACTERS", Counting())
    send_some(target, url)
    assert checked[0] < 100, f"{checked[0]} characters checked for {SENDS} similar requests"


@pytest.mark.gap("moto-serializer-aliases")
def test_message_fields_are_not_aliased_anew_for_every_message(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_only(target)
    from moto.core import serialize

    url = target.queue("aliases")
    send_batch(target, url, [f"m-{n}" for n in range(20)])
    receive_all(target, url, 10)  # the first response works the names out
    providers = [0]
    original = serialize.AttributeAliasProvider.__init__

    def counting(self: Any, context: Any) -> None:
        providers[0] += 1
        original(self, context)

    monkeypatch.setattr(serialize.AttributeAliasProvider, "__init__", counting)
    received = receive_all(target, url, 10)
    assert len({message["Body"] for message in received}) == 10
    assert providers[0] < 36, f"{providers[0]} alias providers built for 10 messages"
