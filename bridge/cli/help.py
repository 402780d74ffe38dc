"""``--help`` that never cuts a name: option names, ``BRIDGE_*`` variables, paths and URLs stay
whole at any width, so they can be read and copied from an 80-column terminal.

Typer's rich help lays options out as a table whose columns share the width: at 80 columns
``worker --help`` cut 33 names to ``--lifecycle-hook-na…`` and ``BRIDGE_WORKER_HANDL…``. The
CLI uses click's plain layout instead (``rich_markup_mode=None``: name and metavar, then the
help wrapped beside them or under them when the name is long) with one change: lines break
only at spaces, never inside a word or at its hyphens (click's wrapper splits
``--task-heartbeat-seconds`` after ``--task-heartbeat-``). A word longer than the line stays
whole on a line of its own.

:class:`WholeNamesGroup` is the root command's class; it gives every command under it a
context whose formatter is :class:`WholeWordsFormatter`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Any

import typer
from typer.core import TyperGroup

#: The click formatter of the installed typer (typer 0.2x vendors its own click): subclassed,
#: not imported from click, so the contexts typer makes can use it.
_ClickFormatter: Any = typer.Context.formatter_class

#: Help is wrapped to the terminal, but never wider than this (long lines are hard to read).
MAX_HELP_WIDTH = 120


def wrap_whole_words(
    text: str, width: int, initial_indent: str = "", subsequent_indent: str = ""
) -> str:
    """Like :func:`click.formatting.wrap_text` with ``preserve_paragraphs``: paragraphs are
    separated by empty lines, one starting with a ``\\b`` line is kept as written, but no word
    is ever split (not when too long, not at a hyphen)."""
    wrapper = textwrap.TextWrapper(
        width=max(width, 1),
        initial_indent=initial_indent,
        subsequent_indent=subsequent_indent,
        replace_whitespace=False,
        break_long_words=False,
        break_on_hyphens=False,
    )
    paragraphs: list[tuple[int, bool, str]] = []
    lines: list[str] = []
    indent: int | None = None

    def flush() -> None:
        if lines:
            if lines[0].strip() == "\b":
                paragraphs.append((indent or 0, True, "\n".join(lines[1:])))
            else:
                paragraphs.append((indent or 0, False, " ".join(lines)))
            lines.clear()

    for line in text.expandtabs().splitlines():
        if not line:
            flush()
            indent = None
            continue
        if indent is None:
            stripped = line.lstrip()
            indent = len(line) - len(stripped)
            line = stripped
        lines.append(line)
    flush()
    out = []
    for extra, raw, paragraph in paragraphs:
        pad = " " * extra
        if raw:
            out.append("\n".join(initial_indent + pad + line for line in paragraph.splitlines()))
            continue
        wrapper.initial_indent, wrapper.subsequent_indent = (
            initial_indent + pad,
            subsequent_indent + pad,
        )
        out.append(wrapper.fill(paragraph))
    return "\n\n".join(out)


class WholeWordsFormatter(_ClickFormatter):  # type: ignore[misc]
    """click's help formatter, wrapping only at spaces (see the module docstring)."""

    def __init__(
        self, indent_increment: int = 2, width: int | None = None, max_width: int | None = None
    ) -> None:
        super().__init__(indent_increment, width, max_width or MAX_HELP_WIDTH)

    def write_text(self, text: str) -> None:
        indent = " " * self.current_indent
        self.write(wrap_whole_words(text, self.width, indent, indent))
        self.write("\n")

    def write_dl(
        self, rows: Iterable[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = list(rows)
        first_col = min(max((len(first) for first, _ in rows), default=0), col_max) + col_spacing
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            if len(first) <= first_col - col_spacing:
                self.write(" " * (first_col - len(first)))
            else:  # a long name keeps its line: its help starts on the next one
                self.write("\n")
                self.write(" " * (first_col + self.current_indent))
            text_width = max(self.width - first_col - 2, 10)
            wrapped = wrap_whole_words(second, text_width).splitlines() or [""]
            self.write(f"{wrapped[0]}\n")
            for line in wrapped[1:]:
                self.write(f"{'':>{first_col + self.current_indent}}{line}\n")


class WholeWordsContext(typer.Context):
    formatter_class = WholeWordsFormatter


def _use_whole_words(command: Any) -> None:
    command.context_class = WholeWordsContext
    for child in getattr(command, "commands", {}).values():
        _use_whole_words(child)


class WholeNamesGroup(TyperGroup):
    """The root command: it and every command under it format help with
    :class:`WholeWordsFormatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _use_whole_words(self)
