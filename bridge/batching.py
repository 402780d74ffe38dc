"""SQS batch APIs take at most 10 entries: split work into such batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

SQS_MAX_BATCH = 10

T = TypeVar("T")


def in_batches(items: Sequence[T], size: int = SQS_MAX_BATCH) -> list[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    return [items[i : i + size] for i in range(0, len(items), size)]
