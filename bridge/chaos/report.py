"""The campaign's one table (rich) and its JSON line."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

#: (label, key) of the table's main rows, in order.
ROWS = [
    ("seed", "seed"),
    ("jobs", "jobs"),
    ("executions", "executions"),
    ("succeeded", "succeeded"),
    ("failed", "failed"),
    ("cancelled (execution stopped)", "cancelled"),
    ("dead-lettered", "dead_lettered"),
    ("lost (must be 0)", "lost"),
    ("duplicate SendTaskSuccess accepted (must be 0)", "duplicate_successes"),
    ("stale jobs run in full (must be 0)", "stale_runs_in_full"),
    ("ended otherwise than asked (must be 0)", "mismatched"),
    ("healthy jobs dead-lettered (must be 0)", "healthy_dead_lettered"),
    ("jobs run again after their result was delivered (must be 0)", "reran_after_result"),
    ("successes with another job's output (must be 0)", "outputs_not_their_jobs"),
    ("daemons started by jobs", "daemons_started"),
    ("daemons that outlived their jobs (must be 0)", "daemons_escaped"),
    ("daemons left by killed consumers (reported only)", "daemons_left_by_killed_consumers"),
    ("consumers killed (SIGKILL)", "consumers_killed"),
    ("consumers stopped (SIGTERM)", "consumers_sigterm"),
    ("consumers frozen (SIGSTOP past the visibility timeout)", "consumers_sigstopped"),
    ("consumers downed by crashing jobs", "consumers_downed_by_poison_pills"),
    ("consumer restarts", "consumer_restarts"),
    ("consumer crashes (must be 0)", "consumer_crashes"),
    ("handler errors (must be 0)", "handler_errors"),
    ("malformed injected", "malformed_injected"),
    ("malformed accounted", "malformed_accounted"),
    ("log lines with a token or 32 characters of one (must be 0)", "token_leaks"),
    ("tokens searched for", "tokens_checked"),
    ("calls through the fault proxy", "proxied_calls"),
    ("wall time s", "wall_s"),
]


def table(summary: dict[str, Any]) -> Table:
    out = Table(title="callback-bridge chaos", show_header=False)
    out.add_column("")
    out.add_column("", justify="right")
    for label, key in ROWS:
        out.add_row(label, str(summary.get(key, "")))
    for error, n in summary["failed_by_error"].items():
        out.add_row(f"  failed {error}", str(n))
    for kind, n in summary["faults"].items():
        out.add_row(f"  fault {kind}", str(n))
    for kind, n in summary["malformed_by_kind"].items():
        out.add_row(f"  malformed {kind}", str(n))
    for where, n in summary["malformed_where"].items():
        out.add_row(f"  malformed ended: {where}", str(n))
    foreign = summary["foreign_token"]
    out.add_row(
        "other region's token: result changed nothing", str(foreign.get("unchanged", "not run"))
    )
    same = summary.get("same_region_foreign_token", {})
    out.add_row(
        "same-region foreign token: changed nothing (reported only)",
        str(same.get("unchanged", "not run")),
    )
    out.add_row("listeners off loopback", str(len(summary["listeners_off_loopback"])))
    return out


def print_report(console: Console, summary: dict[str, Any]) -> None:
    console.print(table(summary))
    verdict = "PASSED" if summary["passed"] else "FAILED: " + "; ".join(summary["problems"])
    console.print(f"seed {summary['seed']}: {verdict}")
    for key in ("lost_jobs", "mismatched_jobs", "healthy_dead_lettered_jobs",
                "reran_after_result_jobs", "outputs_not_their_jobs_list", "daemons_escaped_list",
                "malformed_unaccounted", "token_leak_lines", "listeners_off_loopback"):  # fmt: skip
        if summary.get(key):
            console.print(f"{key}: {summary[key]}")
    console.print(f"logs: {summary['work_dir']}")


def json_line(summary: dict[str, Any]) -> str:
    return json.dumps(summary, separators=(",", ":"), default=str)


#: Fault marks on the plot: kind -> (colour, label).
MARKS = {
    "consumer_killed": ("tab:red", "SIGKILL"),
    "consumer_sigterm": ("tab:orange", "SIGTERM"),
    "termination_notice": ("tab:purple", "termination notice"),
    "execution_stopped": ("tab:brown", "execution stopped"),
    "consumer_sigstop": ("tab:pink", "SIGSTOP"),
}


#: Fault windows on the plot: kind -> (label, colour).
SPANS = {
    "outage_sfn": ("Step Functions outage", "tab:blue"),
    "outage_results": ("results queue outage", "tab:olive"),
    "results_queue_missing": ("results queue missing", "tab:cyan"),
}


def plot(observed: Any, path: Any) -> None:
    """Cumulative task outcomes over time (from the executions' histories), with the kills,
    stops and outage windows marked: ``docs/img/chaos-outcomes.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    starts = [e.started_at for e in observed.executions]
    t0 = min(starts) if starts else observed.started_wall  # the first execution's start
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for kind, colour in (("succeeded", "tab:green"), ("failed", "tab:gray")):
        times = [t - t0 for t, k in observed.timeline if k == kind]
        ax.step(times, range(1, len(times) + 1), where="post", color=colour, label=kind)
    labelled: set[str] = set()
    for t, kind, seconds in observed.fault_times:
        x = t - t0
        if kind in SPANS:
            label, shade = SPANS[kind]
            ax.axvspan(x, x + seconds, color=shade, alpha=0.15,
                       label=None if label in labelled else label)  # fmt: skip
            labelled.add(label)
        elif kind in MARKS:
            colour, label = MARKS[kind]
            ax.axvline(x, color=colour, linestyle="--", linewidth=0.8,
                       label=None if label in labelled else label)  # fmt: skip
            labelled.add(label)
    ax.set_xlabel("seconds since the first execution started")
    ax.set_ylabel("tasks closed (cumulative)")
    ax.set_title(f"callback-bridge chaos, seed {observed.seed}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
