"""A result on its way to the results queue: what the sender (:mod:`consumers.results`) sends
and, while the queue will not take it, what :mod:`consumers.held_results` holds. Its own module
so that both can use it without importing each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.contract import Result
from consumers.spool import Spooled


@dataclass
class Pending:
    result: Result
    message_id: str
    #: None: the job message is not in hand (a result loaded from the spool at start).
    receipt_handle: str | None
    #: The message body, once fitted (:func:`consumers.results.fit_result`).
    body: str = ""
    #: Other copies of the job message this result answers (message id -> receipt handle),
    #: received while the result was spooled: deleted with it.
    copies: dict[str, str] = field(default_factory=dict)
    #: Its spool entry, once spooled.
    spooled: Spooled | None = None
    #: Whether the worker's job table holds its job (submitted by a job thread: a slot).
    in_table: bool = True
    #: The result is on the results queue; what is left is deleting its job message(s).
    sent: bool = False
    #: Its task is over (the execution stopped or timed out): the result can never be taken.
    closed: bool = False

    def take_handles(self) -> list[tuple[str, str]]:
        """The job messages to delete now (message id, receipt handle), forgotten here."""
        handles = list(self.copies.items())
        if self.receipt_handle is not None:
            handles.insert(0, (self.message_id, self.receipt_handle))
        self.receipt_handle, self.copies = None, {}
        return handles


#: Called once per job message when the sender is done with it: (message_id, delivered).
DoneCallback = Callable[[str, bool], None]
#: Job messages to delete, each with the result that answers it: (pending, message id, handle).
Handles = list[tuple[Pending, str, str]]
