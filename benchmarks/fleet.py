"""The fleet model: how many jobs one account-region can keep in flight, and complete per
second, within Step Functions' API quotas (:mod:`benchmarks.quotas`).

A fleet with ``N`` jobs in flight, each running ``duration_s``, finishes ``N / duration_s`` jobs a
second in steady state. Per second it then sends:

* ``SendTaskSuccess``: one per finished job (the model puts every job there: failures go to
  their own bucket of the same size, so all-success is the worst case for one bucket);
* ``SendTaskHeartbeat``: ``N * heartbeats_per_job_hour / 3600`` for keep-alive, plus
  ``probe_heartbeats_per_job`` per finished job (the worker's stale check of a message that
  waited in the queue);
* ``StartExecution``: one per ``jobs_per_execution`` finished jobs.

Each API may use :data:`benchmarks.quotas.HEADROOM` (80 %) of its refill rate; the largest ``N``
that keeps every API inside its share is the answer, and the API that binds is the one that
throttles first. The per-job and per-job-hour inputs come from the bench run
(``callback-bridge bench``: the ``steady`` scenario and the keep-alive probes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.quotas import HEADROOM, SQS_IN_FLIGHT_PER_QUEUE, RegionClass, sustained_limit

#: The job the model sizes for unless told otherwise: the bridge exists for jobs of minutes to
#: hours, and one hour is the figure the issue's targets use.
DEFAULT_DURATION_S = 3600.0


@dataclass(frozen=True)
class FleetInputs:
    """What one job costs the Step Functions APIs (measured by ``bench``) and the shape of the
    work (assumed, stated in the output)."""

    #: SendTaskHeartbeat calls per job per hour of running (the keep-alive probes measure it).
    heartbeats_per_job_hour: float
    #: How long each job runs.
    duration_s: float = DEFAULT_DURATION_S
    #: Jobs in one execution (1: one job per execution; 10: a Map of ten).
    jobs_per_execution: int = 1
    #: Heartbeats per job outside keep-alive: the stale check before a job that waited in the
    #: queue runs (at most one per delivery; 1 assumes every job waited).
    probe_heartbeats_per_job: float = 1.0
    #: Jobs a worker runs at once (informational: the keep-alive figure depends on it).
    jobs_per_worker: int = 4

    def __post_init__(self) -> None:
        if self.heartbeats_per_job_hour < 0 or self.probe_heartbeats_per_job < 0:
            raise ValueError("heartbeat rates must be 0 or more")
        if self.duration_s <= 0:
            raise ValueError(f"duration_s must be positive, got {self.duration_s}")
        if self.jobs_per_execution < 1 or self.jobs_per_worker < 1:
            raise ValueError("jobs_per_execution and jobs_per_worker must be at least 1")

    def per_job_in_flight(self) -> dict[str, float]:
        """Requests per second each job in flight adds, by API."""
        finish = 1 / self.duration_s
        return {
            "states:SendTaskSuccess": finish,
            "states:SendTaskHeartbeat": self.heartbeats_per_job_hour / 3600
            + self.probe_heartbeats_per_job * finish,
            "states:StartExecution": finish / self.jobs_per_execution,
        }


@dataclass(frozen=True)
class FleetLimit:
    """The answer for one region class: how far the fleet goes and what stops it."""

    region: RegionClass
    max_jobs_in_flight: int
    completions_per_s: float
    throttles_first: str
    #: Each API's share of its refill rate at ``max_jobs_in_flight`` (the binding one is at
    #: the headroom, 0.8).
    share_of_refill: dict[str, float]
    #: Finished jobs per second the callback and start buckets allow however short the jobs
    #: (heartbeats aside): min(SendTaskSuccess share, StartExecution share * jobs per execution).
    completions_per_s_ceiling: float
    #: Jobs queues needed at ``max_jobs_in_flight`` (SQS: about 120,000 in flight per queue).
    jobs_queues_needed: int


def fleet_limit(
    inputs: FleetInputs, region: RegionClass = "large", headroom: float = HEADROOM
) -> FleetLimit:
    """The most jobs in flight (and completions per second) within ``headroom`` of every
    API's refill in ``region``; ties name the API listed first in ``per_job_in_flight``."""
    rates = inputs.per_job_in_flight()
    limits = {api: sustained_limit(api, region, headroom) for api in rates}
    bounds = {api: limits[api] / rate for api, rate in rates.items() if rate > 0}
    binding = min(bounds, key=lambda api: bounds[api])
    n = int(bounds[binding])
    refill = {api: sustained_limit(api, region, 1.0) for api in rates}
    ceiling = min(
        limits["states:SendTaskSuccess"],
        limits["states:StartExecution"] * inputs.jobs_per_execution,
    )
    return FleetLimit(
        region=region,
        max_jobs_in_flight=n,
        completions_per_s=round(n / inputs.duration_s, 1),
        throttles_first=binding,
        share_of_refill={api: round(n * rate / refill[api], 3) for api, rate in rates.items()},
        completions_per_s_ceiling=round(ceiling, 1),
        jobs_queues_needed=-(-n // SQS_IN_FLIGHT_PER_QUEUE),
    )


def model(cases: dict[str, FleetInputs]) -> dict[str, Any]:
    """Every case in both region classes, with its inputs: what ``bench`` prints and reports."""
    out: dict[str, Any] = {"headroom": HEADROOM, "cases": {}}
    for name, inputs in cases.items():
        out["cases"][name] = {
            "inputs": asdict(inputs),
            **{r: asdict(fleet_limit(inputs, r)) for r in ("large", "other")},
        }
    return out
