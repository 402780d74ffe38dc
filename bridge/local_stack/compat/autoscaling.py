"""EC2 Auto Scaling: termination lifecycle hooks that hold an instance, the two calls that end or
extend the hold, and SetInstanceProtection's validation.

AWS behaviour, from the Amazon EC2 Auto Scaling user guide ("Amazon EC2 Auto Scaling lifecycle
hooks", "Complete a lifecycle action", "Use instance scale-in protection") and the API reference
(``API_CompleteLifecycleAction``, ``API_RecordLifecycleActionHeartbeat``,
``API_SetInstanceProtection``, ``API_TerminateInstanceInAutoScalingGroup``):

* With an ``autoscaling:EC2_INSTANCE_TERMINATING`` hook, an instance the group terminates (scale-in
  or TerminateInstanceInAutoScalingGroup) goes to ``Terminating:Wait`` and stays there until the
  lifecycle action is completed or its heartbeat timeout passes; then the hook's
  ``DefaultResult`` applies. For a termination hook CONTINUE and ABANDON both terminate it.
* RecordLifecycleActionHeartbeat "extends the timeout by the length of time defined using the
  PutLifecycleHook API call"; the wait never outlasts the global timeout, "48 hours or 100 times
  the heartbeat timeout, whichever is smaller".
* CompleteLifecycleAction / RecordLifecycleActionHeartbeat identify the action by group, hook and
  either the instance id or the lifecycle action token; "LifecycleActionResult: CONTINUE |
  ABANDON". Without an active action AWS answers ``ValidationError`` "No active Lifecycle Action
  found with instance ID i-..." (or "... with token ..."), the message recorded in many public
  issue threads (e.g. convox/rack#2432).
* Scale-in skips instances protected from scale-in. SetInstanceProtection takes at most 50
  instance ids; an instance outside the group is ``ValidationError`` "The instance i-... is not
  part of Auto Scaling group g." and one that is terminating is "The instance i-... is not in
  InService or EnteringStandby or Standby." (messages from guardian/riff-raff#510 and
  hashicorp/terraform-provider-aws#35071).

moto 5.2.5 terminates at once whatever the hooks, has neither lifecycle call (its server answers
500 "not implemented"), and sets protection on any instance of any state without checks (an
unknown group is a 500). Timers for waiting instances are daemon threads, cancelled when the patch
is reverted.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

TERMINATING_HOOK = "autoscaling:EC2_INSTANCE_TERMINATING"
WAIT = "Terminating:Wait"
GLOBAL_TIMEOUT_CAP_S = 48 * 3600
PROTECTION_BATCH = 50  # SetInstanceProtection: "Array Members: Maximum number of 50 items"
PROTECTABLE = ("InService", "EnteringStandby", "Standby")
RESULTS = ("CONTINUE", "ABANDON")
_ACTIONS = "_compat_lifecycle_actions"  # on an AutoScalingBackend: its active actions

_lock = threading.RLock()
_timed: set[PendingAction] = set()


def _validation(message: str) -> Exception:
    from moto.autoscaling.exceptions import ValidationError

    return ValidationError(message)


def _actions(backend: Any) -> list[PendingAction]:
    return backend.__dict__.setdefault(_ACTIONS, [])  # type: ignore[no-any-return]


def _termination_hooks(backend: Any, group_name: str) -> list[Any]:
    return [
        hook
        for hook in backend.lifecycle_hooks.values()
        if hook.auto_scaling_group_name == group_name
        and hook.lifecycle_transition == TERMINATING_HOOK
    ]


@dataclass(eq=False)
class PendingAction:
    """One termination lifecycle action: an instance held in Terminating:Wait by one hook."""

    backend: Any
    group_name: str
    hook_name: str
    instance_id: str
    heartbeat_timeout_s: float
    default_result: str
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)
    timer: threading.Timer | None = None

    @property
    def global_deadline(self) -> float:
        return self.started + min(100 * self.heartbeat_timeout_s, GLOBAL_TIMEOUT_CAP_S)

    def arm(self) -> None:
        """(Re)start the heartbeat timeout, never past the global timeout."""
        self.disarm()
        now = time.monotonic()
        delay = max(0.0, min(now + self.heartbeat_timeout_s, self.global_deadline) - now)
        self.timer = threading.Timer(delay, self.expire)
        self.timer.daemon = True
        self.timer.name = f"lifecycle-action-{self.instance_id}"
        _timed.add(self)
        self.timer.start()

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        _timed.discard(self)

    def expire(self) -> None:
        """The timeout passed: the hook's default result applies (AWS terminates either way)."""
        with _lock:
            if self in _actions(self.backend):
                _finish(self)


