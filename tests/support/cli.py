"""Run ``callback-bridge`` as an operator's shell does, against an embedded stack."""

from __future__ import annotations

import os
import subprocess
import sys

from bridge.local_stack import LocalStack

CLI = [sys.executable, "-m", "bridge.cli.main"]


def run_cli(stack: LocalStack, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``callback-bridge ARGS --state-file STACK`` at 80 columns (where wrapping would show),
    with ``BRIDGE_FANOUT_BUCKET`` set as in a shell that ran ``eval "$(callback-bridge local
    env)"``: a command that trips over a variable users always have set fails here too."""
    assert stack.state_file is not None
    return subprocess.run(
        [*CLI, *args, "--state-file", str(stack.state_file)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "80", "BRIDGE_FANOUT_BUCKET": "callback-bridge-fanout"},
    )
