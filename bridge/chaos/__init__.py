"""``callback-bridge chaos``: a seeded fault campaign on the embedded stack (docs/reliability.md).

:mod:`~bridge.chaos.schedule` draws the plan, :mod:`~bridge.chaos.proxy` injects faults into AWS
calls, :mod:`~bridge.chaos.fuzz` makes poison, :mod:`~bridge.chaos.inject` sends copies and
poison, :mod:`~bridge.chaos.fleet` runs and kills consumers, :mod:`~bridge.chaos.campaign` plays
the schedule, :mod:`~bridge.chaos.reconcile` and :mod:`~bridge.chaos.checks` judge the run,
:mod:`~bridge.chaos.report` prints it.
"""
