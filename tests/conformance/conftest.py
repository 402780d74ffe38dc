"""The conformance suite: each AWS behaviour the bridge relies on, stated as a test.

Every test takes the ``target`` fixture and runs against:

* ``embedded``: the embedded stack's server with the compatibility patches (always);
* ``moto``: the same server with moto as shipped (always). A test marked
  ``@pytest.mark.gap("patch-name")`` is a *canary* there: it is expected to fail (strict xfail),
  and the day it passes, moto has fixed the gap and the named patch can be deleted;
* ``aws``: real AWS, only when ``BRIDGE_CONFORMANCE_AWS=1`` and ``BRIDGE_CONFORMANCE_ROLE_ARN``
  (a role Step Functions can assume, allowed ``sqs:SendMessage`` on queues named
  ``cbconf-*``) are set. Credentials then come from the standard chain as it was when pytest
  started; resources get a unique ``cbconf-<random>-`` prefix and are deleted afterwards.

Nothing else ever reaches AWS: the embedded targets use explicit loopback endpoints and dummy
credentials.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.local_stack import compat
from bridge.local_stack.server import EmbeddedServer
from tests.support.aws import loopback_client
from tests.support.conformance import LOCAL_ROLE_ARN, TARGETS, Target, aws_target


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    gap = request.node.get_closest_marker("gap")
    if request.param == "moto" and gap:
        request.applymarker(
            pytest.mark.xfail(
                strict=True,
                reason=f"canary: moto as shipped still lacks this; when it passes, "
                f"delete compat patch '{gap.args[0]}'",
            )
        )
    if request.param == "aws":
        target = aws_target()
        yield target
        target.cleanup()
        return
    patched = request.param == "embedded"
    if patched:
        compat.apply()
    server = EmbeddedServer().start()
    try:
        yield Target(
            request.param,
            loopback_client("sqs", server.endpoint_url, max_attempts=6),
            loopback_client("stepfunctions", server.endpoint_url, max_attempts=6),
            LOCAL_ROLE_ARN,
        )
    finally:
        server.stop()
        if patched:
            compat.revert()


@pytest.fixture
def embedded_only(target: Target) -> Target:
    """``target``, skipped against AWS: for tests that count or bound moto's own work."""
    if target.is_aws:
        pytest.skip("counts moto's own work (or bounds it): meaningless against AWS")
    return target
