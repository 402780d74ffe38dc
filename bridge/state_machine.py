"""Render the one state machine template (``infra/statemachine/bridge.asl.json``).

Terraform renders the same file with ``templatefile``; this renderer implements the subset the
template uses (``${name}`` placeholders) and refuses unknown or missing names, so the two
renderings cannot silently diverge.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

TEMPLATE_NAME = "bridge.asl.json"
_PLACEHOLDER = re.compile(r"(?<!\$)\$\{(\w+)\}")

MapMode = Literal["INLINE", "DISTRIBUTED"]


@dataclass(frozen=True)
class StateMachineParams:
    """The template's parameters; Terraform's ``state_machine`` module exposes the same set."""

    jobs_queue_url: str
    heartbeat_seconds: int = 300
    timeout_seconds: int = 86_400
    retry_interval_seconds: int = 5
    retry_max_attempts: int = 2
    max_concurrency: int = 0
    default_job_type: str = "default"
    map_mode: MapMode = "INLINE"

    def __post_init__(self) -> None:
        if self.map_mode not in ("INLINE", "DISTRIBUTED"):
            raise ValueError(f"map_mode must be INLINE or DISTRIBUTED, not {self.map_mode!r}")
        if not 0 < self.heartbeat_seconds < self.timeout_seconds:
            raise ValueError("heartbeat_seconds must be positive and below timeout_seconds")

    def template_values(self) -> dict[str, str]:
        values = {k: str(v) for k, v in asdict(self).items() if k != "map_mode"}
        processor: dict[str, str] = {"Mode": self.map_mode}
        if self.map_mode == "DISTRIBUTED":
            processor["ExecutionType"] = "STANDARD"
        values["processor_config"] = json.dumps(processor)
        return values


def template_text() -> str:
    """The template from the installed wheel, or from the source tree when run from a checkout."""
    packaged = resources.files("bridge") / "statemachine" / TEMPLATE_NAME
    if packaged.is_file():
        return packaged.read_text()
    source = Path(__file__).resolve().parents[1] / "infra" / "statemachine" / TEMPLATE_NAME
    return source.read_text()


def render(text: str, values: dict[str, str]) -> str:
    """Substitute ``${name}`` placeholders; unknown or unused names are errors."""
    used = set(_PLACEHOLDER.findall(text))
    missing, unused = used - values.keys(), values.keys() - used
    if missing or unused:
        raise ValueError(f"template placeholders missing={sorted(missing)} unused={sorted(unused)}")
    rendered = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text).replace("$${", "${")
    json.loads(rendered)  # a rendering that is not JSON is a bug in the template
    return rendered


def render_definition(params: StateMachineParams) -> str:
    """The Amazon States Language definition for ``params``."""
    return render(template_text(), params.template_values())
