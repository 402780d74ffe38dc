"""What the long-running commands (demo, bench) show while they run."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn


def progress_bar(console: Console, transient: bool) -> Progress:
    """One bar style for every command; ``transient`` (with --json) clears it at the end so
    the JSON line stands alone."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


def field_lines(pairs: list[tuple[str, str]], indent: str = "  ") -> list[str]:
    """``key  value`` lines, keys aligned: ids, ARNs, URLs and paths stay whole on one line
    (never wrapped or shortened, on a terminal or not), so they can be copied."""
    width = max((len(key) for key, _ in pairs), default=0)
    return [f"{indent}{key.ljust(width)}  {value}" for key, value in pairs]


def first_line(text: str | None, limit: int = 300) -> str:
    """The first non-empty line of ``text`` (a cause, a reason), at most ``limit`` characters:
    the whole text is in ``--json``."""
    for line in (text or "").splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


def aligned(
    rows: list[list[str]], right: frozenset[int] = frozenset(), indent: str = "  "
) -> list[str]:
    """Rows as lines of space-separated columns, every column but the last padded to its widest
    cell (``right``: indexes of columns aligned right, numbers). The last column is never
    padded, wrapped or shortened: put the id, name, ARN or URL there, so it can be copied
    whole however long it is."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        lines.append(indent + "  ".join([*cells, row[-1]]).rstrip())
    return lines
