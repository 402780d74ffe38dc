"""What one SQS call costs on the embedded stack as the queue gets deep: moto as shipped against
the embedded stack (compat patch ``sqs-flat-cost``), in one process, through the server.

For each mode it measures, per call (median and p95, milliseconds):

* SendMessageBatch(10), ReceiveMessage(10), ChangeMessageVisibilityBatch(10) and
  DeleteMessageBatch(10) on an empty queue, and on a queue holding ``--depth`` visible messages
  plus ``--in-flight`` received ones (visibility one hour). Each round sends 10, receives 10,
  changes their visibility and deletes them, so the depth stays put;
* the time for the project's state machine (an inline Map of ``--map-jobs`` items, each an
  ``sqs:sendMessage.waitForTaskToken`` task) to put all its job messages on the jobs queue.

The deep queue is seeded straight into moto's backend with the state SendMessage and
ReceiveMessage leave behind (through the API, stock moto would take about half an hour to build
it). Stock moto gets fewer rounds and a time budget; a measurement cut by the budget says so.

    .venv/bin/python -m benchmarks.sqs_depth            # markdown table
    .venv/bin/python -m benchmarks.sqs_depth --json     # the same numbers as JSON
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3

from bridge.aws import client_config
from bridge.local_stack import compat
from bridge.local_stack.server import EmbeddedServer
from bridge.state_machine import StateMachineParams, render_definition

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/benchmark"
IN_FLIGHT_VISIBILITY_S = 3600
CALLS = [
    "SendMessageBatch(10)",
    "ReceiveMessage(10)",
    "ChangeMessageVisibilityBatch(10)",
    "DeleteMessageBatch(10)",
]
MODES = {"stock": "moto as shipped", "embedded": "embedded (patched)"}  # table order
#: The embedded stack first: a stock Map cut by its budget keeps enqueueing in the background
#: and must not load a later measurement.
RUN_ORDER = ["embedded", "stock"]


def clients(server: EmbeddedServer) -> tuple[Any, Any]:
    kwargs: dict[str, Any] = {
        "endpoint_url": server.endpoint_url,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "config": client_config(),
    }
    return boto3.client("sqs", **kwargs), boto3.client("stepfunctions", **kwargs)


def seed(queue_url: str, visible: int, in_flight: int) -> None:
    """Put messages in moto's backend as SendMessage (and, for ``in_flight``, ReceiveMessage)
    leave them, without stock moto's per-call scan of the queue."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import Message, sqs_backends

    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].get_queue(queue_url.rsplit("/", 1)[1])
    for n in range(visible + in_flight):
        message = Message(str(uuid.uuid4()), json.dumps({"seed": n}))
        message.mark_sent()
        if n >= visible:
            message.mark_received(visibility_timeout=IN_FLIGHT_VISIBILITY_S)
            queue.pending_messages.add(message)
        queue.add_message(message)


def summary(samples_s: list[float]) -> dict[str, Any]:
    if not samples_s:
        return {"n": 0}
    ordered = sorted(samples_s)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
    }


def timed(call: Callable[[], Any], into: list[float]) -> Any:
    started = time.perf_counter()
    result = call()
    into.append(time.perf_counter() - started)
    return result


def one_round(sqs: Any, url: str, into: dict[str, list[float]]) -> None:
    """Send 10, receive 10, change their visibility, delete them: the depth stays put."""
    entries = [{"Id": str(i), "MessageBody": json.dumps({"n": i})} for i in range(10)]
    timed(lambda: sqs.send_message_batch(QueueUrl=url, Entries=entries), into[CALLS[0]])
    received = timed(
        lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10), into[CALLS[1]]
    ).get("Messages", [])
    assert len(received) == 10, f"received {len(received)} messages"
    handles = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)]
    visibility = [{**h, "VisibilityTimeout": IN_FLIGHT_VISIBILITY_S} for h in handles]
    timed(
        lambda: sqs.change_message_visibility_batch(QueueUrl=url, Entries=visibility),
        into[CALLS[2]],
    )
    timed(lambda: sqs.delete_message_batch(QueueUrl=url, Entries=handles), into[CALLS[3]])


def measure_calls(sqs: Any, visible: int, in_flight: int, rounds: int, budget_s: float) -> dict:
    url = sqs.create_queue(
        QueueName=f"bench-{uuid.uuid4().hex[:8]}",
        Attributes={"VisibilityTimeout": str(IN_FLIGHT_VISIBILITY_S)},
    )["QueueUrl"]
    seed(url, visible, in_flight)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) == visible, attributes
    assert int(attributes["ApproximateNumberOfMessagesNotVisible"]) == in_flight, attributes

    samples: dict[str, list[float]] = {call: [] for call in CALLS}
    started = time.monotonic()
    stopped = False
    for round_number in range(rounds + 1):  # round 0 warms the connection up, not recorded
        one_round(sqs, url, {call: [] for call in CALLS} if round_number == 0 else samples)
        if time.monotonic() - started > budget_s and round_number < rounds:
            stopped = True
            break
    sqs.delete_queue(QueueUrl=url)
    return {
        "visible": visible,
        "in_flight": in_flight,
        "stopped_after_s": round(time.monotonic() - started, 1) if stopped else None,
        "calls": {call: summary(samples[call]) for call in CALLS},
    }


