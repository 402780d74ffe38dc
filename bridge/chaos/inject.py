"""What the campaign puts on the queues itself: copies of jobs and results, poison, and a result
carrying another state machine's token.

Job messages are seen where Step Functions sends them: a WSGI tap behind the embedded server's
request counter (the technique of ``benchmarks.ledger``) reads each ``SendMessage`` to the jobs
queue, keeps its token (for the log check) and, for a seeded fraction, queues a copy to be sent
a few seconds later (a duplicate delivery). A copy's job input carries ``chaos_copy`` (the
bridge ignores it; the job's journal records it), so its runs are told apart from the original
message's. Results are seen by the stack's event source observer, which also records when the
first result of each job reached the results queue (its ``SentTimestamp``: the result was
delivered); a fraction is sent again (a duplicate result).
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from bridge import strict_json
from bridge.chaos.fuzz import Poison
from bridge.contract import MAX_JSON_DEPTH, read_text, read_token
from bridge.local_stack.requests import request_body

#: A copy goes in this many seconds after the original (before, during or after its run).
COPY_DELAY_S = (0.0, 6.0)


class Copies:
    """Bodies to send again, each at its time; thread-safe (fed by the tap and the observer)."""

    def __init__(self, rng: random.Random, job_rate: float, result_rate: float) -> None:
        self.rng, self.job_rate, self.result_rate = rng, job_rate, result_rate
        self._lock = threading.Lock()
        self._due: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()
        self.tokens: set[str] = set()
        self.sent = {"duplicate_job": 0, "duplicate_result": 0}
        #: job id -> epoch seconds its first result reached the results queue.
        self.delivered: dict[str, float] = {}

    def _maybe(self, side: str, body: str, rate: float) -> None:
        with self._lock:
            if self.rng.random() < rate:
                at = time.monotonic() + self.rng.uniform(*COPY_DELAY_S)
                copy = mark_copy(body) if side == "jobs" else body
                heapq.heappush(self._due, (at, next(self._seq), side, copy))

    def saw_job(self, body: str) -> None:
        token = read_token(body)  # a queue body: poison may be over-deep or duplicate its keys
        if token:
            with self._lock:
                self.tokens.add(token)
        self._maybe("jobs", body, self.job_rate)

    def observer(self, record: dict[str, Any], acknowledged: bool) -> None:
        """The stack's event source observer: results it acknowledged may be sent again; the
        first result of each job marks it delivered."""
        body = record["body"]
        if body.count("chaos-poison-"):
            return
        job_id = read_text(body, "job_id")
        sent = record.get("attributes", {}).get("SentTimestamp")
        if job_id:
            at = int(sent) / 1000 if str(sent or "").isdigit() else time.time()
            with self._lock:
                self.delivered[job_id] = min(at, self.delivered.get(job_id, at))
        if acknowledged:
            self._maybe("results", body, self.result_rate)

    def due(self, now: float) -> list[tuple[str, str]]:
        with self._lock:
            out = []
            while self._due and self._due[0][0] <= now:
                _, _, side, body = heapq.heappop(self._due)
                out.append((side, body))
            return out

    def pending(self) -> int:
        with self._lock:
            return len(self._due)


def mark_copy(body: str) -> str:
    """A job message's body with ``chaos_copy`` in its input (unchanged if it has no object
    input: poison is copied as it is)."""
    try:
        message = strict_json.loads(body, max_depth=MAX_JSON_DEPTH)
    except strict_json.JSONError:
        return body
    if not isinstance(message, dict) or not isinstance(message.get("input"), dict):
        return body
    message["input"] = {**message["input"], "chaos_copy": True}
    return json.dumps(message, ensure_ascii=False)


class JobTap:
    """Hands each job message Step Functions sends to ``copies``: an observer of the stack's
    request counter, which sees the interpreter's SQS calls though they are answered in
    process."""

    def __init__(self, jobs_queue_name: str, copies: Copies) -> None:
        self.jobs_queue_name, self.copies = jobs_queue_name, copies

    def observe(self, environ: dict[str, Any]) -> None:
        if environ.get("HTTP_X_AMZ_TARGET") != "AmazonSQS.SendMessage":
            return
        try:
            request = json.loads(request_body(environ) or b"{}")
        except ValueError:
            request = {}
        url = str(request.get("QueueUrl", ""))
        if url.rstrip("/").endswith("/" + self.jobs_queue_name):
            self.copies.saw_job(str(request.get("MessageBody", "")))

    @classmethod
    def install(cls, stack: Any, jobs_queue_name: str, copies: Copies) -> JobTap:
        counter = stack.server.counter
        assert counter is not None, "the stack is not started"
        tap = cls(jobs_queue_name, copies)
        counter.observers.append(tap.observe)
        return tap


def send_poison(sqs: Any, queue_url: str, poison: Poison) -> str | None:
    """Send one poison message; returns SQS's refusal (then it is not counted as injected)."""
    try:
        sqs.send_message(
            QueueUrl=queue_url, MessageBody=poison.body, MessageAttributes=poison.attributes
        )
    except Exception as exc:  # SQS refusing a message is an outcome to report, not a crash
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def foreign_token(
    clients: Any, definition: Callable[[str], str], role_arn: str, name: str = "chaos-foreign"
) -> tuple[str, str]:
    """A real task token of *another* state machine (another region's Step Functions, as
    another deployment would be): start one execution of one job there and read its message.
    Returns (execution ARN, token)."""
    sqs, sfn = clients.sqs, clients.sfn
    queue = sqs.create_queue(QueueName=f"{name}-jobs")["QueueUrl"]
    machine = sfn.create_state_machine(name=name, definition=definition(queue), roleArn=role_arn)[
        "stateMachineArn"
    ]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"jobs": [{"n": 0}]}))[
        "executionArn"
    ]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            token = read_token(messages[0]["Body"])
            if token is None:
                raise RuntimeError("the foreign state machine's job carries no readable token")
            return arn, token
    raise RuntimeError("the foreign state machine queued no job within 20 s")


def foreign_result(token: str, job_id: str = "chaos-foreign/job") -> str:
    """A well-formed result for a task the bridge never issued."""
    return json.dumps(
        {
            "version": 1,
            "token": token,
            "job_id": job_id,
            "outcome": "succeeded",
            "output": {"forged": True},
            "worker": {"id": "chaos"},
        }
    )
