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