def _begin(backend: Any, group: Any, state: Any) -> bool:
    """Hold ``state``'s instance in Terminating:Wait, one action per termination hook."""
    hooks = _termination_hooks(backend, group.name)
    if not hooks:
        return False
    with _lock:
        state.lifecycle_state = WAIT
        for hook in hooks:
            action = PendingAction(
                backend,
                group.name,
                hook.name,
                state.instance.id,
                float(hook.heartbeat_timeout),
                hook.default_result,
            )
            _actions(backend).append(action)
            action.arm()
    return True


def _finish(action: PendingAction) -> None:
    """End ``action``; once no hook holds the instance any more, terminate it."""
    with _lock:
        action.disarm()
        actions = _actions(action.backend)
        if action in actions:
            actions.remove(action)
        if any(a.instance_id == action.instance_id for a in actions):
            return
        group = action.backend.autoscaling_groups.get(action.group_name)
        if group is not None:
            group.instance_states = [
                s for s in group.instance_states if s.instance.id != action.instance_id
            ]
        action.backend.ec2_backend.terminate_instances([action.instance_id])


def _stop_timers() -> None:
    with _lock:
        for action in list(_timed):
            action.disarm()


# --- autoscaling-termination-hooks -----------------------------------------------------------


def termination_hooks() -> list[Replacement]:
    """Scale-in and TerminateInstanceInAutoScalingGroup put an instance of a group with an
    ``EC2_INSTANCE_TERMINATING`` hook in ``Terminating:Wait`` instead of terminating it (user
    guide, "Amazon EC2 Auto Scaling lifecycle hooks"); the instance terminates when the action
    completes or times out. Waiting instances do not count towards the group's capacity.
    moto 5.2.5 terminates at once."""
    from moto.autoscaling.models import (
        AutoScalingBackend,
        FakeAutoScalingGroup,
        TerminateInstanceActivity,
    )

    set_capacity = expect(FakeAutoScalingGroup, "set_desired_capacity")
    terminate = expect(AutoScalingBackend, "terminate_instance")
    expect(FakeAutoScalingGroup, "active_instances")
    expect(AutoScalingBackend, "create_lifecycle_hook")

    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        target = (self.min_size if new_capacity is None else new_capacity) or 0
        active = self.active_instances()
        if len(active) > target and not self.mixed_instances_policy:
            unprotected = [s for s in active if not s.protected_from_scale_in]
            for state in unprotected[: len(active) - target]:
                if not _begin(self.autoscaling_backend, self, state):
                    break  # no termination hook: moto's own scale-in below
        # moto's scale-in picks among all unprotected states: keep waiting ones out of it.
        waiting = [s for s in self.instance_states if s.lifecycle_state == WAIT]
        self.instance_states = [s for s in self.instance_states if s.lifecycle_state != WAIT]
        try:
            set_capacity(self, new_capacity)
        finally:
            self.instance_states = [*self.instance_states, *waiting]

    def terminate_instance(self: Any, instance_id: str, should_decrement: bool) -> Any:
        state = next(
            (
                s
                for group in self.autoscaling_groups.values()
                for s in group.instance_states
                if s.instance.id == instance_id
            ),
            None,
        )
        if state is None or not _termination_hooks(self, state.auto_scaling_group.name):
            return terminate(self, instance_id, should_decrement)
        group = state.auto_scaling_group
        original_size = group.desired_capacity
        if state.lifecycle_state != WAIT:
            _begin(self, group, state)
            if should_decrement:
                group.desired_capacity = original_size - 1
            else:
                group.set_desired_capacity(group.desired_capacity)  # launches a replacement
        return TerminateInstanceActivity(state.instance, original_size)

    return [
        Replacement(FakeAutoScalingGroup, "set_desired_capacity", set_desired_capacity),
        Replacement(AutoScalingBackend, "terminate_instance", terminate_instance),
    ]


# --- autoscaling-lifecycle-actions -----------------------------------------------------------


def _active(
    backend: Any, group_name: str, hook_name: str, instance_id: str | None, token: str | None
) -> PendingAction:
    """The action AWS would find for these parameters, or its ValidationError."""
    if group_name not in backend.autoscaling_groups:
        raise _validation(
            f"AutoScalingGroup name not found - AutoScalingGroup '{group_name}' not found"
        )
    if not instance_id and not token:
        raise _validation("Either LifecycleActionToken or InstanceId must be specified")
    for action in _actions(backend):
        if (
            action.group_name == group_name
            and action.hook_name == hook_name
            and (not instance_id or action.instance_id == instance_id)
            and (not token or action.token == token)
        ):
            return action
    if token:
        raise _validation(f"No active Lifecycle Action found with token {token}")
    raise _validation(f"No active Lifecycle Action found with instance ID {instance_id}")


