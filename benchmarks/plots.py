"""PNG plots of a ``callback-bridge bench --output report.json`` run (matplotlib: the optional
``bench`` extra).

* ``added-latency.png``: the distribution (empirical CDF) of each scenario's added latency,
  job finished on the consumer → Step Functions task closed (polling: at its default interval);
* ``cost-vs-duration.png``: dollars per job against job duration, 1 minute to 12 hours, from
  the cost model (:mod:`benchmarks.cost`) fed with the run's measured requests and transitions;
* ``keepalive.png`` (``--keepalive``): keep-alive requests per job-hour against jobs per worker
  and heartbeat interval (the model), with the run's measured probes;
* ``bench-scale-throughput.png`` (``--scale``, from ``python -m benchmarks.scale --output``):
  jobs/s against consumers, one line per backlog, each point labelled with its limit.

    .venv/bin/python -m benchmarks.plots report.json docs/img
    .venv/bin/python -m benchmarks.plots --scale scale.json docs/img
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks import cost

COLOURS = {"bridge": "tab:green", "naive": "tab:orange", "polling": "tab:red"}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "matplotlib is not installed: pip install 'callback-bridge[bench]'"
        ) from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def latency_plot(report: dict[str, Any], path: Path, command: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in report["samples"].items():
        if not values:
            continue
        ordered = sorted(max(v, 1.0) for v in values)
        share = [(i + 1) / len(ordered) for i in range(len(ordered))]
        ax.step(ordered, share, where="post", label=name, color=COLOURS.get(name))
    ax.set_xscale("log")
    ax.set_xlabel("added latency, ms (job finished → task closed; log scale)")
    ax.set_ylabel("share of jobs")
    interval = report.get("interval_s", cost.DURATIONS)
    ax.set_title(f"Added latency (polling at its {interval} s interval)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.text(0.01, 0.01, command, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cost_plot(report: dict[str, Any], path: Path, command: str) -> None:
    plt = _pyplot()
    durations = [60 * m for m in (1, 2, 5, 10, 20, 30, 60, 120, 240, 480, 720)]
    interval = float(report.get("interval_s", 30))
    fig, ax = plt.subplots(figsize=(7, 4))
    lines = dict(report["per_job"])
    if "bridge" in lines:
        lines["activities"] = lines["bridge"]
    for name, fields in lines.items():
        job = cost.PerJob(**fields)
        usd = [cost.usd_per_job(name, job, d, interval) * 1e6 for d in durations]
        style = "--" if name == "activities" else "-"
        label = "activities (on paper)" if name == "activities" else name
        ax.plot([d / 60 for d in durations], usd, style, label=label, color=COLOURS.get(name))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("job duration, minutes (log scale)")
    ax.set_ylabel(f"$ per million jobs ({cost.REGION}, prices {cost.PRICES_AS_OF})")
    ax.set_title(f"Cost against job duration (polling every {interval:.0f} s)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.text(0.01, 0.01, command, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: Marker per limit (benchmarks.profiling.limit), so the plot shows what bounds each point.
LIMIT_MARKERS = {
    "embedded stack": "s",
    "machine CPU": "o",
    "bridge (consumer)": "^",
    "job slots": "D",
    "none saturated": "x",
}


def throughput_plot(scale: dict[str, Any], path: Path, command: str) -> None:
    """Jobs/s against consumers, a line per backlog; points that did not run are left out."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ok = [p for p in scale["points"] if p.get("status") == "SUCCEEDED" and "limit" in p]
    seen: dict[str, Any] = {}
    for backlog in sorted({p["backlog"] for p in ok}):
        line = sorted((p for p in ok if p["backlog"] == backlog), key=lambda p: p["consumers"])
        xs, ys = [p["consumers"] for p in line], [p["jobs_per_s"] for p in line]
        (drawn,) = ax.plot(xs, ys, ".-", label=f"backlog {backlog:,}")
        for p in line:
            name = p["limit"]["limit"]
            marker = LIMIT_MARKERS.get(name, "x")
            ax.plot(
                p["consumers"], p["jobs_per_s"], marker, color=drawn.get_color(),
                markerfacecolor="none", markersize=9,
            )  # fmt: skip
            seen[name] = plt.Line2D(
                [], [], marker=marker, color="black", linestyle="None", markerfacecolor="none",
                label=f"limit: {name}",
            )  # fmt: skip
    consumers = sorted({p["consumers"] for p in ok}) or [1]
    ax.set_xscale("log", base=2)
    ax.set_xticks(consumers, [str(c) for c in consumers])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("consumer processes (callback-bridge worker)")
    ax.set_ylabel("jobs/s (workers' start → execution closed)")
    ax.set_title(
        f"Throughput on one machine, embedded stack ({scale.get('job_ms', '?')} ms jobs, "
        f"--concurrency {scale.get('concurrency', '?')})",
        fontsize=10,
    )
    ax.grid(True, alpha=0.3)
    lines, _ = ax.get_legend_handles_labels()
    ax.legend(handles=lines + list(seen.values()), fontsize=8, loc="lower right")
    fig.text(0.01, 0.01, command, fontsize=7, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


#: Heartbeat intervals the keep-alive plot draws (the default among them).
PLOT_INTERVALS_S = (60.0, 180.0, 360.0, 900.0)


def keepalive_plot(path: Path, report: dict[str, Any] | None = None) -> None:
    """Keep-alive requests per job-hour against jobs per worker, a line per heartbeat interval,
    for one job per execution and for all of a worker's jobs from one execution (the model,
    :mod:`benchmarks.keepalive_model`), with the targets and, given a bench report, its
    probes' measured points."""
    from benchmarks.keepalive_model import requests_per_job_hour
    from bridge.timing import DEFAULT_HEARTBEAT_INTERVAL_S

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    workers = list(range(1, 21))
    panels = (("one job per execution", 15, False), ("every job of one execution", 5, True))
    for ax, (title, target, fanout) in zip(axes, panels, strict=True):
        for interval in sorted({*PLOT_INTERVALS_S, DEFAULT_HEARTBEAT_INTERVAL_S}):
            ys = [requests_per_job_hour(n, n if fanout else 1, interval) for n in workers]
            default = interval == DEFAULT_HEARTBEAT_INTERVAL_S
            label = f"heartbeat every {interval:g} s" + (" (default)" if default else "")
            ax.plot(workers, ys, "-" if default else "--", linewidth=2 if default else 1,
                    label=label)  # fmt: skip
        ax.axhline(target, color="grey", linestyle=":", label=f"target <= {target}")
        probes = ((report or {}).get("scenarios", {}).get("steady") or {}).get("keepalive_probes")
        name = "fanout" if fanout else "one_job_per_execution"
        if probes and name in probes:
            point = probes[name]
            per_worker = min(point["concurrency"], point["jobs"] // point["workers"])
            ax.plot(per_worker, point["per_job_hour"]["total"], "ko", label="measured (bench)")
        ax.set_yscale("log")
        ax.set_xlabel("jobs running on one worker")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xticks([1, 4, 8, 10, 12, 16, 20])
    axes[0].set_ylabel("keep-alive requests per job-hour")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle(
        "Keep-alive: ChangeMessageVisibilityBatch + SendTaskHeartbeat per running job-hour "
        "(visibility timeout at its default)", fontsize=10,
    )  # fmt: skip
    fig.text(0.01, 0.01, "python -m benchmarks.plots --keepalive report.json docs/img",
             fontsize=7, color="grey")  # fmt: skip
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Plot a bench report (--output JSON).")
    parser.add_argument("report", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument(
        "--scale", action="store_true", help="The report is python -m benchmarks.scale's."
    )
    parser.add_argument(
        "--keepalive", action="store_true",
        help="Draw keepalive.png (the model, with the report's probes if it has them).",
    )  # fmt: skip
    parser.add_argument(
        "--command", default="", help="The command that produced the report (printed on plots)."
    )
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text())
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if args.keepalive:
        keepalive_plot(args.out_dir / "keepalive.png", report)
        print(f"wrote {args.out_dir}/keepalive.png")
        return
    if args.scale:
        throughput_plot(report, args.out_dir / "bench-scale-throughput.png", args.command)
        print(f"wrote {args.out_dir}/bench-scale-throughput.png")
        return
    latency_plot(report, args.out_dir / "bench-added-latency.png", args.command)
    cost_plot(report, args.out_dir / "bench-cost-vs-duration.png", args.command)
    print(f"wrote {args.out_dir}/bench-added-latency.png, bench-cost-vs-duration.png")


if __name__ == "__main__":
    main()
