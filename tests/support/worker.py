"""The worker loop in a thread of the test process (functional tier)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bridge.timing import TimingModel
from consumers.worker import Worker, WorkerSettings


def settings(stack: dict[str, str], **overrides: Any) -> WorkerSettings:
    """Worker settings for the queues of ``stack`` (no long polls, two slots), with
    ``overrides``; timing fields (``TimingModel``'s) go to the timing model."""
    values: dict[str, Any] = {
        "jobs_queue_url": stack["jobs_queue_url"],
        "results_queue_url": stack["results_queue_url"],
        "jobs_dlq_url": stack["jobs_dlq_url"],
        "wait_seconds": 0,
        "concurrency": 2,
        # Deletes wait a fraction of a second, not DELETE_WINDOW_S: tests of other behaviours
        # look for the jobs queue to empty; the tests of the delete window set their own.
        "delete_window_s": 0.2,
    }
    timing = {k: overrides.pop(k) for k in list(overrides) if k in TimingModel.__dataclass_fields__}
    values["timing"] = TimingModel(visibility_timeout_s=30, task_timeout_s=None).with_values(
        **timing
    )
    values.update(overrides)
    return WorkerSettings(**values)


@contextmanager
def running(worker: Worker) -> Iterator[threading.Thread]:
    """Run ``worker`` in a thread; stop it (and check it stopped) on exit."""
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        worker.request_stop()
        thread.join(timeout=20)
        assert not thread.is_alive(), "worker did not stop"
