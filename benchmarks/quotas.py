"""Step Functions API quotas the fleet model sizes against, as data.

Source: the AWS Step Functions developer guide, "Step Functions service quotas", section
"Quotas related to API action throttling" (token buckets: a bucket of ``bucket`` requests that
refills at ``refill_per_s``), as recorded in ``/work/shared/aws-facts.md`` (Step Functions: "API
token buckets"). The large regions are us-east-1, us-west-2 and eu-west-1; every other region
has the smaller buckets. New accounts may have less: read Service Quotas where it matters.

The three task callbacks have one bucket each: a fleet's heartbeats do not eat into its
SendTaskSuccess budget, but each is shared by every worker and every state machine of the
account in the region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RegionClass = Literal["large", "other"]

#: Where the buckets below are published (and where the project recorded them).
SOURCE = (
    "AWS Step Functions developer guide, Service quotas: quotas related to API action "
    "throttling (recorded in /work/shared/aws-facts.md)"
)
LARGE_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
#: The share of each refill rate the fleet model lets a fleet use: the rest is headroom for
#: retries, bursts and everything else in the account calling the same API.
HEADROOM = 0.8


@dataclass(frozen=True)
class Bucket:
    """One API's token bucket: ``bucket`` requests at once, refilled at ``refill_per_s``."""

    bucket: int
    refill_per_s: int


#: Token buckets by API and region class (STANDARD workflows).
STEP_FUNCTIONS: dict[str, dict[RegionClass, Bucket]] = {
    "states:SendTaskSuccess": {"large": Bucket(3000, 500), "other": Bucket(1500, 300)},
    "states:SendTaskFailure": {"large": Bucket(3000, 500), "other": Bucket(1500, 300)},
    "states:SendTaskHeartbeat": {"large": Bucket(3000, 500), "other": Bucket(1500, 300)},
    "states:StartExecution": {"large": Bucket(1300, 300), "other": Bucket(800, 150)},
}

#: SQS: a standard queue holds about this many in-flight (received, not deleted) messages;
#: past it ReceiveMessage answers OverLimit. Per queue, not per account: a bigger fleet splits
#: its jobs over several queues. (aws-facts.md, SQS.)
SQS_IN_FLIGHT_PER_QUEUE = 120_000


def region_class(region: str) -> RegionClass:
    """``large`` for the three regions with the bigger buckets, else ``other``."""
    return "large" if region in LARGE_REGIONS else "other"


def sustained_limit(api: str, region: RegionClass, headroom: float = HEADROOM) -> float:
    """Requests per second a fleet may send to ``api`` for as long as it likes: ``headroom``
    of the refill (the bucket only absorbs bursts)."""
    if not 0 < headroom <= 1:
        raise ValueError(f"headroom must be in (0, 1], got {headroom}")
    try:
        return STEP_FUNCTIONS[api][region].refill_per_s * headroom
    except KeyError:
        raise ValueError(f"no quota recorded for {api!r} in {region!r} regions") from None
