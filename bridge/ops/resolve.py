"""One resolver for every id an operator has: what it names, or why it names nothing.

The bridge prints several kinds of id, and an operator should be able to paste any of them
into ``dlq show/fail/redrive/delete``, ``jobs show`` or ``rerun``:

==================  =====================================================  =================
kind                looks like                                             names
==================  =====================================================  =================
``message``         the archived (or DLQ) copy's SQS message id            one dead letter
``source-message``  the id the worker or completion handler logged, kept   one dead letter
                    in ``bridge-source-message-id`` (it survives archiving
                    and redrives)
``job``             ``<execution name>/RunJob/<index>/<attempt>`` (or      one job (and its
                    without ``/<attempt>``: any attempt)                    dead letters)
``execution``       an execution's name or ARN (a Distributed Map child's   an execution
                    ARN names its parent)
``map-run``         a Map Run ARN (``...:mapRun:...``)                      its execution
==================  =====================================================  =================

A job id holds a ``/`` and no ``:``, an ARN starts with ``arn:``; anything else is looked up
both as a message id (in the dead letters the caller peeked) and as an execution name. An id
that names more than one thing where one is needed is an :class:`AmbiguousId` listing every
candidate in full; one that names nothing is an :class:`UnknownId` saying where it looked.
Clients are passed in; nothing here prints.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from bridge.contract import read_text
from bridge.dead_letter import EXECUTION_ATTRIBUTE, JOB_ID_ATTRIBUTE
from bridge.errors import error_code
from bridge.ops.inspect.queues import InspectError, QueueRef
from bridge.quarantine import SOURCE_ATTRIBUTE

Kind = Literal["message", "source-message", "job", "execution", "map-run"]
#: Step Functions' answers meaning "no such execution or map run".
_MISSING = frozenset({"ExecutionDoesNotExist", "ResourceNotFound", "InvalidArn"})
#: ``<execution name>/<state>/<index>[/<attempt>]``: execution names hold no ``/`` or ``:``.
_JOB_ID = re.compile(
    r"^(?P<name>[^/:\s]{1,80})/(?P<state>[^/:\s]+)/(?P<index>\d+)(?:/(?P<attempt>\d+))?$"
)


class UnknownId(InspectError):
    """The id names nothing the resolver could find (the message says where it looked)."""


class AmbiguousId(InspectError):
    """The id names several things where one is needed; the message lists every candidate."""

    def __init__(self, text: str, candidates: list[str]) -> None:
        self.candidates = candidates
        listed = "; ".join(candidates)
        super().__init__(
            f"{text!r} is ambiguous: it names {len(candidates)} things: {listed}; "
            "give one of these ids instead"
        )


@dataclass(frozen=True)
class JobRef:
    """A parsed job id: the job ``index`` of execution ``execution_name``'s Map state
    ``state``; ``attempt`` None means any attempt."""

    execution_name: str
    state: str
    index: int
    attempt: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> JobRef | None:
        match = _JOB_ID.match(text or "")
        if match is None:
            return None
        attempt = match["attempt"]
        return cls(
            match["name"],
            match["state"],
            int(match["index"]),
            None if attempt is None else int(attempt),
        )

    @property
    def job_id(self) -> str:
        """The id as the bridge writes it (without the attempt when it is unknown)."""
        base = f"{self.execution_name}/{self.state}/{self.index}"
        return base if self.attempt is None else f"{base}/{self.attempt}"

    def covers(self, job_id: str | None) -> bool:
        """Whether ``job_id`` is this job (any attempt when ``attempt`` is None)."""
        other = JobRef.parse(job_id)
        if other is None:
            return False
        same_job = (other.execution_name, other.state, other.index) == (
            self.execution_name,
            self.state,
            self.index,
        )
        return same_job and (self.attempt is None or other.attempt == self.attempt)


def execution_arn_for(state_machine_arn: str | None, execution_name: str) -> str | None:
    """The ARN of ``execution_name`` of a (standard) state machine, or None without one."""
    if not state_machine_arn or ":stateMachine:" not in state_machine_arn:
        return None
    return state_machine_arn.replace(":stateMachine:", ":execution:") + ":" + execution_name


@dataclass(frozen=True)
class LetterKeys:
    """The ids one dead letter answers to, read from its attributes and body only (no AWS
    call), so every peeked message can be matched before any is explained."""

    ref: QueueRef
    message_id: str
    source_message_id: str | None
    job_id: str | None
    execution_arn: str | None

    @classmethod
    def of(
        cls, ref: QueueRef, message: dict[str, Any], state_machine_arn: str | None = None
    ) -> LetterKeys:
        attributes = {
            name: str(value.get("StringValue", ""))
            for name, value in message.get("MessageAttributes", {}).items()
        }
        body = str(message.get("Body", ""))
        job_id = attributes.get(JOB_ID_ATTRIBUTE) or read_text(body, "job_id")
        execution = attributes.get(EXECUTION_ATTRIBUTE) or read_text(body, "execution_arn")
        job = JobRef.parse(job_id)
        if not execution and job is not None:
            execution = execution_arn_for(state_machine_arn, job.execution_name)
        return cls(
            ref,
            str(message["MessageId"]),
            attributes.get(SOURCE_ATTRIBUTE) or None,
            job_id or None,
            execution or None,
        )

    def describe(self) -> str:
        """A candidate line: every id in full, nothing shortened."""
        text = f"dead letter {self.message_id} in {self.ref.name}"
        if self.job_id:
            text += f" (job {self.job_id})"
        return text


@dataclass(frozen=True)
class Target:
    """What one id names. ``letters``: the dead letters it selects (message kinds: exactly
    one; a job or an execution: all of theirs, maybe none). ``execution_arn``: the execution
    it names or belongs to, when known; ``job``: the job, for the message and job kinds."""

    text: str
    kind: Kind
    execution_arn: str | None = None
    job: JobRef | None = None
    letters: tuple[LetterKeys, ...] = field(default=())

    def one_letter(self) -> LetterKeys:
        """The single dead letter this id names; :class:`AmbiguousId` or :class:`UnknownId`
        otherwise (a job with two copies of its dead letter, an execution with several)."""
        if len(self.letters) == 1:
            return self.letters[0]
        if not self.letters:
            raise UnknownId(f"{self.kind} {self.text!r} has no dead letter")
        raise AmbiguousId(self.text, [letter.describe() for letter in self.letters])


class Resolver:
    """Resolves ids against the dead letters a caller peeked (``letters``, read lazily and
    once) and the bridge's state machine, through one Step Functions client."""

    def __init__(
        self,
        sfn: Any,
        state_machine_arn: str | None,
        letters: Callable[[], Iterable[LetterKeys]] = lambda: (),
        letters_of_jobs: bool = True,
    ) -> None:
        self.sfn = sfn
        self.state_machine_arn = state_machine_arn
        self._read_letters = letters
        #: False: a job id or an execution resolves without reading the dead letters (a peek
        #: counts as a receive); only a bare id, maybe a message id, reads them.
        self.letters_of_jobs = letters_of_jobs
        self._letters: list[LetterKeys] | None = None

    @property
    def letters(self) -> list[LetterKeys]:
        if self._letters is None:
            self._letters = list(self._read_letters())
        return self._letters

    def resolve(self, text: str) -> Target:
        text = text.strip()
        if not text:
            raise UnknownId("an empty id names nothing")
        if text.startswith("arn:") and ":mapRun:" in text:
            return self._map_run(text)
        if text.startswith("arn:") and (":execution:" in text or ":express:" in text):
            return self._execution(text, self._parent_of(text), "execution")
        if text.startswith("arn:"):
            raise UnknownId(
                f"{text!r} is neither an execution ARN nor a Map Run ARN "
                "(state machine ARNs name no job: give one of its executions)"
            )
        job = JobRef.parse(text)
        if job is not None:
            return self._job(text, job)
        return self._bare(text)

    def resolve_all(self, texts: Iterable[str]) -> list[Target]:
        return [self.resolve(text) for text in texts]

    # --- kinds ------------------------------------------------------------------------------

    def _job(self, text: str, job: JobRef) -> Target:
        if not self.letters_of_jobs:
            return Target(
                text, "job", execution_arn_for(self.state_machine_arn, job.execution_name), job
            )
        arn = self._letter_execution(job) or execution_arn_for(
            self.state_machine_arn, job.execution_name
        )
        letters = tuple(letter for letter in self.letters if job.covers(letter.job_id))
        return Target(text, "job", arn, job, letters)

    def _letter_execution(self, job: JobRef) -> str | None:
        for letter in self.letters:
            parsed = JobRef.parse(letter.job_id)
            if parsed and parsed.execution_name == job.execution_name and letter.execution_arn:
                return letter.execution_arn
        return None

    def _execution(self, text: str, arn: str, kind: Kind) -> Target:
        if not self.letters_of_jobs:
            return Target(text, kind, arn)
        letters = tuple(letter for letter in self.letters if letter.execution_arn == arn)
        return Target(text, kind, arn, None, letters)

    def _map_run(self, text: str) -> Target:
        try:
            run = self.sfn.describe_map_run(mapRunArn=text)
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                raise UnknownId(f"no Map Run {text}") from None
            raise
        return self._execution(text, str(run["executionArn"]), "map-run")

    def _parent_of(self, arn: str) -> str:
        """A Distributed Map child execution's ARN names its parent (the one whose job ids and
        dead letters carry it); any other execution ARN names itself. Unknown ARNs are kept:
        their dead letters may outlive the execution's 90 days."""
        try:
            described = self.sfn.describe_execution(executionArn=arn)
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                if any(letter.execution_arn == arn for letter in self.letters):
                    return arn
                raise UnknownId(f"no execution {arn}") from None
            raise
        run = described.get("mapRunArn")
        if run:
            return str(self.sfn.describe_map_run(mapRunArn=run)["executionArn"])
        return arn

    def _bare(self, text: str) -> Target:
        candidates: list[Target] = []
        for letter in self.letters:
            if letter.message_id == text:
                candidates.append(self._letter_target(text, "message", letter))
        for letter in self.letters:
            if letter.source_message_id == text and letter.message_id != text:
                candidates.append(self._letter_target(text, "source-message", letter))
        arn = execution_arn_for(self.state_machine_arn, text)
        has_letters = any(letter.execution_arn == arn for letter in self.letters)
        if arn and (has_letters or self._exists(arn)):
            candidates.append(self._execution(text, arn, "execution"))
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise AmbiguousId(text, [_describe(candidate) for candidate in candidates])
        where = f"{len(self.letters)} dead letter(s) peeked"
        if arn:
            where += f", executions of {self.state_machine_arn}"
        raise UnknownId(
            f"no dead letter with message id {text!r} (archived copy or original, "
            f"bridge-source-message-id), and no execution of that name ({where}); "
            "a job id looks like <execution name>/RunJob/<index>/<attempt>"
        )

    def _letter_target(self, text: str, kind: Kind, letter: LetterKeys) -> Target:
        job = JobRef.parse(letter.job_id)
        arn = letter.execution_arn or (
            execution_arn_for(self.state_machine_arn, job.execution_name) if job else None
        )
        return Target(text, kind, arn, job, (letter,))

    def _exists(self, arn: str) -> bool:
        try:
            self.sfn.describe_execution(executionArn=arn)
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return False
            raise
        return True


def _describe(target: Target) -> str:
    if target.kind in ("message", "source-message"):
        what = "archived message id" if target.kind == "message" else "original message id of"
        return f"{what} {target.letters[0].describe()}"
    return f"execution {target.execution_arn}"


#: Kinds of id that may select several dead letters at once.
MANY: frozenset[Kind] = frozenset({"execution", "map-run"})


def letters_of(targets: Iterable[Target]) -> list[LetterKeys]:
    """The dead letters ``targets`` select, each once, in order. An execution or a Map Run
    selects all of its dead letters; any other id must select exactly one (:class:`AmbiguousId`
    listing the candidates otherwise); an id that selects none is an :class:`UnknownId` (an
    action asked for something it cannot do)."""
    chosen: dict[tuple[str, str], LetterKeys] = {}
    for target in targets:
        if not target.letters:
            named = target.execution_arn or target.text
            raise UnknownId(f"{target.kind} {target.text!r} has no dead letter ({named})")
        letters = target.letters if target.kind in MANY else (target.one_letter(),)
        for letter in letters:
            chosen.setdefault((letter.ref.url, letter.message_id), letter)
    return list(chosen.values())
