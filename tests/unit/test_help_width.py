"""Every command's ``--help`` at 80 columns shows every option name and every ``BRIDGE_*``
variable of that command whole (issue 19, item 5): names are what an operator copies.

The names come from the click command tree itself (each parameter's options and environment
variables), so a new command or option is checked without touching this file.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bridge.cli.help import wrap_whole_words
from bridge.cli.main import app

pytestmark = pytest.mark.unit


def commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command of the tree under ``command``, with the words that invoke it."""
    found = [(path, command)]
    for name, child in sorted(getattr(command, "commands", {}).items()):
        found += commands(child, (*path, name))
    return found


ROOT = typer.main.get_command(app)
ALL = commands(ROOT)


def names_of(command: Any) -> set[str]:
    """Option names (both sides of a --flag/--no-flag) and environment variables shown."""
    names: set[str] = set()
    for param in command.params:
        if getattr(param, "hidden", False) or param.param_type_name != "option":
            continue
        names.update(param.opts)
        names.update(param.secondary_opts)
        envvars = param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar]
        names.update(str(variable) for variable in envvars if variable)
    return names


def help_text(path: tuple[str, ...], columns: int) -> str:
    done = CliRunner().invoke(
        app,
        [*path, "--help"],
        env={"COLUMNS": str(columns), "TERM": "dumb"},
        terminal_width=columns,
    )
    assert done.exit_code == 0, done.output
    return done.output


def test_the_tree_is_walked() -> None:
    """The walk finds the groups' commands, so the test below cannot pass on an empty list."""
    paths = {" ".join(path) for path, _ in ALL}
    assert {"", "worker", "status", "dlq show", "jobs list", "local up", "rerun"} <= paths
    assert "--lifecycle-hook-name" in names_of(dict(ALL)[("worker",)])
    assert "BRIDGE_WORKER_HANDLER" in names_of(dict(ALL)[("worker",)])


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "root" for p, _ in ALL])
def test_help_at_80_columns_shows_every_name_whole(path: tuple[str, ...], command: Any) -> None:
    text = help_text(path, 80)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "…" not in text
    for name in names_of(command):
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), (name, text)
    # An option named in a help text is not split at its hyphens either.
    for line in text.splitlines():
        assert not re.search(r"--[a-z][a-z-]*-$", line.rstrip()), line


def test_help_at_120_columns_uses_the_width() -> None:
    """Readable on a wide terminal: help runs beside the names, past 80 columns."""
    text = help_text(("worker",), 120)
    assert 80 < max(len(line) for line in text.splitlines()) <= 120
    assert "--lifecycle-hook-name <str>" in text


def test_a_word_longer_than_the_line_stays_whole() -> None:
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/callback-bridge-jobs-dlq"
    wrapped = wrap_whole_words(f"see {url} and --task-heartbeat-seconds now", 20)
    assert url in wrapped.splitlines()
    assert wrapped.splitlines()[2:] == ["and", "--task-heartbeat-seconds", "now"]


def test_a_b_paragraph_is_kept_as_written() -> None:
    text = "Steps:\n\n\b\n  one   two\n  three\n\nwrapped words here"
    assert wrap_whole_words(text, 10).split("\n\n") == [
        "Steps:",
        "  one   two\n  three",
        "wrapped\nwords here",
    ]
