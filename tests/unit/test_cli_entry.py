"""The entry point: ``--version``; ``status``, ``dlq`` and ``jobs`` with nothing configured exit 2
naming where they looked (the state file's absolute path), before asking for a region."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge.cli.main import app


@pytest.mark.parametrize("command", [["status"], ["dlq", "list"], ["jobs", "list"]])
def test_nothing_configured_is_an_error_naming_the_state_file(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "BRIDGE_STATE_FILE"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    expected = tmp_path.resolve() / ".callback-bridge" / "local.json"
    said = " ".join(result.output.split())
    assert "nothing configured" in said or "missing configuration: state_machine_arn" in said
    assert f"no state file at {expected}" in said
    assert "region" not in said


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"callback-bridge {version('callback-bridge')}\n"
