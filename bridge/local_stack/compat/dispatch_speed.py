"""moto's request dispatch: speed, not behaviour.

**AWS.** What a call costs does not depend on how the service is implemented: the bridge's
SendMessage, ReceiveMessage and SendTaskSuccess are each "a nearly unlimited number of API calls
per second" (SQS developer guide, "Amazon SQS standard queues") or a fixed quota (Step Functions
developer guide, "Step Functions service quotas").

**moto 5.2.5.** Every request, whatever its service, lists the response class's methods with
``inspect.getmembers`` (hundreds of attributes, each tested with ``isfunction``) to find out
whether the action is one it implements: about 2 % of the embedded stack's CPU in a 1,000-job
fan-out, for an answer that never changes while the class does not. And every SendMessage reads
a queue's attributes, converting each of their 14 names from CamelCase with a character-by-
character loop: about 1 ms of CPU per job, for the same 14 answers every time.

**The patches** remember the list per class, filled on a class's first request (by then
``compat.apply`` has put every other patch's methods in place), and memoise the name
conversion where those two calls make it; both are forgotten on revert.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from bridge.local_stack.compat import Patch, Replacement, expect


def method_names_cache() -> list[Replacement]:
    """Speed, not behaviour: moto 5.2.5 lists a response class's methods on every request to
    check the action exists (see the module docstring; AWS's cost per call is fixed, SQS
    developer guide, "Amazon SQS standard queues"). The patch memoises the list per class."""
    from moto.core import responses

    original = expect(responses, "method_names_from_class")
    names: dict[Any, list[str]] = {}
    lock = threading.Lock()

    def method_names_from_class(clazz: Any) -> list[str]:
        try:
            return names[clazz]
        except KeyError:
            listed = original(clazz)
            with lock:
                names[clazz] = listed
            return listed

    return [Replacement(responses, "method_names_from_class", method_names_from_class)]


def camelcase_cache() -> list[Replacement]:
    """Speed, not behaviour: moto 5.2.5 converts the same attribute and action names from
    CamelCase on every request (a SendMessage reads 14 queue attributes; see the module
    docstring; AWS's cost per call is fixed, SQS developer guide, "Amazon SQS standard
    queues"). The conversion is a pure function of its string: memoised where the request path
    calls it, in moto's base response and its SQS models."""
    from moto.core import responses
    from moto.sqs import models

    return [
        Replacement(
            owner,
            "camelcase_to_underscores",
            functools.lru_cache(maxsize=1024)(expect(owner, "camelcase_to_underscores")),
        )
        for owner in (responses, models)
    ]


PATCHES: list[Patch] = [
    Patch(
        "moto-method-names-cache",
        "a response class's methods are listed once, not per request",
        method_names_cache,
    ),
    Patch(
        "moto-camelcase-cache",
        "attribute and action names are converted from CamelCase once, not per request",
        camelcase_cache,
    ),
]
