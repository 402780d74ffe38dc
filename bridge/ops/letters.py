"""Dead letters chosen by id, and what an operator does to them one by one.

``dlq show/redrive/delete/fail ID...`` accept every id :mod:`bridge.ops.resolve` knows. Reading
is a peek (:mod:`bridge.ops.inspect.peek`); acting holds every dead-letter queue of the chosen
sides for the whole command (so a second receive cannot hand the same letter to someone else),
acts on the chosen letters and makes every other one visible again on the way out, even when
the resolution fails. An unknown or ambiguous id is an error before anything is done.

Redriving one letter (copy to its side's source queue, then delete) refuses two kinds unless
``force``:

* a **malformed** letter (its body breaks the contract, or the worker or completion handler
  quarantined it as malformed): the queue it came from refused it once and would again;
* a letter whose **task is closed** (with dead-letter handling on, the handler failed it
  before archiving): the worker would drop it as stale and nothing would run. ``rerun`` starts
  a new execution with the job's input instead; the outcome says so, with the id to give it.

The redriven copy keeps its body and the sender's attributes, and ``bridge-source-message-id``
(the id first logged for it, so the same id still finds it if it is dead-lettered again); the
handler's other ``bridge-*`` attributes are dropped, so a new dead-lettering records its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from bridge.dead_letter import ENRICHED_ATTRIBUTES
from bridge.ops.inspect.dead_letters import FailReport, fail_one
from bridge.ops.inspect.explain import Explainer, Found, attributes_of
from bridge.ops.inspect.peek import Held, held, peek
from bridge.ops.inspect.queues import InspectError, Side
from bridge.ops.redrive import attributes_for_send
from bridge.ops.resolve import LetterKeys, Resolver, Target, letters_of
from bridge.quarantine import REASON_ATTRIBUTE, SOURCE_ATTRIBUTE, string_attribute

#: How long an action holds the dead letters it works on.
ACTION_VISIBILITY_S = 120


@dataclass
class Letter:
    """One dead letter as read from its queue: the ids it answers to, the message, and the
    held batch it belongs to (None for a peek)."""

    keys: LetterKeys
    message: dict[str, Any]
    batch: Held | None = None


def _letters(batch: Held, side: Side, state_machine_arn: str | None) -> list[Letter]:
    refs = {ref.url: ref for ref in side.dead_letter_queues()}
    ref = refs[batch.url]
    return [
        Letter(LetterKeys.of(ref, message, state_machine_arn), message, batch)
        for message in batch.messages.values()
    ]


def peek_letters(
    sqs: Any, sides: Iterable[Side], state_machine_arn: str | None, limit: int = 1000
) -> list[Letter]:
    """Every dead letter of ``sides`` (DLQ, then archive), all visible again on return."""
    found: list[Letter] = []
    for side in sides:
        for ref in side.dead_letter_queues():
            batch = peek(sqs, ref.url, limit=limit)
            for letter in _letters(batch, side, state_machine_arn):
                found.append(Letter(letter.keys, letter.message))
    return found


def resolver_over(sfn: Any, state_machine_arn: str | None, letters: list[Letter]) -> Resolver:
    return Resolver(sfn, state_machine_arn, lambda: [letter.keys for letter in letters])


def pick(letters: list[Letter], targets: Iterable[Target]) -> list[Letter]:
    """The letters ``targets`` select (see :func:`bridge.ops.resolve.letters_of`)."""
    by_key = {(letter.keys.ref.url, letter.keys.message_id): letter for letter in letters}
    return [by_key[(keys.ref.url, keys.message_id)] for keys in letters_of(targets)]


@contextmanager
def holding(
    sqs: Any,
    sfn: Any,
    sides: Iterable[Side],
    state_machine_arn: str | None,
    ids: Iterable[str] | None,
    visibility_s: int = ACTION_VISIBILITY_S,
) -> Iterator[list[Letter]]:
    """Hold every dead letter of ``sides``, resolve ``ids`` among them (None: choose all) and
    yield the chosen ones; everything not deleted in the block is visible again afterwards."""
    with ExitStack() as stack:
        every: list[Letter] = []
        for side in sides:
            for ref in side.dead_letter_queues():
                batch = stack.enter_context(held(sqs, ref.url, visibility_s=visibility_s))
                every += _letters(batch, side, state_machine_arn)
        if ids is None:
            yield every
        else:
            yield pick(every, resolver_over(sfn, state_machine_arn, every).resolve_all(ids))


# --- delete --------------------------------------------------------------------------------


@dataclass
class DeleteReport:
    deleted: list[str] = field(default_factory=list)
    not_deleted: list[str] = field(default_factory=list)


def delete_letters(chosen: list[Letter]) -> DeleteReport:
    """Delete the chosen (held) letters for good."""
    report = DeleteReport()
    for letter in chosen:
        assert letter.batch is not None, "delete needs held letters"
        refused = letter.batch.delete([letter.keys.message_id])
        (report.not_deleted if refused else report.deleted).append(letter.keys.message_id)
    return report


# --- fail ----------------------------------------------------------------------------------


def fail_letters(sfn: Any, chosen: list[Letter], explainer: Explainer) -> FailReport:
    """Fail each chosen letter's waiting task with ``Bridge.DeadLettered`` and delete the
    letters whose task it failed (see :func:`bridge.ops.inspect.dead_letters.fail_one`)."""
    report = FailReport()
    for letter in chosen:
        assert letter.batch is not None, "fail needs held letters"
        found = explainer.explain(letter.keys.ref, letter.message)
        if fail_one(sfn, found, report):
            report.not_deleted.extend(letter.batch.delete([letter.keys.message_id]))
    return report


def advice(report: FailReport, job_of: dict[str, str | None]) -> dict[str, str]:
    """What to do with each letter ``fail`` kept (message id -> one line)."""
    said = {}
    for mid in report.already_closed:
        rerun = job_of.get(mid) or mid
        said[mid] = (
            f"task already closed: nothing to fail; run the job again with "
            f"'callback-bridge rerun {rerun}', or delete the letter with "
            f"'callback-bridge dlq delete {mid} --yes'"
        )
    for mid in report.no_token:
        said[mid] = (
            "no readable token: no task to fail (a malformed message); delete it with "
            f"'callback-bridge dlq delete {mid} --yes'"
        )
    return said


# --- redrive -------------------------------------------------------------------------------


@dataclass
class LetterOutcome:
    """What ``dlq redrive ID...`` did with one letter."""

    message_id: str
    queue: str
    job_id: str | None
    #: redriven | skipped | failed
    action: str
    destination: str | None = None
    #: Why it was skipped or failed, and what to do instead.
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def malformed(found: Found) -> str | None:
    """Why the queue a letter came from refused it, when it did (None: it did not)."""
    reason = attributes_of(found.message).get(REASON_ATTRIBUTE, "")
    if reason.startswith("malformed"):
        return reason
    return Explainer.problem(found.ref.side, str(found.message.get("Body", "")))


def _skip_reason(found: Found) -> str | None:
    problem = malformed(found)
    if problem is not None:
        return (
            f"malformed ({problem[:300]}): its queue would refuse it again; delete it with "
            f"'callback-bridge dlq delete {found.letter.message_id} --yes', or add --force"
        )
    if found.state.waiting is False:
        rerun = found.letter.job_id or found.letter.message_id
        return (
            f"its task is closed ({found.letter.task_state}): a redriven copy would be dropped "
            f"as stale and run nothing; run the job again with 'callback-bridge rerun {rerun}'"
        )
    return None


def redrive_attributes(message: dict[str, Any]) -> dict[str, Any]:
    """The sender's attributes and the original message id; not the handler's others."""
    kept = {
        name: value
        for name, value in attributes_for_send(message).items()
        if name not in ENRICHED_ATTRIBUTES
    }
    source = attributes_of(message).get(SOURCE_ATTRIBUTE) or str(message["MessageId"])
    return {**kept, SOURCE_ATTRIBUTE: string_attribute(source)}


def redrive_letters(
    sqs: Any,
    chosen: list[Letter],
    sides: Iterable[Side],
    explainer: Explainer,
    force: bool = False,
) -> list[LetterOutcome]:
    """Send each chosen (held) letter back to its side's source queue, then delete it; skip
    malformed letters and letters whose task is closed unless ``force`` (see the module)."""
    sources = {side.name: side.source_url for side in sides}
    outcomes = []
    for letter in chosen:
        assert letter.batch is not None, "redrive needs held letters"
        keys = letter.keys
        outcome = LetterOutcome(keys.message_id, keys.ref.name, keys.job_id, "skipped")
        outcomes.append(outcome)
        destination = sources.get(keys.ref.side)
        if not destination:
            outcome.note = f"no {keys.ref.side} queue configured: nowhere to redrive to"
            continue
        found = explainer.explain(keys.ref, letter.message)
        skip = None if force else _skip_reason(found)
        if skip:
            outcome.note = skip
            continue
        outcome.destination = destination.rstrip("/").rsplit("/", 1)[-1]
        try:
            sqs.send_message(
                QueueUrl=destination,
                MessageBody=letter.message["Body"],
                MessageAttributes=redrive_attributes(letter.message),
            )
        except Exception as exc:  # reported per letter; the letter stays where it was
            outcome.action, outcome.note = "failed", f"send refused: {exc}"
            continue
        if letter.batch.delete([keys.message_id]):
            outcome.action = "failed"
            outcome.note = "sent, but the dead letter could not be deleted (it is now twice)"
        else:
            outcome.action = "redriven"
    return outcomes


def review(chosen: list[Found]) -> dict[str, str]:
    """message id -> why a queue-wide redrive should not move it (malformed, task closed)."""
    said = {}
    for found in chosen:
        why = _skip_reason(found)
        if why:
            said[found.letter.message_id] = why
    return said


def explain_all(explainer: Explainer, letters: list[Letter]) -> list[Found]:
    return [explainer.explain(letter.keys.ref, letter.message) for letter in letters]


def require_ids(ids: list[str] | None, what: str) -> list[str]:
    """``ids`` if given; an :class:`InspectError` naming ``what`` otherwise."""
    if not ids:
        raise InspectError(f"give one or more ids of the dead letters to {what}")
    return ids
