"""Copies of jobs and results: seeded, delayed, tokens kept for the log check."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time

import pytest

from bridge.chaos.inject import COPY_DELAY_S, Copies, foreign_result, mark_copy
from bridge.chaos.tokens import real_length_tokens
from bridge.contract import parse_result


def test_every_job_is_copied_at_rate_one_and_none_at_zero() -> None:
    copies = Copies(random.Random(1), job_rate=1.0, result_rate=0.0)
    body = json.dumps({"token": "tok-" + "x" * 30, "job_id": "a/RunJob/0/0"})
    copies.saw_job(body)
    copies.observer({"body": '{"result": 1}'}, acknowledged=True)
    assert copies.tokens == {"tok-" + "x" * 30}
    assert copies.pending() == 1
    assert copies.due(time.monotonic() + COPY_DELAY_S[1] + 0.1) == [("jobs", body)]
    assert copies.pending() == 0


def test_a_copy_of_a_job_says_so_in_its_input_and_nothing_else_changes() -> None:
    job = {"version": 1, "token": "t" * 40, "job_id": "a/RunJob/0/0", "input": {"n": 3}}
    copied = json.loads(mark_copy(json.dumps(job)))
    assert copied == {**job, "input": {"n": 3, "chaos_copy": True}}
    for poison in ("not json", json.dumps([1]), '{"a": 1, "a": 2}', json.dumps({"input": 5})):
        assert mark_copy(poison) == poison


def test_the_first_result_of_each_job_marks_it_delivered() -> None:
    copies = Copies(random.Random(1), job_rate=0.0, result_rate=0.0)
    result = json.dumps({"job_id": "a/RunJob/0/0", "outcome": "succeeded"})
    copies.observer({"body": result, "attributes": {"SentTimestamp": "1000500"}}, False)
    copies.observer({"body": result, "attributes": {"SentTimestamp": "1000200"}}, True)
    copies.observer({"body": result, "attributes": {"SentTimestamp": "1000900"}}, True)
    poison = json.dumps({"job_id": "chaos-poison-3/job"})
    copies.observer({"body": poison, "attributes": {"SentTimestamp": "1"}}, True)
    assert copies.delivered == {"a/RunJob/0/0": 1000.2}


def test_unacknowledged_and_poison_results_are_not_copied() -> None:
    copies = Copies(random.Random(1), job_rate=0.0, result_rate=1.0)
    copies.observer({"body": "{}"}, acknowledged=False)
    copies.observer({"body": '{"chaos": "chaos-poison-3"}'}, acknowledged=True)
    assert copies.pending() == 0
    copies.observer({"body": "{}"}, acknowledged=True)
    assert copies.pending() == 1


def test_a_foreign_result_is_well_formed() -> None:
    result = parse_result(foreign_result("t" * 36, "chaos-foreign/job"))
    assert result.outcome == "succeeded" and result.job_id == "chaos-foreign/job"


def test_issued_tokens_have_aws_length_while_the_campaign_runs() -> None:
    from moto.stepfunctions.parser.asl.eval.states import ContextObject

    original = ContextObject.update_task_token
    context = ContextObject({})  # type: ignore[typeddict-item]
    with real_length_tokens(7) as mint:
        tokens = [context.update_task_token() for _ in range(200)]
        assert context.context_object_data["Task"]["Token"] == tokens[-1]  # type: ignore[index]
    assert ContextObject.update_task_token is original and mint.issued == 200
    assert all(re.fullmatch(r"AQ[A-Za-z0-9+/]+==", t) for t in tokens)
    assert min(map(len, tokens)) >= 600 and max(map(len, tokens)) == 2048
    assert len(set(tokens)) == 200
    assert len(context.update_task_token()) == 36  # moto's own UUIDs again


@pytest.mark.parametrize(("style", "status"), [("exit", 13), ("sigkill", -9), ("segv", -11)])
def test_a_crashing_job_ends_its_process_the_way_it_asks(style: str, status: int) -> None:
    code = f"from bridge.chaos.work import crash; crash({style!r})"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert run.returncode == status
