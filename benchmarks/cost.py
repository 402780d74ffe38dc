"""Requests and transitions → dollars per million jobs, for jobs of a given duration.

The price table is the one place prices live. us-east-1, on-demand, after the free tiers,
recorded 2026-11-26 by hand from the public pricing pages below (the code does not fetch them;
check before quoting):

* Step Functions: https://aws.amazon.com/step-functions/pricing/ (Standard workflows, per state
  transition; API calls such as SendTaskSuccess/SendTaskHeartbeat/GetActivityTask are not
  billed separately);
* SQS: https://aws.amazon.com/sqs/pricing/ (standard queue, per request; each 64 KiB chunk of a
  payload is billed as one request, a batch of up to 10 is one request);
* Lambda: https://aws.amazon.com/lambda/pricing/ (x86, per request and per GB-second);
* S3: https://aws.amazon.com/s3/pricing/ (S3 Standard requests).

How duration enters (everything else is the measured requests and transitions per job):

* **bridge**: keep-alive only. Each running job's visibility is extended every V/2
  (V = ``bridge.timing.DEFAULT_VISIBILITY_TIMEOUT_S``), in ChangeMessageVisibilityBatch calls of
  up to 10 jobs; SendTaskHeartbeat every ``DEFAULT_HEARTBEAT_INTERVAL_S`` per job is a request
  but costs nothing (Step Functions bills transitions, not API calls).
* **naive**: nothing grows (samples set a visibility timeout longer than the job instead; a
  crashed job is then noticed only after that long).
* **polling**: every interval costs Wait + Task + Choice (3 transitions), one status-check Lambda
  invocation and one status read (S3 GET/HEAD).
* **activities** (on paper, not run): a Task state per job on an activity ARN; the worker
  long-polls GetActivityTask (60 s, not billed), heartbeats with SendTaskHeartbeat (not billed)
  and answers SendTaskSuccess. Assumed: the same Map overhead in transitions as the bridge
  (measured), no SQS and no Lambda; one GetActivityTask returns one task (no batching), so the
  API's token bucket (not dollars) is what limits it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bridge.timing import DEFAULT_HEARTBEAT_INTERVAL_S, TimingModel

#: The naive consumer's queue visibility timeout (benchmarks.naive_consumer.SAMPLE_VISIBILITY_S).
NAIVE_VISIBILITY_S = 300

PRICES_AS_OF = "2026-11-26"
REGION = "us-east-1"
#: USD per unit.
PRICES: dict[str, float] = {
    "states:transition": 0.025 / 1000,
    "sqs:request": 0.40 / 1_000_000,
    "lambda:request": 0.20 / 1_000_000,
    "lambda:gb_second": 0.0000166667,
    "s3:put_copy_post_list": 0.005 / 1000,
    "s3:get_head": 0.0004 / 1000,
}
SQS_CHUNK_BYTES = 64 * 1024
#: The completion Lambda's memory (infra/modules/completion ``memory_size``).
COMPLETION_MEMORY_MB = 256
#: The polling pattern's status-check Lambda: the smallest function, 100 ms per check.
STATUS_CHECK_MEMORY_MB = 128
STATUS_CHECK_S = 0.1
#: Job durations the report prices: label → seconds.
DURATIONS: dict[str, int] = {"1 min": 60, "10 min": 600, "1 h": 3600}
#: Jobs per ChangeMessageVisibilityBatch call (SQS's batch limit; a worker running 10 or more).
EXTENSION_BATCH = 10


@dataclass(frozen=True)
class PerJob:
    """One scenario's measured costs per job (from a benchmark run)."""

    requests: dict[str, float]  # per API, e.g. {"sqs:ReceiveMessage": 0.1}
    transitions: float
    lambda_invocations: float
    lambda_seconds: float = 0.0  # billed duration per job
    lambda_memory_mb: int = COMPLETION_MEMORY_MB
    #: Status checks per job in the run (polling only): what the measured figures include.
    polls: float = 0.0
    payload_bytes: int = 1024


def request_usd(api: str, n: float, payload_bytes: int = 1024) -> float:
    """Dollars for ``n`` calls of ``api``; Step Functions API calls are free."""
    service, _, operation = api.partition(":")
    if service == "sqs":
        chunks = math.ceil(payload_bytes / SQS_CHUNK_BYTES) if "Send" in operation else 1
        return n * chunks * PRICES["sqs:request"]
    if service == "s3":
        kind = (
            "s3:get_head" if operation in ("GetObject", "HeadObject") else "s3:put_copy_post_list"
        )
        return n * PRICES[kind]
    return 0.0