def measure_map(sqs: Any, sfn: Any, jobs: int, budget_s: float) -> dict:
    """Seconds from StartExecution until all ``jobs`` job messages are on the jobs queue."""
    url = sqs.create_queue(QueueName=f"bench-jobs-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    definition = render_definition(
        StateMachineParams(jobs_queue_url=url, heartbeat_seconds=3600, timeout_seconds=7200)
    )
    arn = sfn.create_state_machine(
        name=f"bench-{uuid.uuid4().hex[:8]}", definition=definition, roleArn=ROLE_ARN
    )["stateMachineArn"]
    started = time.monotonic()
    sfn.start_execution(
        stateMachineArn=arn,
        name=f"bench-{uuid.uuid4().hex[:8]}",
        input=json.dumps({"jobs": [{"n": i} for i in range(jobs)]}),
    )
    queued = 0
    while queued < jobs and time.monotonic() - started < budget_s:
        time.sleep(0.2)
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        queued = int(attributes["ApproximateNumberOfMessages"])
    elapsed = round(time.monotonic() - started, 1)
    done = queued >= jobs
    return {
        "jobs": jobs,
        "enqueued": queued,
        "seconds": elapsed if done else None,
        "stopped_after_s": None if done else elapsed,
    }


def run_mode(mode: str, args: argparse.Namespace) -> dict:
    stock = mode == "stock"
    rounds, budget = (args.stock_rounds, args.stock_budget) if stock else (args.rounds, 1e9)
    if stock:
        compat.check_moto_version()
    else:
        compat.apply()
    server = EmbeddedServer().start()
    try:
        sqs, sfn = clients(server)
        result: dict[str, Any] = {"mode": mode, "patches": compat.applied()}
        result["empty"] = measure_calls(sqs, 0, 0, rounds, budget)
        print(f"  {mode}: empty queue done", file=sys.stderr)
        result["deep"] = measure_calls(sqs, args.depth, args.in_flight, rounds, budget)
        print(f"  {mode}: deep queue done", file=sys.stderr)
        if args.map_jobs:
            result["map"] = measure_map(sqs, sfn, args.map_jobs, budget)
            print(f"  {mode}: map done", file=sys.stderr)
        return result
    finally:
        server.stop()
        if not stock:
            compat.revert()


def machine() -> dict[str, Any]:
    import moto

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "moto": moto.__version__,
        "platform": platform.platform(),
    }


def _cell(stats: dict[str, Any], stopped: float | None) -> str:
    if not stats.get("n"):
        return f"stopped after {stopped:.0f} s, no round" if stopped else "-"
    cell = f"{stats['median_ms']:,.1f} ({stats['p95_ms']:,.1f})"
    if stats["n"] < 5 or stopped:
        cell += f", n={stats['n']}" + (f" (budget {stopped:.0f} s)" if stopped else "")
    return cell


def markdown(report: dict[str, Any]) -> str:
    m, o = report["machine"], report["options"]
    lines = [
        f"SQS per-call cost, through the embedded server; median (p95) ms. Deep = "
        f"{o['depth']:,} queued + {o['in_flight']:,} in flight.",
        f"Measured {m['date']}: {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}, "
        f"moto {m['moto']}, {m['platform']}.",
        "",
    ]
    by_mode = {r["mode"]: r for r in report["results"]}
    modes = [by_mode[mode] for mode in MODES if mode in by_mode]
    header = "| call |"
    rule = "|---|"
    for r in modes:
        header += f" {MODES[r['mode']]}, empty | {MODES[r['mode']]}, deep | deep / empty |"
        rule += "---:|---:|---:|"
    lines += [header, rule]
    for call in CALLS:
        row = f"| {call} |"
        for r in modes:
            empty, deep = r["empty"]["calls"][call], r["deep"]["calls"][call]
            ratio = (
                f"{deep['median_ms'] / empty['median_ms']:.1f}x"
                if deep.get("n") and empty.get("n") and empty["median_ms"]
                else "-"
            )
            row += (
                f" {_cell(empty, r['empty']['stopped_after_s'])} |"
                f" {_cell(deep, r['deep']['stopped_after_s'])} | {ratio} |"
            )
        lines.append(row)
    if o["map_jobs"]:
        lines += [
            "",
            f"| Map of {o['map_jobs']:,} jobs: time to enqueue all | seconds |",
            "|---|---:|",
        ]
        for r in modes:
            result = r["map"]
            value = (
                f"{result['seconds']:,.1f}"
                if result["seconds"] is not None
                else f"stopped after {result['stopped_after_s']:.0f} s "
                f"({result['enqueued']:,} of {result['jobs']:,} enqueued)"
            )
            lines.append(f"| {MODES[r['mode']]} | {value} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=10_000, help="visible messages (deep queue)")
    parser.add_argument("--in-flight", type=int, default=1_000, help="in flight (deep queue)")
    parser.add_argument("--map-jobs", type=int, default=1_000, help="Map items; 0 skips the Map")
    parser.add_argument("--rounds", type=int, default=30, help="rounds per queue, patched")
    parser.add_argument("--stock-rounds", type=int, default=3, help="rounds per queue, stock")
    parser.add_argument(
        "--stock-budget", type=float, default=120, help="seconds per stock measurement"
    )
    parser.add_argument("--modes", default="embedded,stock", help="which of embedded,stock")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args(argv)

    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}")
    report: dict[str, Any] = {
        "machine": machine(),
        "options": {k: v for k, v in vars(args).items() if k != "json"},
        "results": [run_mode(mode, args) for mode in RUN_ORDER if mode in modes],
    }
    print(json.dumps(report, indent=2) if args.json else markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
