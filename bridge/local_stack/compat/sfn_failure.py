"""How a Step Functions patch fails a state or an execution the way moto's interpreter does."""

from __future__ import annotations

from typing import Any


def states_failure(
    env: Any, error_type: Any, event_type: Any, details_key: str, **details: Any
) -> Exception:
    """moto's ``FailureEventException`` for the ``States.*`` error ``error_type`` (a
    ``StatesErrorNameType``), recorded as ``event_type`` with ``details_key`` (for example
    ``taskFailedEventDetails``) holding the error's name and ``details``. Raised inside a state,
    it is caught by a Retry or Catch as moto's own failures are."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )

    return FailureEventException(
        FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=error_type),
            event_type=event_type,
            # EventDetails is a TypedDict: a plain dict at run time.
            event_details={details_key: {"error": error_type.to_name(), **details}},  # type: ignore[arg-type]
        )
    )
