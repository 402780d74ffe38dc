"""The worker on EC2: scale-in protection while busy, and a clean exit when the instance goes.

:class:`InstanceHandling` composes the pieces of :mod:`consumers.instance` with a worker:

* **scale-in protection** (``--scale-in-protection``): protected while any job holds a slot,
  released after 30 s idle, so target tracking removes idle instances, never busy ones;
* **termination** (``autoscaling/target-lifecycle-state`` = ``Terminated``: the group's
  termination lifecycle hook holds the instance): protection is dropped, the worker drains, the
  lifecycle action is heartbeated every third of the hook's timeout while jobs finish, and
  ``CompleteLifecycleAction`` lets the termination proceed once the worker has stopped;
* **spot interruption** (``spot/instance-action``): the worker drains with what the two-minute
  notice leaves, minus a margin to hand unfinished jobs back to the queue.

Its threads (the metadata watcher, the lifecycle heartbeats) report their death to the worker
like its own (:mod:`consumers.threads`): a worker that can no longer see a termination coming
must not go on looking healthy.

Whether it runs: ``--instance-handling on``, ``off``, or ``auto`` (the default: on when a
metadata endpoint is configured (``AWS_EC2_METADATA_SERVICE_ENDPOINT``, as botocore reads it,
or the embedded stack's state file) or the machine says it is an EC2 instance).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consumers.imds import InstanceMetadata
from consumers.instance import InstanceWatcher, LifecycleAction, ScaleInProtection, discover_group
from consumers.worker import Worker

log = logging.getLogger(__name__)

#: Of a spot notice, this much is kept to release unfinished jobs and exit.
SPOT_RELEASE_MARGIN_S = 30.0
DMI_VENDOR = Path("/sys/devices/virtual/dmi/id/sys_vendor")


def on_ec2(endpoint: str | None) -> bool:
    """Whether instance handling should run by default: without a network call, so a laptop
    does not wait for 169.254.169.254 to time out."""
    if endpoint or os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"):
        return True
    try:
        return "amazon" in DMI_VENDOR.read_text().lower()
    except OSError:
        return False


@dataclass
class InstanceSettings:
    mode: str = "auto"  # on | off | auto
    scale_in_protection: bool = False
    metadata_endpoint: str | None = None
    instance_id: str | None = None
    group_name: str | None = None
    hook_name: str | None = None
    hook_timeout_s: float = 600.0
    #: Idle seconds before protection is released (a quick next job keeps it).
    protection_idle_s: float = 30.0

    def __post_init__(self) -> None:
        if self.mode not in ("on", "off", "auto"):
            raise ValueError(f"--instance-handling must be on, off or auto, not {self.mode!r}")
        if self.hook_timeout_s <= 0:
            raise ValueError("--lifecycle-hook-timeout must be positive")

    @property
    def enabled(self) -> bool:
        return self.mode == "on" or (self.mode == "auto" and on_ec2(self.metadata_endpoint))


class InstanceHandling:
    """A companion of :class:`consumers.service.Service`: ``start``, ``stop``, ``finish``."""

    def __init__(self, worker: Worker, autoscaling: Any, settings: InstanceSettings) -> None:
        self.worker, self.autoscaling, self.settings = worker, autoscaling, settings
        self.metadata = InstanceMetadata(settings.metadata_endpoint)
        self.protection: ScaleInProtection | None = None
        self.action: LifecycleAction | None = None
        self.watcher = InstanceWatcher(
            self.metadata,
            on_termination=self._terminating,
            on_spot_interruption=self._spot,
            on_death=worker.thread_died,
        )

    def start(self) -> None:
        if not self.metadata.available():
            if self.settings.mode == "on":
                raise RuntimeError(f"instance metadata does not answer at {self.metadata.endpoint}")
            log.info("no instance metadata: termination and spot handling off")
            return
        instance_id = self.settings.instance_id or self.metadata.instance_id()
        group = self.settings.group_name or discover_group(self.autoscaling, instance_id)
        if group is None:
            log.info("instance %s is in no Auto Scaling group", instance_id)
        elif self.settings.scale_in_protection:
            self.protection = ScaleInProtection(
                self.autoscaling,
                group,
                instance_id,
                idle_debounce_s=self.settings.protection_idle_s,
            )
            self.worker.supervisor.on_tick.append(lambda: self._protect())
        if group and self.settings.hook_name:
            self.action = LifecycleAction(
                self.autoscaling,
                group,
                self.settings.hook_name,
                instance_id,
                on_death=self.worker.thread_died,
            )
        self.watcher.start()
        log.info(
            "watching instance %s (group %s, hook %s, scale-in protection %s)",
            instance_id,
            group,
            self.settings.hook_name,
            "on" if self.protection else "off",
        )

    def _protect(self) -> None:
        if self.protection is not None and not self.worker.stopping:
            self.protection.update(self.worker.table.busy)

    def _terminating(self) -> None:
        if self.protection is not None:
            self.protection.disable()
        if self.action is not None:
            # Every third of the hook's timeout: the timing model's rule (bridge.timing).
            every_s = self.worker.settings.timing.lifecycle_heartbeat_every_s
            self.action.start_heartbeats(every_s=every_s)
        self.worker.supervisor.request(reason="instance terminating")

    def _spot(self, seconds_left: float) -> None:
        self.worker.supervisor.request(
            within_s=max(0.0, seconds_left - SPOT_RELEASE_MARGIN_S),
            reason=f"spot interruption in {seconds_left:.0f} s",
        )

    def stop(self) -> None:
        """After the worker stopped: let the termination proceed if it was waiting for us."""
        self.watcher.stop()
        if self.action is not None and self.watcher.terminating:
            self.action.stop_heartbeats()
            self.action.complete("CONTINUE")
