"""The embedded stack (moto server on 127.0.0.1) with real worker processes (e2e tier)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

from bridge.local_stack import LocalStack, StackSettings
from tests.support.aws import depth
from tests.support.polling import eventually

#: What the e2e ``workers`` fixture yields: start one ``callback-bridge worker`` with args.
WorkerFactory = Callable[..., subprocess.Popen[bytes]]


def e2e_settings(**overrides: Any) -> StackSettings:
    """Short timeouts for tests (valid under bridge.timing), with ``overrides``."""
    return StackSettings(
        **{
            "jobs_visibility_timeout_s": 30,
            "results_visibility_timeout_s": 2,
            "jobs_max_receive_count": 2,
            "results_max_receive_count": 2,
            "timeout_seconds": 120,
            "max_queue_wait_s": 20,
            "job_timeout_s": 30,
            **overrides,
        }
    )


def assert_queues_empty(stack: LocalStack, timeout_s: float = 10) -> None:
    """Eventually: a worker deletes its job after sending the result (within its
    ``--delete-window``), so the execution can finish before the jobs queue is empty."""
    assert stack.clients and stack.config
    config, sqs = stack.config, stack.clients.sqs
    urls = (
        config.jobs_queue_url,
        config.results_queue_url,
        config.jobs_dlq_url,
        config.results_dlq_url,
        config.jobs_archive_url,
        config.results_archive_url,
    )
    depths: list[int] = []

    def empty() -> bool:
        depths[:] = [depth(sqs, url) for url in urls if url]
        return depths == [0] * 6

    assert eventually(empty, timeout_s), (
        f"left in jobs/results/jobs-dlq/results-dlq/jobs-archive/results-archive: {depths}"
    )