def complete_lifecycle_action(
    self: Any,
    group_name: str,
    hook_name: str,
    instance_id: str | None,
    token: str | None,
    result: str,
) -> None:
    if result not in RESULTS:
        raise _validation(
            f"1 validation error detected: Value '{result}' at 'lifecycleActionResult' failed "
            "to satisfy constraint: Member must satisfy enum value set: [CONTINUE, ABANDON]"
        )
    with _lock:
        _finish(_active(self, group_name, hook_name, instance_id, token))


def record_lifecycle_action_heartbeat(
    self: Any, group_name: str, hook_name: str, instance_id: str | None, token: str | None
) -> None:
    with _lock:
        _active(self, group_name, hook_name, instance_id, token).arm()


def _parameters(response: Any) -> list[Any]:
    names = "AutoScalingGroupName LifecycleHookName InstanceId LifecycleActionToken"
    return [response._get_param(name) for name in names.split()]


def complete_response(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    result = self._get_param("LifecycleActionResult")
    self.autoscaling_backend.complete_lifecycle_action(*_parameters(self), result)
    return EmptyResult()


def heartbeat_response(self: Any) -> Any:
    from moto.core.responses import EmptyResult

    self.autoscaling_backend.record_lifecycle_action_heartbeat(*_parameters(self))
    return EmptyResult()


def lifecycle_actions() -> list[Replacement]:
    """CompleteLifecycleAction and RecordLifecycleActionHeartbeat as the API reference describes
    them (quoted in this module's docstring), for instances the termination-hooks patch holds.
    moto 5.2.5 has neither: its server answers 500 "The complete_lifecycle_action action has not
    been implemented". This adds both and refuses to apply once moto defines either."""
    from moto.autoscaling.models import AutoScalingBackend
    from moto.autoscaling.responses import AutoScalingResponse

    expect(AutoScalingResponse, "autoscaling_backend")
    return [
        Replacement(
            AutoScalingBackend, "complete_lifecycle_action", complete_lifecycle_action, adds=True
        ),
        Replacement(
            AutoScalingBackend,
            "record_lifecycle_action_heartbeat",
            record_lifecycle_action_heartbeat,
            adds=True,
        ),
        Replacement(AutoScalingResponse, "complete_lifecycle_action", complete_response, adds=True),
        Replacement(
            AutoScalingResponse, "record_lifecycle_action_heartbeat", heartbeat_response, adds=True
        ),
    ]


# --- autoscaling-instance-protection ---------------------------------------------------------


def instance_protection() -> list[Replacement]:
    """SetInstanceProtection checks what AWS checks (SetInstanceProtection API reference; user
    guide, "Use instance scale-in protection"): the group exists, at most 50 instance ids, each in
    the group and InService, EnteringStandby or Standby (a terminating instance cannot be
    protected any more). moto 5.2.5 answers 500 for an unknown group and silently accepts the
    rest, so a worker that keeps protecting itself while it drains would not see AWS's error."""
    from moto.autoscaling.models import AutoScalingBackend

    original = expect(AutoScalingBackend, "set_instance_protection")

    def set_instance_protection(
        self: Any, group_name: str, instance_ids: list[str], protected: bool | None
    ) -> None:
        group = self.autoscaling_groups.get(group_name)
        if group is None:
            raise _validation(
                f"AutoScalingGroup name not found - AutoScalingGroup '{group_name}' not found"
            )
        if len(instance_ids) > PROTECTION_BATCH:
            raise _validation(
                "1 validation error detected: Value at 'instanceIds' failed to satisfy "
                f"constraint: Member must have length less than or equal to {PROTECTION_BATCH}"
            )
        states = {s.instance.id: s for s in group.instance_states}
        for instance_id in instance_ids:  # all checked before any is changed
            if instance_id not in states:
                raise _validation(
                    f"The instance {instance_id} is not part of Auto Scaling group {group_name}."
                )
            if states[instance_id].lifecycle_state not in PROTECTABLE:
                raise _validation(
                    f"The instance {instance_id} is not in InService or EnteringStandby or Standby."
                )
        original(self, group_name, instance_ids, protected)

    return [Replacement(AutoScalingBackend, "set_instance_protection", set_instance_protection)]


PATCHES: list[Patch] = [
    Patch(
        "autoscaling-termination-hooks",
        "a termination lifecycle hook holds a terminating instance in Terminating:Wait",
        termination_hooks,
        cleanup=_stop_timers,  # no heartbeat-timeout timer outlives the patch
    ),
    Patch(
        "autoscaling-lifecycle-actions",
        "CompleteLifecycleAction / RecordLifecycleActionHeartbeat end or extend that wait",
        lifecycle_actions,
    ),
    Patch(
        "autoscaling-instance-protection",
        "SetInstanceProtection validates the group, the batch size and each instance's state",
        instance_protection,
    ),
]