def lambda_usd(invocations: float, seconds: float, memory_mb: int) -> float:
    return (
        invocations * PRICES["lambda:request"]
        + seconds * memory_mb / 1024 * PRICES["lambda:gb_second"]
    )


def measured_usd(job: PerJob) -> float:
    """Dollars per job as measured (the run's short jobs)."""
    return (
        sum(request_usd(api, n, job.payload_bytes) for api, n in job.requests.items())
        + job.transitions * PRICES["states:transition"]
        + lambda_usd(job.lambda_invocations, job.lambda_seconds, job.lambda_memory_mb)
    )


def keepalive_per_job(duration_s: float) -> dict[str, float]:
    """The bridge's keep-alive requests for one job running ``duration_s``."""
    extensions = math.floor(duration_s / TimingModel().extend_every_s)
    return {
        "sqs:ChangeMessageVisibilityBatch": extensions / EXTENSION_BATCH,
        "states:SendTaskHeartbeat": math.floor(duration_s / DEFAULT_HEARTBEAT_INTERVAL_S),
    }


def polls(duration_s: float, interval_s: float) -> int:
    """Status checks until a job of ``duration_s`` is seen done: the first after one interval."""
    return max(1, math.ceil(duration_s / interval_s))


def per_poll_usd() -> float:
    return (
        3 * PRICES["states:transition"]
        + lambda_usd(1, STATUS_CHECK_S, STATUS_CHECK_MEMORY_MB)
        + PRICES["s3:get_head"]
    )


def usd_per_job(scenario: str, job: PerJob, duration_s: float, interval_s: float = 30) -> float:
    """Dollars for one job of ``duration_s`` in ``scenario`` (bridge, naive, polling,
    activities)."""
    if scenario == "bridge":
        extra = keepalive_per_job(duration_s)
        return measured_usd(job) + sum(request_usd(a, n) for a, n in extra.items())
    if scenario == "naive":  # the common sample: one visibility change per job a third of 300 s
        extensions = math.floor(duration_s / (NAIVE_VISIBILITY_S / 3))
        return measured_usd(job) + request_usd("sqs:ChangeMessageVisibility", extensions)
    if scenario == "naive-results-queue":  # short jobs only: no keep-alive
        return measured_usd(job)
    if scenario == "polling":
        # The measured figure without its polls (the run's status checks went straight to S3,
        # no Lambda), then the polls a job of this duration needs, each with its Lambda.
        fixed = measured_usd(job) - job.polls * (
            3 * PRICES["states:transition"] + PRICES["s3:get_head"]
        )
        return fixed + polls(duration_s, interval_s) * per_poll_usd()
    if scenario == "activities":
        return job.transitions * PRICES["states:transition"]
    raise ValueError(f"unknown scenario {scenario!r}")


def per_million(scenario: str, job: PerJob, interval_s: float = 30) -> dict[str, float]:
    """Dollars per million jobs: as measured, and for each of :data:`DURATIONS`."""
    out = {"measured": round(measured_usd(job) * 1e6, 2)}
    if scenario == "polling":  # the measured run's polls stood in for Lambda: price them so
        out["measured"] = round(
            (measured_usd(job) + job.polls * lambda_usd(1, STATUS_CHECK_S, STATUS_CHECK_MEMORY_MB))
            * 1e6,
            2,
        )
    for label, seconds in DURATIONS.items():
        out[label] = round(usd_per_job(scenario, job, seconds, interval_s) * 1e6, 2)
    return out


def keepalive_per_job_hour(concurrency: int = EXTENSION_BATCH) -> dict[str, Any]:
    """Keep-alive of one running job for an hour: requests by API and dollars, with extensions
    batched over ``concurrency`` jobs per worker (at most 10 a call)."""
    batch = max(1, min(EXTENSION_BATCH, concurrency))
    extensions = 3600 / TimingModel().extend_every_s
    requests = {
        "sqs:ChangeMessageVisibilityBatch": round(extensions / batch, 2),
        "states:SendTaskHeartbeat": round(3600 / DEFAULT_HEARTBEAT_INTERVAL_S, 2),
    }
    usd = sum(request_usd(api, n) for api, n in requests.items())
    return {"requests": requests, "usd_per_job_hour": usd, "usd_per_million_job_hours": usd * 1e6}
