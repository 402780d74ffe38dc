"""ChangeMessageVisibility only for a message in flight. moto 5.2.5 accepts any receipt handle
the message ever had and hides the message again, even once its visibility timeout has lapsed.

AWS behaviour and source: ChangeMessageVisibility API reference, "Errors": ``MessageNotInflight``
(HTTP 400), "The specified message isn't in flight"; a message is in flight between being
received and being deleted or its visibility timeout expiring (developer guide, "Amazon SQS
visibility timeout"). In ChangeMessageVisibilityBatch such an entry fails alone, in ``Failed``.

Why the bridge relies on it: a worker restarted over its result spool takes the spooled jobs'
messages back with the receipt handles it kept (``consumers.spool_takeover``). On AWS that fails
once the visibility timeout has lapsed (the message is visible, another worker may receive it);
locally it must fail too, or the chaos campaign cannot see what happens then
(``tests/unit/test_chaos_finding_sqs_not_in_flight.py``).
"""

from __future__ import annotations

from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

NOT_IN_FLIGHT = "sqs-message-not-in-flight"
CODE = "MessageNotInflight"
MESSAGE = "The specified message isn't in flight."


def _message(queue: Any, receipt_handle: str) -> Any:
    """The message that had ``receipt_handle`` (through the depth index when
    ``sqs-flat-cost`` built one), or None."""
    from bridge.local_stack.compat.sqs_speed import indexed

    store = None if queue.fifo_queue else indexed(queue)
    if store is not None:
        return store.by_handle(receipt_handle)
    return next((m for m in queue._messages if m.had_receipt_handle(receipt_handle)), None)


def not_in_flight() -> list[Replacement]:
    """AWS (ChangeMessageVisibility API reference, "Errors"): ``MessageNotInflight`` for a
    message not in flight; in the batch, that entry alone fails. moto 5.2.5 hides any message
    that ever had the handle. Replaces ``SQSResponse.change_message_visibility`` (refuse a
    message not in flight,
    then moto's) and ``SQSBackend.change_message_visibility_batch`` (moto's steps, that
    refusal and any other SQS error failing its entry alone). Upstream: check
    ``message.visible`` in ``SQSBackend.change_message_visibility`` and collect
    ``SQSException`` per entry in the batch."""
    from moto.sqs import models, responses
    from moto.sqs.exceptions import SQSException

    respond = expect(responses.SQSResponse, "change_message_visibility")
    expect(models.SQSBackend, "change_message_visibility_batch")
    maximum = expect(models, "MAXIMUM_VISIBILITY_TIMEOUT")

    class MessageNotInflight(SQSException):
        code = CODE

        def __init__(self) -> None:
            super().__init__(CODE, MESSAGE)

    def refuse_if_visible(backend: Any, queue_name: str, receipt_handle: str) -> None:
        message = _message(backend.get_queue(queue_name), receipt_handle)
        if message is not None and message.visible:
            raise MessageNotInflight()

    def change_message_visibility(self: Any) -> Any:
        receipt_handle = self._get_param("ReceiptHandle")
        refuse_if_visible(self.sqs_backend, self._get_queue_name(), receipt_handle)
        return respond(self)

    def change_message_visibility_batch(
        self: Any, queue_name: str, entries: list[dict[str, Any]]
    ) -> tuple[list[str], list[dict[str, Any]]]:
        success: list[str] = []
        error: list[dict[str, Any]] = []
        for entry in entries:
            try:
                seconds = int(entry["VisibilityTimeout"])
                if not 0 <= seconds <= maximum:
                    raise ValueError(seconds)
            except (KeyError, TypeError, ValueError):
                error.append(_failed(entry, "InvalidParameterValue", "Visibility timeout invalid"))
                continue
            try:
                refuse_if_visible(self, queue_name, entry["ReceiptHandle"])
                self.change_message_visibility(queue_name, entry["ReceiptHandle"], seconds)
            except SQSException as exc:
                error.append(_failed(entry, exc.code, getattr(exc, "message", str(exc))))
            else:
                success.append(entry["Id"])
        return success, error

    return [
        Replacement(responses.SQSResponse, "change_message_visibility", change_message_visibility),
        Replacement(
            models.SQSBackend, "change_message_visibility_batch", change_message_visibility_batch
        ),
    ]


def _failed(entry: dict[str, Any], code: str, message: str) -> dict[str, Any]:
    return {"Id": entry["Id"], "SenderFault": True, "Code": code, "Message": message}


PATCHES: list[Patch] = [
    Patch(
        NOT_IN_FLIGHT,
        "ChangeMessageVisibility(Batch) refuses a message whose visibility timeout has lapsed "
        "(MessageNotInflight; in a batch, that entry alone)",
        not_in_flight,
    ),
]
