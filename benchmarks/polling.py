"""The polling pattern's state machine (``benchmarks/polling.asl.json``) and its interval.

The pattern: start the job with a plain task, then Wait → check status → Choice until done. Its
default interval is 30 s; a benchmark run scales it down by ``scale`` (Wait takes whole seconds,
so at least 1 s) and reports latency scaled back up to the default interval.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ASL_PATH = Path(__file__).with_name("polling.asl.json")
DEFAULT_INTERVAL_S = 30


@dataclass(frozen=True)
class PollingInterval:
    """The interval the pattern would use (``default_s``) and the one the run uses."""

    default_s: int = DEFAULT_INTERVAL_S
    scale: int = 30

    def __post_init__(self) -> None:
        if self.default_s < 1 or self.scale < 1:
            raise ValueError("the polling interval and its scale must each be at least 1")
        if self.default_s % self.scale:
            raise ValueError(
                f"scale {self.scale} must divide the interval {self.default_s} s "
                "(Wait takes whole seconds)"
            )

    @property
    def run_s(self) -> int:
        return self.default_s // self.scale


def render(work_queue_url: str, status_bucket: str) -> str:
    """The polling machine's definition for these resources."""
    definition = json.loads(ASL_PATH.read_text())
    task = definition["States"]["FanOut"]["ItemProcessor"]["States"]
    task["StartJob"]["Parameters"]["QueueUrl"] = work_queue_url
    task["CheckStatus"]["Parameters"]["Bucket"] = status_bucket
    return json.dumps(definition)
