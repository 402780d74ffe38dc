"""Shared fixtures. Every test runs with dummy credentials and no endpoint from the developer's
shell, so nothing here can reach a real AWS account by accident."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bridge.config import ENVIRONMENT

TESTS = Path(__file__).resolve().parent
#: Each directory under tests/ is a tier; its tests get the tier's marker (``pytest -m unit``).
TIERS = ("unit", "functional", "e2e", "infra", "conformance")

SAFE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_METRICS_DISABLED": "true",
    # moto's EC2 would otherwise load its public image catalogue at every reset.
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SAFE_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    # Whatever 'eval "$(callback-bridge local env)"' or worker.env may have set in this shell.
    for name in {"AWS_PROFILE", "BRIDGE_STATE_FILE", "BRIDGE_TF_OUTPUTS", *ENVIRONMENT.values()}:
        monkeypatch.delenv(name, raising=False)
    for name in [n for n in os.environ if n.startswith("BRIDGE_")]:
        monkeypatch.delenv(name, raising=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(TESTS) else ""
        if tier in TIERS:
            item.add_marker(tier)


def pytest_configure(config: pytest.Config) -> None:
    """Commands the tests start see Ctrl-C as they would from a terminal. A suite started in the
    background by a non-interactive shell (``make test &``, some CI runners) inherits SIGINT
    ignored, and an ignored signal stays ignored across exec: a child Python would then never
    raise KeyboardInterrupt, and the tests that press Ctrl-C on ``status --watch`` would hang."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
