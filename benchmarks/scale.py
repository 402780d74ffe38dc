"""Throughput against consumers and backlog, each result with the limit it hits, by profile.

    .venv/bin/python -m benchmarks.scale --output scale.json     # the issue's grid
    .venv/bin/python -m benchmarks.scale --points 1x100,2x100    # a quick look
    .venv/bin/python -m benchmarks.plots --scale scale.json docs/img

Each point ``CxB`` is the ``bridge`` scenario of :mod:`benchmarks.scenarios` on a fresh
embedded stack: B jobs queued through a DISTRIBUTED Map (an INLINE Map runs at most 40 at once
on AWS), then C ``callback-bridge worker`` processes started; jobs/s from the workers' start to
the execution's close. Over that window :class:`benchmarks.profiling.ProfileWatch` records CPU
per process and py-spy profiles of the stack and one worker, and
:func:`benchmarks.profiling.limit` names the limit. One point at a time, one stack each, so a
10,000-job point does not slow the next.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.measure import process_stats
from benchmarks.profiling import Profile, ProfileWatch, WindowStats, limit, summarise
from benchmarks.scenarios import BenchPlan, run_bench

#: Consumers 1, 2, 4, 8 at a 1,000-job backlog; backlogs 100 and 10,000 at 2 consumers.
GRID = ("1x1000", "2x1000", "4x1000", "8x1000", "2x100", "2x10000")


def parse_points(text: str) -> list[tuple[int, int]]:
    """``"1x1000,2x100"`` → ``[(1, 1000), (2, 100)]`` (consumers x backlog)."""
    points = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        consumers, sep, backlog = part.partition("x")
        if not (sep and consumers.isdigit() and backlog.isdigit()):
            raise ValueError(f"a point is CONSUMERSxBACKLOG such as 2x1000, got {part!r}")
        if not (1 <= int(consumers) <= 32 and 1 <= int(backlog) <= 10_000):
            raise ValueError(f"{part!r}: consumers 1-32, backlog 1-10000")
        points.append((int(consumers), int(backlog)))
    return points


def _peak_mb() -> float:
    """This process's peak resident memory (the stack's, and the harness's), in MB: a peak over
    every point run so far in this process, so a big point is best run alone."""
    return round(process_stats(os.getpid())[1] / 2**20, 1)


def run_point(
    consumers: int,
    backlog: int,
    job_ms: int,
    concurrency: int,
    work_dir: Path,
    profile: bool = True,
    timeout_s: float = 1800,
) -> dict[str, Any]:
    """One point on a fresh stack: jobs/s, requests, CPU and profiles, and the limit."""
    plan = BenchPlan(
        jobs=backlog, consumers=consumers, concurrency=concurrency, job_ms=(job_ms, job_ms),
        scenarios=("bridge",), backlog=True, map_mode="DISTRIBUTED", timeout_s=timeout_s,
    )  # fmt: skip
    point_dir = work_dir / f"{consumers}x{backlog}"
    watch = ProfileWatch(point_dir, profile=profile)

    def progress(_name: str, done: int, total: int) -> None:
        print(f"\r{consumers}x{backlog}: {done}/{total}", end="", file=sys.stderr, flush=True)

    started = time.monotonic()
    try:
        measured, _ = run_bench(plan, progress=progress, work_dir=point_dir, watch=watch)
    except Exception as exc:  # a point that cannot run is a result too (the doc reports it)
        point_dir.mkdir(parents=True, exist_ok=True)
        (point_dir / "error.txt").write_text(traceback.format_exc())
        return {
            "consumers": consumers, "backlog": backlog, "status": "ERROR", "error": str(exc),
            "elapsed_s": round(time.monotonic() - started, 1), "stack_peak_rss_mb": _peak_mb(),
        }  # fmt: skip
    finally:
        print(file=sys.stderr)
    figures = report.scenario(measured[0], plan)
    slots = consumers * concurrency * 1000 / job_ms if job_ms else 0.0
    out: dict[str, Any] = {
        "consumers": consumers,
        "backlog": backlog,
        "status": figures["status"],
        "elapsed_s": figures["elapsed_s"],
        "queued_at_start": measured[0].queued_at_start,
        "jobs_per_s": figures["jobs_per_s"],
        "slots_jobs_per_s": round(slots, 1),
        "bridge_requests_per_job": figures["bridge_requests_per_job"],
        "requests_per_job": figures["requests_per_job"],
        "consumer_cpu_s_per_job": figures["consumer_cpu_s_per_job"],
        "consumer_peak_rss_mb": figures["consumer_peak_rss_mb"],
        "stack_peak_rss_mb": _peak_mb(),
        "logs": str(point_dir),
    }
    if figures.get("failure"):
        out["failure"] = figures["failure"]
    if watch.result is not None:
        out["window"] = watch.result.as_dict()
        out["limit"] = limit(watch.result, figures["jobs_per_s"], slots)
    return out


def stack_ms_per_job(point: dict[str, Any]) -> float:
    """The embedded stack's CPU per job over the window: what bounds jobs/s when the stack
    has one core to itself (its Python runs under one GIL)."""
    window = point["window"]
    return float(window["stack_cores"] * window["window_s"] / point["backlog"] * 1000)


def markdown(points: list[dict[str, Any]]) -> str:
    """The scale table, then each point's profile summary."""
    lines = [
        "| consumers | backlog | jobs/s | slots allow | stack CPU ms/job | stack GIL | "
        "consumer GIL | cores busy: stack / consumers / other | limit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    prof_names = ("stack", "consumer")
    for p in points:
        if "window" not in p:
            lines.append(
                f"| {p['consumers']} | {p['backlog']:,} | {p['status']}: "
                f"{p.get('error', '')[:200]} | | | | | | |"
            )
            continue
        w, prof = p["window"], p["window"]["profiles"]
        gil = {n: f"{prof[n]['gil_share']:.0%}" if n in prof else "-" for n in prof_names}
        lines.append(
            f"| {p['consumers']} | {p['backlog']:,} | {p['jobs_per_s']} | "
            f"{p['slots_jobs_per_s']:.0f} | {stack_ms_per_job(p):.1f} | {gil['stack']} | "
            f"{gil['consumer']} | "
            f"{w['stack_cores']} / {w['consumers_cores']} / {w['other_cores']} of {w['cpus']} | "
            f"{p['limit']['limit']} |"
        )
    for p in points:
        for name, prof in p.get("window", {}).get("profiles", {}).items():
            lines.append(f"\n{p['consumers']}x{p['backlog']} {name}: {prof['samples']} samples")
            lines += [f"  {share:.0%} {c}" for c, share in prof["components"]]
            lines += [f"  within: {share:.0%} {c}" for c, share in prof.get("inclusive", [])]
            lines += [f"  top: {share:.0%} {f}" for f, share in prof["top_functions"][:4]]
    return "\n".join(lines)


def resummarise(report: dict[str, Any]) -> dict[str, Any]:
    """Summarise each point's raw profiles again (``<logs>/profile-*.txt``) and name its limit,
    as the current :mod:`benchmarks.profiling` does, without running anything."""
    for p in report["points"]:
        for name, prof in p.get("window", {}).get("profiles", {}).items():
            raw = Path(p["logs"]) / f"profile-{name}.txt"
            if raw.exists():
                summary = summarise(raw.read_text(), prof["window_s"], prof["rate_hz"])
                p["window"]["profiles"][name] = asdict(summary)
        if "window" in p:
            p["limit"] = limit(_window(p["window"]), p["jobs_per_s"], p["slots_jobs_per_s"])
    return report


def _window(data: dict[str, Any]) -> WindowStats:
    profiles = {n: Profile(**{**v, "top_functions": [tuple(x) for x in v["top_functions"]]})
                for n, v in data["profiles"].items()}  # fmt: skip
    return WindowStats(**{**data, "profiles": profiles})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", default=",".join(GRID), help="CONSUMERSxBACKLOG, ...")
    parser.add_argument("--job-ms", type=int, default=50, help="Every job sleeps this long.")
    parser.add_argument("--concurrency", type=int, default=10, help="Slots per worker.")
    parser.add_argument("--no-profile", action="store_true", help="CPU only, no py-spy.")
    parser.add_argument("--timeout", type=float, default=1800, help="Seconds a point may take.")
    parser.add_argument("--work-dir", type=Path, default=Path("bench-scale"))
    parser.add_argument("--output", type=Path, help="Write the points as JSON.")
    parser.add_argument(
        "--resummarise", type=Path, help="Only summarise this report's raw profiles again."
    )
    args = parser.parse_args(argv)
    if args.resummarise:
        loaded = resummarise(json.loads(args.resummarise.read_text()))
        args.resummarise.write_text(json.dumps(loaded, indent=2) + "\n")
        print(markdown(loaded["points"]))
        return
    try:
        points = parse_points(args.points)
    except ValueError as exc:
        parser.error(str(exc))
    from bridge.local_stack.stack import quiet_moto_logs

    quiet_moto_logs()
    results = []
    for consumers, backlog in points:
        results.append(
            run_point(
                consumers, backlog, args.job_ms, args.concurrency, args.work_dir,
                profile=not args.no_profile, timeout_s=args.timeout,
            )
        )  # fmt: skip
        if args.output:  # after every point: a long grid keeps what it has
            args.output.write_text(
                json.dumps({"job_ms": args.job_ms, "concurrency": args.concurrency,
                            "machine": report.machine(), "points": results}, indent=2) + "\n"
            )  # fmt: skip
    print(markdown(results))


if __name__ == "__main__":
    main()
