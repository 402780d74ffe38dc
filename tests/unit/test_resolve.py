"""bridge.ops.resolve: every id kind an operator has, ambiguity, and what names nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bridge.dead_letter import EXECUTION_ATTRIBUTE, JOB_ID_ATTRIBUTE
from bridge.ops.inspect.queues import QueueRef
from bridge.ops.resolve import (
    AmbiguousId,
    JobRef,
    LetterKeys,
    Resolver,
    UnknownId,
    letters_of,
)
from bridge.quarantine import SOURCE_ATTRIBUTE

pytestmark = pytest.mark.unit

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:bridge"
EXECUTIONS = "arn:aws:states:us-east-1:123456789012:execution:bridge:"
RUN = "arn:aws:states:us-east-1:123456789012:mapRun:bridge/FanOut:0123"
CHILD = "arn:aws:states:us-east-1:123456789012:execution:bridge/FanOut:child-1"
ARCHIVE = QueueRef("jobs", "archive", "https://sqs.local/123456789012/cb-jobs-dead-letters")


class FakeSfn:
    """describe_execution / describe_map_run over a fixed set of executions."""

    def __init__(self, names: set[str], children: dict[str, str] | None = None) -> None:
        self.arns = {EXECUTIONS + name for name in names}
        self.children = children or {}
        self.calls: list[str] = []

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.calls.append(executionArn)
        if executionArn in self.children:
            return {"executionArn": executionArn, "mapRunArn": RUN}
        if executionArn not in self.arns:
            error = {"Error": {"Code": "ExecutionDoesNotExist", "Message": "no"}}
            raise ClientError(error, "DescribeExecution")  # type: ignore[arg-type]
        return {"executionArn": executionArn}

    def describe_map_run(self, mapRunArn: str) -> dict[str, Any]:
        if mapRunArn != RUN:
            error = {"Error": {"Code": "ResourceNotFound", "Message": "no"}}
            raise ClientError(error, "DescribeMapRun")  # type: ignore[arg-type]
        return {"mapRunArn": RUN, "executionArn": EXECUTIONS + "big"}


def message(mid: str, job_id: str | None, source: str | None = None, **attrs: str) -> Any:
    attributes = {name: {"DataType": "String", "StringValue": v} for name, v in attrs.items()}
    if source:
        attributes[SOURCE_ATTRIBUTE] = {"DataType": "String", "StringValue": source}
    body = json.dumps({"job_id": job_id, "token": "t" * 40}) if job_id else "not json"
    return {"MessageId": mid, "Body": body, "MessageAttributes": attributes}


def keys(*messages: Any) -> list[LetterKeys]:
    return [LetterKeys.of(ARCHIVE, m, MACHINE) for m in messages]


LETTERS = keys(
    message("arch-1", "gone/RunJob/0/0", source="orig-1"),
    message("arch-2", "gone/RunJob/1/0", source="orig-2"),
    message("arch-3", "big/RunJob/4/1", source="orig-3"),
    message("arch-4", None, source="orig-4"),
)


def resolver(names: set[str] | None = None, letters: Any = LETTERS) -> Resolver:
    sfn = FakeSfn({"gone", "big"} if names is None else names, {CHILD: "big"})
    return Resolver(sfn, MACHINE, lambda: letters)


@pytest.mark.parametrize(
    ("given", "kind", "message_ids", "execution"),
    [
        ("arch-1", "message", ["arch-1"], EXECUTIONS + "gone"),
        ("orig-2", "source-message", ["arch-2"], EXECUTIONS + "gone"),
        ("gone/RunJob/1/0", "job", ["arch-2"], EXECUTIONS + "gone"),
        ("big/RunJob/4", "job", ["arch-3"], EXECUTIONS + "big"),  # any attempt
        ("gone", "execution", ["arch-1", "arch-2"], EXECUTIONS + "gone"),
        (EXECUTIONS + "gone", "execution", ["arch-1", "arch-2"], EXECUTIONS + "gone"),
        (RUN, "map-run", ["arch-3"], EXECUTIONS + "big"),
        (CHILD, "execution", ["arch-3"], EXECUTIONS + "big"),  # a child names its parent
        ("orig-4", "source-message", ["arch-4"], None),  # malformed: no job, still found
    ],
)
def test_every_id_kind_resolves(
    given: str, kind: str, message_ids: list[str], execution: str | None
) -> None:
    target = resolver().resolve(given)

    assert target.kind == kind
    assert [letter.message_id for letter in target.letters] == message_ids
    assert target.execution_arn == execution


def test_a_message_id_names_its_job() -> None:
    target = resolver().resolve("orig-3")
    assert target.job == JobRef("big", "RunJob", 4, 1)
    assert target.job.job_id == "big/RunJob/4/1"


def test_an_execution_without_dead_letters_still_resolves() -> None:
    target = resolver(names={"gone", "big", "clean"}).resolve("clean")
    assert (target.kind, target.letters) == ("execution", ())
    with pytest.raises(UnknownId, match="has no dead letter"):
        letters_of([target])


def test_an_id_that_is_a_message_and_an_execution_is_ambiguous() -> None:
    letters = [*LETTERS, *keys(message("gone", "x/RunJob/0/0"))]
    with pytest.raises(AmbiguousId) as raised:
        resolver(letters=letters).resolve("gone")
    text = str(raised.value)
    assert "dead letter gone in cb-jobs-dead-letters (job x/RunJob/0/0)" in text
    assert f"execution {EXECUTIONS}gone" in text  # every candidate whole
    assert len(raised.value.candidates) == 2


def test_a_job_with_two_copies_is_ambiguous_for_one_letter_but_not_for_an_execution() -> None:
    letters = [*LETTERS, *keys(message("arch-5", "gone/RunJob/0/0", source="orig-5"))]
    job = resolver(letters=letters).resolve("gone/RunJob/0/0")
    with pytest.raises(AmbiguousId, match=r"arch-1 .*arch-5"):
        letters_of([job])
    execution = resolver(letters=letters).resolve("gone")
    assert [k.message_id for k in letters_of([execution])] == ["arch-1", "arch-2", "arch-5"]


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("nothing-here", "no dead letter with message id 'nothing-here'"),
        (EXECUTIONS + "never", "no execution"),
        ("arn:aws:states:us-east-1:123456789012:mapRun:bridge/X:9", "no Map Run"),
        (MACHINE, "neither an execution ARN nor a Map Run ARN"),
        ("  ", "empty id"),
    ],
)
def test_what_names_nothing_says_so(given: str, words: str) -> None:
    with pytest.raises(UnknownId, match=words):
        resolver().resolve(given)


def test_letters_are_read_once_and_only_when_needed() -> None:
    reads: list[int] = []

    def letters() -> list[LetterKeys]:
        reads.append(1)
        return LETTERS

    found = Resolver(FakeSfn({"gone"}), MACHINE, letters)
    found.resolve("gone/RunJob/0")  # a job id: its letters are read
    assert reads == [1]
    found.resolve("arch-1")
    found.resolve("orig-1")
    assert reads == [1]


def test_letter_keys_prefer_attributes_and_derive_the_execution_from_the_job_id() -> None:
    (attributed,) = keys(
        message(
            "m",
            "body/RunJob/0/0",
            **{JOB_ID_ATTRIBUTE: "attr/RunJob/2/0", EXECUTION_ATTRIBUTE: "arn:x"},
        )
    )
    assert (attributed.job_id, attributed.execution_arn) == ("attr/RunJob/2/0", "arn:x")
    (derived,) = keys(message("m", "run-9/RunJob/3/0"))
    assert derived.execution_arn == EXECUTIONS + "run-9"
    assert derived.source_message_id is None


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("a/RunJob/0/0", JobRef("a", "RunJob", 0, 0)),
        ("fanout-1_x/RunJob/12", JobRef("fanout-1_x", "RunJob", 12, None)),
        ("a/RunJob/x/0", None),
        ("arn:aws:x/RunJob/0/0", None),
        ("a/RunJob", None),
    ],
)
def test_job_ids_parse(text: str, parsed: JobRef | None) -> None:
    assert JobRef.parse(text) == parsed
    if parsed is not None:
        assert parsed.job_id == text
        assert parsed.covers(f"{parsed.execution_name}/RunJob/{parsed.index}/0")
