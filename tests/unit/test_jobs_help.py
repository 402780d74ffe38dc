"""The operator commands' --help at 80 columns: no option name cut, no wrapped summary."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from bridge.cli.main import app

pytestmark = pytest.mark.unit

COMMANDS = [
    ["dlq", "list"],
    ["dlq", "show"],
    ["dlq", "redrive"],
    ["dlq", "fail"],
    ["dlq", "delete"],
    ["dlq", "purge"],
    ["jobs", "list"],
    ["jobs", "show"],
    ["rerun"],
]


def help_text(command: list[str]) -> str:
    done = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "80", "TERM": "dumb"})
    assert done.exit_code == 0, done.output
    return done.output


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_at_80_columns_cuts_no_option_name(command: list[str]) -> None:
    text = help_text(command)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for option in re.findall(r"--[a-z][a-z-]+", text):
        assert not option.endswith("-"), option
