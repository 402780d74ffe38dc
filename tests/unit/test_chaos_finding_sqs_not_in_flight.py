"""Found by the chaos campaign (issue 18, item 8): the embedded SQS lets a stale receipt handle
hide a message that is no longer in flight; AWS answers ``MessageNotInflight``.

``ChangeMessageVisibility`` "changes the visibility timeout of a specified message"; a message
is in flight between its receipt and its deletion, and a call for a message whose visibility
timeout has lapsed fails with ``MessageNotInflight`` (SQS API reference, the error list of
ChangeMessageVisibility). moto accepts the old handle and hides the message again.

Why it matters: the result spool (``spool_takeover.take_back``) takes back, after a restart, the
job messages of spooled results with the receipt handles the spool kept. Locally that always
works, even when the replacement starts after the visibility timeout (a slow start, a reboot),
so the campaign cannot see what happens on AWS then: the message is visible, another worker
receives it, its stale check finds the task open (the result is still in the spool) and it runs
the job again. The 1,000-job campaign's ``reran_after_result`` counted two such runs
(``callback-bridge chaos --seed 2026`` at 9462f8f, consumers restarted 12 s after a SIGKILL
with a 6 s visibility timeout, before the take-back existed): they started half a second after
the restarted worker had sent the spooled results, before the completion handler had closed
their tasks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from bridge.local_stack.server import EmbeddedServer


@pytest.fixture
def sqs() -> Iterator[Any]:
    server = EmbeddedServer().start()
    try:
        yield boto3.client(
            "sqs",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    finally:
        server.stop()


@pytest.mark.xfail(
    strict=True,
    reason="moto accepts ChangeMessageVisibility for a message no longer in flight "
    "(AWS: MessageNotInflight), so a spool take-back after the visibility timeout "
    "cannot fail locally",
)
def test_a_stale_receipt_handle_cannot_hide_a_message_no_longer_in_flight(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="jobs", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="job")
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    time.sleep(1.5)  # its visibility timeout lapses: visible again, no longer in flight
    with pytest.raises(ClientError) as refused:
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=30
        )
    assert "MessageNotInflight" in refused.value.response["Error"]["Code"]
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["job"]
