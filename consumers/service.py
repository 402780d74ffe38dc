"""The worker as a long-running service: the loop plus what runs beside it on a host.

:class:`Service` composes a :class:`~consumers.worker.Worker` with its metrics (EMF lines),
its loopback health endpoint, the token-redacting log setup's registry, signal handling and,
on EC2, the instance's scale-in protection and termination / spot handling
(:mod:`consumers.instance`). :func:`consumers.compose.build_service` builds one; the CLI
calls :meth:`Service.run` and exits with what it returns:

* **0**: stopped after a drain (one SIGTERM or Ctrl-C, a termination, a spot notice);
* **130**: stopped at once by a second signal, its jobs released to the queue;
* **70** (:data:`~consumers.threads.EXIT_THREAD_DIED`): an internal thread died (receiver,
  keep-alive, result sender, supervisor, health server, instance watcher, lifecycle heartbeats):
  the worker answered 503 ``unhealthy`` at once, released its jobs as a second signal does, and
  exits so that systemd (``Restart=on-failure``) or the Auto Scaling health check replaces it.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from consumers.health import HealthServer
from consumers.metrics import COUNTERS, DURATION, WorkerMetrics
from consumers.process import kill_all_groups
from consumers.threads import EXIT_THREAD_DIED, guarded
from consumers.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class Service:
    worker: Worker
    metrics: WorkerMetrics
    health_port: int | None = None
    metrics_interval_s: float = 60.0
    #: Started before the loop, stopped after it (instance watchers, ...).
    companions: list[Any] = field(default_factory=list)
    #: Called once the loop has returned (e.g. complete the lifecycle action).
    on_stopped: list[Callable[[], None]] = field(default_factory=list)
    health: HealthServer | None = None

    def count(self, name: str, value: float) -> None:
        """The worker's metrics hook, mapped onto :class:`WorkerMetrics`."""
        if name == DURATION:
            self.metrics.observe_duration(value)
        elif name in COUNTERS:
            self.metrics.increment(name, int(value))

    def gauges(self) -> None:
        self.metrics.set_gauge("busy_slots", self.worker.table.busy)
        self.metrics.set_gauge("in_flight", self.worker.table.running)
        self.metrics.set_gauge("spooled_results", self.worker.sender.spooled)

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT: first drains, second stops now. The handler only bumps a
        counter (see :mod:`consumers.supervisor`). Job commands run in their own sessions, so a
        terminal's Ctrl-C reaches the worker only, never the jobs."""

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            self.worker.request_stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def run(self) -> int:
        """Run until stopped; the process exit code (0 drained, 130 stopped at once, 70 an
        internal thread died)."""
        self.worker.count = self.count
        self.worker.supervisor.on_tick.append(self.gauges)
        if self.health_port is not None:
            self.health = HealthServer(
                self.health_port, self.worker.status, on_death=self.worker.thread_died
            ).start()
            log.info("health on http://127.0.0.1:%d/health", self.health.port)
        self.metrics.start(self.metrics_interval_s)
        for companion in self.companions:
            companion.start()
        try:
            # Worker.run guards its own loop; this catches a failure around it (start, stop).
            guarded("worker", self.worker.run, self.worker.thread_died)()
        finally:
            for companion in self.companions:
                companion.stop()
            for hook in self.on_stopped:
                try:
                    hook()
                except Exception:
                    log.exception("shutdown hook failed")
            self.metrics.stop()
            if self.health:
                self.health.stop()
            # Whatever job processes are still alive (a second stop does not wait for the
            # grace period) must not outlive the worker: they run in their own sessions.
            killed = kill_all_groups()
            if killed:
                log.warning("killed %d job process groups still running at exit", killed)
        if self.worker.failure:
            log.critical("exiting with %d: %s", EXIT_THREAD_DIED, self.worker.failure)
            return EXIT_THREAD_DIED
        return 130 if self.worker.abandoned else 0
