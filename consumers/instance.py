"""Scale-in safety for a worker on EC2: protection while busy, termination and spot notices, and
the termination lifecycle action.

Small pieces the worker loop composes (each takes its AWS client, metadata source and clock):

* :class:`ScaleInProtection` keeps the instance protected from scale-in while it runs jobs, so
  the group shrinks by idle instances first. IAM: ``autoscaling:SetInstanceProtection``.
* :class:`InstanceWatcher` polls instance metadata (no IAM) and reports, once each, that the
  group is terminating the instance (``target-lifecycle-state`` ``Terminated``: a termination
  lifecycle hook now holds it) and a spot interruption notice with the seconds left.
* :class:`LifecycleAction` extends and ends that hold. IAM:
  ``autoscaling:RecordLifecycleActionHeartbeat``, ``autoscaling:CompleteLifecycleAction``.
* :func:`discover_group` finds the instance's group. IAM:
  ``autoscaling:DescribeAutoScalingInstances``.

The IAM actions can be scoped to the group's ARN (``autoScalingGroupName/<name>``) except
DescribeAutoScalingInstances, which takes ``*``. Nothing here raises on an AWS error: a failed call
is logged and the worker carries on (protection retries on a later update; a lifecycle action
left open ends by its heartbeat timeout with the hook's default result).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from consumers.imds import SPOT_WARNING_S, MetadataError, MetadataSource, seconds_until
from consumers.threads import CriticalThread, OnDeath

log = logging.getLogger(__name__)

#: AWS refuses SetInstanceProtection for these for good (instance terminating or not in the
#: group, group unknown): retrying cannot help.
PERMANENT_ERRORS = frozenset({"ValidationError"})


def _describe(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return str(error.get("Code", "")), str(error.get("Message", exc))
    return type(exc).__name__, str(exc)


def discover_group(autoscaling: Any, instance_id: str) -> str | None:
    """The Auto Scaling group ``instance_id`` belongs to; ``None`` if none (or the call failed,
    which is logged)."""
    try:
        found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])
    except Exception as exc:  # any failure is logged, never raised into the worker
        log.warning("DescribeAutoScalingInstances %s failed: %s: %s", instance_id, *_describe(exc))
        return None
    instances = found.get("AutoScalingInstances", [])
    return str(instances[0]["AutoScalingGroupName"]) if instances else None


class ScaleInProtection:
    """Protect the instance from scale-in while it has jobs; release it once idle for
    ``idle_debounce_s`` (so a gap between two jobs does not flap it).

    Call :meth:`update` whenever the number of running jobs changes and on every pass of the
    worker loop (the release happens on the first update after the debounce). The API is called
    only on a change; the first release after start also clears protection a previous worker on
    this instance may have left. After a failure the next attempt waits ``retry_after_s``; a
    ``ValidationError`` (instance terminating, not in the group) disables it for good, as does
    :meth:`disable`, which the worker calls once the instance is terminating."""

    def __init__(
        self,
        autoscaling: Any,
        group_name: str,
        instance_id: str,
        idle_debounce_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        retry_after_s: float = 10.0,
    ) -> None:
        self.autoscaling, self.group_name, self.instance_id = autoscaling, group_name, instance_id
        self.idle_debounce_s = idle_debounce_s
        self.clock = clock
        self.retry_after_s = retry_after_s
        #: What AWS was last told; ``None`` until the first successful call.
        self.protected: bool | None = None
        self.disabled = False
        self._idle_since: float | None = clock()
        self._next_attempt = 0.0
        self._lock = threading.Lock()

    def update(self, busy_jobs: int) -> bool | None:
        """Apply the protection ``busy_jobs`` calls for; returns the protection now in force."""
        with self._lock:
            now = self.clock()
            if busy_jobs > 0:
                self._idle_since, wanted = None, True
            else:
                if self._idle_since is None:
                    self._idle_since = now
                idle_long_enough = now - self._idle_since >= self.idle_debounce_s
                wanted = False if idle_long_enough else bool(self.protected)
                if not idle_long_enough and self.protected is None:
                    return None  # unknown and not yet due for release: leave it alone
            if self.disabled or wanted == self.protected or now < self._next_attempt:
                return self.protected
            self._set(wanted, now)
            return self.protected

    def disable(self) -> None:
        """Stop calling SetInstanceProtection (AWS refuses it once the instance terminates)."""
        with self._lock:
            self.disabled = True

    def _set(self, protected: bool, now: float) -> None:
        try:
            self.autoscaling.set_instance_protection(
                AutoScalingGroupName=self.group_name,
                InstanceIds=[self.instance_id],
                ProtectedFromScaleIn=protected,
            )
        except Exception as exc:  # any failure is logged, never raised into the worker
            code, message = _describe(exc)
            if code in PERMANENT_ERRORS:
                self.disabled = True
                log.warning("scale-in protection stopped for %s: %s", self.instance_id, message)
            else:
                self._next_attempt = now + self.retry_after_s
                log.warning(
                    "SetInstanceProtection(%s) for %s failed, retrying in %.0f s: %s: %s",
                    protected,
                    self.instance_id,
                    self.retry_after_s,
                    code,
                    message,
                )
            return
        self.protected = protected
        log.info(
            "%s %s from scale-in in %s",
            "protected" if protected else "released",
            self.instance_id,
            self.group_name,
        )


class InstanceWatcher:
    """A daemon thread polling ``metadata`` every ``poll_s`` seconds (AWS suggests 5 for spot
    notices). Calls ``on_termination()`` once when the target lifecycle state becomes
    ``Terminated``, and ``on_spot_interruption(seconds_left)`` once on a spot notice. Callbacks
    run on the watcher thread: keep them short (set an event, request a drain). Metadata errors
    are logged once per outage; callback exceptions are logged and do not stop the watcher."""

    def __init__(
        self,
        metadata: MetadataSource,
        on_termination: Callable[[], None] | None = None,
        on_spot_interruption: Callable[[float], None] | None = None,
        poll_s: float = 5.0,
        wall_clock: Callable[[], float] = time.time,
        on_death: OnDeath | None = None,
    ) -> None:
        """``on_death``: told if the watcher thread dies (:mod:`consumers.threads`)."""
        self.metadata = metadata
        self.on_termination = on_termination
        self.on_spot_interruption = on_spot_interruption
        self.poll_s = poll_s
        self.wall_clock = wall_clock
        self.terminating = False
        self.spot_seconds_left: float | None = None
        self._failing = False
        self._stop = threading.Event()
        self._thread = CriticalThread("instance-watcher", self._run, on_death)

    def start(self) -> InstanceWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def poll(self) -> None:
        """One look at the metadata (the thread calls this; tests may too)."""
        try:
            state = None if self.terminating else self.metadata.target_lifecycle_state()
            spot = None if self.spot_seconds_left is not None else self.metadata.spot_action()
        except MetadataError as exc:
            if not self._failing:
                log.warning("instance metadata unavailable, will keep trying: %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("instance metadata answers again")
            self._failing = False
        if state == "Terminated":
            self.terminating = True
            log.info("the Auto Scaling group is terminating this instance")
            self._call(self.on_termination)
        if spot is not None:
            left = self._spot_seconds_left(spot)
            self.spot_seconds_left = left
            log.warning("spot interruption (%s) in %.0f s", spot.get("action"), left)
            if self.on_spot_interruption is not None:
                self._call(lambda: self.on_spot_interruption(left))  # type: ignore[misc]

    def _spot_seconds_left(self, spot: dict[str, Any]) -> float:
        if spot.get("time") is None:
            log.warning(
                "unreadable spot interruption notice %r: assuming the usual %.0f s",
                spot.get("unreadable"),
                SPOT_WARNING_S,
            )
            return SPOT_WARNING_S
        return max(0.0, seconds_until(str(spot["time"]), self.wall_clock()))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            if self.terminating and self.spot_seconds_left is not None:
                return  # both reported: nothing left to watch for
            self._stop.wait(self.poll_s)

    @staticmethod
    def _call(callback: Callable[[], None] | None) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:
            log.exception("instance watcher callback failed")


class LifecycleAction:
    """The termination lifecycle action holding this instance, identified (no token needed) by
    group, hook and instance id. :meth:`heartbeat` extends it by the hook's HeartbeatTimeout;
    :meth:`complete` lets termination proceed. :meth:`start_heartbeats` heartbeats on a thread
    until :meth:`complete` (or :meth:`stop_heartbeats`)."""

    def __init__(
        self,
        autoscaling: Any,
        group_name: str,
        hook_name: str,
        instance_id: str,
        on_death: OnDeath | None = None,
    ) -> None:
        """``on_death``: told if the heartbeat thread dies (:mod:`consumers.threads`)."""
        self.autoscaling = autoscaling
        self._on_death = on_death
        self.group_name, self.hook_name, self.instance_id = group_name, hook_name, instance_id
        self.completed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def _identity(self) -> dict[str, str]:
        return {
            "AutoScalingGroupName": self.group_name,
            "LifecycleHookName": self.hook_name,
            "InstanceId": self.instance_id,
        }

    def heartbeat(self) -> bool:
        """RecordLifecycleActionHeartbeat; False (logged) if AWS refused it."""
        if self.completed:
            return False
        try:
            self.autoscaling.record_lifecycle_action_heartbeat(**self._identity)
        except Exception as exc:  # any failure is logged, never raised into the worker
            log.warning(
                "lifecycle heartbeat for %s failed: %s: %s", self.instance_id, *_describe(exc)
            )
            return False
        log.debug("lifecycle heartbeat for %s (%s)", self.instance_id, self.hook_name)
        return True

    def complete(self, result: str = "CONTINUE") -> bool:
        """CompleteLifecycleAction with ``result``; once only. False (logged) if refused."""
        self.stop_heartbeats()
        if self.completed:
            return True
        try:
            self.autoscaling.complete_lifecycle_action(
                **self._identity, LifecycleActionResult=result
            )
        except Exception as exc:  # any failure is logged, never raised into the worker
            log.warning(
                "CompleteLifecycleAction %s for %s failed: %s: %s",
                result,
                self.instance_id,
                *_describe(exc),
            )
            return False
        self.completed = True
        log.info(
            "lifecycle action %s completed for %s: %s", self.hook_name, self.instance_id, result
        )
        return True

    def start_heartbeats(self, every_s: float) -> LifecycleAction:
        """Heartbeat now and then every ``every_s`` seconds (keep it well below the hook's
        HeartbeatTimeout) until :meth:`complete` or :meth:`stop_heartbeats`."""
        if self._thread is None:
            self._thread = CriticalThread(
                "lifecycle-heartbeat", self._beat, self._on_death, args=(every_s,)
            )
            self._thread.start()
        return self

    def stop_heartbeats(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _beat(self, every_s: float) -> None:
        while not self._stop.is_set():
            self.heartbeat()
            self._stop.wait(every_s)
