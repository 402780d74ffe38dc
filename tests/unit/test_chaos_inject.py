"""Copies of jobs and results: seeded, delayed, tokens kept for the log check."""

from __future__ import annotations

import json
import random
import time

from bridge.chaos.inject import COPY_DELAY_S, Copies, foreign_result
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
