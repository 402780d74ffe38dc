"""Which queues an operator command looks at, named the same way everywhere.

Each side of the bridge (``jobs``, ``results``) has a source queue, its dead-letter queue (the
redrive target, consumed by the dead-letter handler when handling is on) and, optionally, an
archive (where the handler copies each dead letter so it stays inspectable; itself the DLQ of
the DLQ, so ``StartMessageMoveTask`` accepts it as a source).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bridge.config import BridgeConfig
from bridge.dead_letter import queue_name

__all__ = [
    "SIDES",
    "InspectError",
    "QueueRef",
    "Side",
    "choose_sides",
    "queue_arn",
    "queue_attributes",
    "queue_name",
    "side_from_config",
    "visible_count",
]

SIDES = ("jobs", "results")
SideName = Literal["jobs", "results"]
Role = Literal["queue", "dlq", "archive"]


class InspectError(ValueError):
    """Bad operator input (unknown queue, unknown message id, nothing configured): the CLI
    prints the message as one line and exits 2."""


@dataclass(frozen=True)
class QueueRef:
    """One queue and what it is for."""

    side: SideName
    role: Role
    url: str

    @property
    def name(self) -> str:
        return queue_name(self.url)


@dataclass(frozen=True)
class Side:
    """The queues of one side; ``None`` where the configuration names no such queue."""

    name: SideName
    source_url: str | None
    dlq_url: str | None
    archive_url: str | None = None

    def dead_letter_queues(self) -> list[QueueRef]:
        """The DLQ, then the archive: where a dead letter of this side can be."""
        refs = [QueueRef(self.name, "dlq", self.dlq_url)] if self.dlq_url else []
        if self.archive_url:
            refs.append(QueueRef(self.name, "archive", self.archive_url))
        return refs

    def queues(self) -> list[QueueRef]:
        source = [QueueRef(self.name, "queue", self.source_url)] if self.source_url else []
        return source + self.dead_letter_queues()


def side_from_config(config: BridgeConfig, name: SideName) -> Side:
    # The archive fields are newer than some configurations: absent means "no archive".
    return Side(
        name=name,
        source_url=getattr(config, f"{name}_queue_url", None),
        dlq_url=getattr(config, f"{name}_dlq_url", None),
        archive_url=getattr(config, f"{name}_archive_url", None),
    )


def choose_sides(config: BridgeConfig, which: str) -> list[Side]:
    """``jobs``, ``results`` or ``all`` as sides with at least one dead-letter queue; anything
    else, or a choice with no dead-letter queue configured, is an :class:`InspectError`."""
    if which not in (*SIDES, "all"):
        raise InspectError(f"unknown queue {which!r}: choose jobs, results or all")
    names: list[SideName] = ["jobs", "results"] if which == "all" else [which]  # type: ignore[list-item]
    sides = [side_from_config(config, name) for name in names]
    usable = [side for side in sides if side.dead_letter_queues()]
    if not usable:
        wanted = " or ".join(f"{name}_dlq_url" for name in names)
        raise InspectError(
            f"no dead-letter queue configured for {which} ({wanted}); "
            f"configuration came from {config.source}"
        )
    return usable


def queue_attributes(sqs: Any, url: str, *names: str) -> dict[str, str]:
    attributes: dict[str, str] = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=list(names) or ["All"]
    ).get("Attributes", {})
    return attributes


def queue_arn(sqs: Any, url: str) -> str:
    return queue_attributes(sqs, url, "QueueArn")["QueueArn"]


def visible_count(sqs: Any, url: str) -> int:
    return int(
        queue_attributes(sqs, url, "ApproximateNumberOfMessages")["ApproximateNumberOfMessages"]
    )
