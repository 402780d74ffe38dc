"""Run a chaos campaign: the embedded stack, a fault proxy, a fleet of real consumers, and the
seeded schedule played against them; then :mod:`bridge.chaos.reconcile` judges the outcome.

Wiring (no change to the stack itself): the workers get ``--endpoint-url`` = the proxy; the
completion handler and the dead-letter handler, which run in this process, are rebuilt on
clients whose endpoint is the proxy and swapped into their event source mappings (the seam
``benchmarks`` uses to meter the handler). moto's own Step Functions interpreter and the local
event source mappings (AWS's side) talk to the server directly.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge import completion
from bridge.aws import build_clients
from bridge.chaos import fuzz
from bridge.chaos.checks import listeners_off_loopback, live_daemons
from bridge.chaos.fleet import Fleet
from bridge.chaos.inject import Copies, JobTap, foreign_result, foreign_token, send_poison
from bridge.chaos.proxy import FaultProxy
from bridge.chaos.reconcile import Execution, Observed
from bridge.chaos.schedule import ChaosPlan, Event, Schedule, build
from bridge.chaos.tokens import real_length_tokens
from bridge.dead_letter import DeadLetterHandler, archive_routes
from bridge.local_stack import LocalStack, StackSettings
from bridge.local_stack.event_source import EventSourceSettings
from bridge.local_stack.imds import announce
from bridge.local_stack.resources import LOCAL_ROLE_ARN
from bridge.logs import configure_logging, owned_handlers
from bridge.state_machine import render_definition

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
FOREIGN_REGION = "us-west-2"


class ErrorLog(logging.Handler):
    """Counts the event source's "handler raised" errors: a handler crash on some input."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage()[:300])


def stack_settings(plan: ChaosPlan) -> StackSettings:
    return StackSettings(
        prefix="chaos",
        jobs_visibility_timeout_s=plan.visibility_timeout_s,
        results_visibility_timeout_s=6,
        jobs_max_receive_count=plan.max_receive_count,
        results_max_receive_count=5,
        timeout_seconds=plan.task_timeout_s,
        max_queue_wait_s=plan.max_queue_wait_s,
        job_timeout_s=plan.job_timeout_s,
        retry_interval_seconds=1,
    )


@dataclass
class Campaign:
    plan: ChaosPlan
    work_dir: Path
    progress: Progress = lambda _done, _total: None
    schedule: Schedule = field(init=False)
    observed: Observed = field(init=False)

    def __post_init__(self) -> None:
        self.schedule = build(self.plan)
        self.observed = Observed(seed=self.plan.seed, work_dir=self.work_dir)

    # -- set-up ---------------------------------------------------------------------------
    def run(self) -> Observed:
        """Everything this process logs goes to ``stack.log`` at DEBUG (through the redacting
        filter, as ``local up`` would); the previous logging is restored afterwards."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        errors = ErrorLog()
        source_log = logging.getLogger("bridge.local_stack.event_source")
        level = completion.logger.log_level
        with (self.work_dir / "stack.log").open("w") as stack_log:
            configure_logging("DEBUG", "json", stream=stack_log)
            for noisy in ("werkzeug", "urllib3", "hypothesis"):
                logging.getLogger(noisy).setLevel(logging.WARNING)
            logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
            source_log.addHandler(errors)
            completion.logger.setLevel("DEBUG")
            try:
                with real_length_tokens(self.plan.seed) as mint:
                    observed = self._run(errors)
                observed.tokens_minted = mint.issued
                return observed
            finally:
                completion.logger.setLevel(level)
                source_log.removeHandler(errors)
                for handler in owned_handlers():
                    logging.getLogger().removeHandler(handler)
                    handler.close()

    def _run(self, errors: ErrorLog) -> Observed:
        obs, plan = self.observed, self.plan
        copies = Copies(
            self.schedule.duplicates, plan.duplicate_job_rate, plan.duplicate_result_rate
        )
        poison = fuzz.generate(plan.poison, self.schedule.fuzz_seed)
        obs.poison = poison
        started = time.monotonic()
        with (
            (self.work_dir / "completion.log").open("w") as handler_log,
            LocalStack(
                stack_settings(plan),
                state_file=self.work_dir / "local.json",
                observer=copies.observer,
                handler_log=handler_log,
                event_source_settings=EventSourceSettings(function_timeout_s=5.0),
            ) as stack,
        ):
            assert stack.clients and stack.config and stack.event_source
            config = stack.config
            proxy = FaultProxy(
                stack.server.endpoint_url,
                self.schedule.proxy,
                plan.rates,
                results_queue_name=_name(config.results_queue_url),
            ).start()
            self._through_proxy(stack, proxy.endpoint_url)
            JobTap.install(stack, _name(config.jobs_queue_url), copies)
            fleet = Fleet(plan, stack.state_file or Path(), proxy.endpoint_url, self.work_dir)
            try:
                fleet.start(0, instance=True)
                for i in range(1, plan.consumers):
                    fleet.start(i)
                self._play(stack, proxy, fleet, copies, poison)
                self._settle(stack)
                self._daemons()
            finally:
                obs.listeners += listeners_off_loopback(fleet.pids())
                obs.listener_checks += 1
                obs.exit_codes = fleet.stop_all()
                proxy.enabled = False
                proxy.stop()
            obs.fleet = fleet
            obs.proxy_faults = proxy.fault_counts()
            obs.proxy_calls = sum(proxy.calls.values())
            obs.proxy_duplicate_successes = proxy.duplicate_successes()
            obs.duplicates_sent = dict(copies.sent)
            obs.delivered = dict(copies.delivered)
            obs.tokens = set(copies.tokens)
            obs.handler_errors = list(errors.lines)
            obs.collect(stack)
        obs.wall_s = time.monotonic() - started
        return obs

    def _through_proxy(self, stack: LocalStack, endpoint: str) -> None:
        """The in-process handlers' clients go through the proxy (the Lambda's own clients:
        botocore retries off; the dead-letter handler's: standard retries)."""
        assert stack.config and stack.event_source
        config = stack.config.model_copy(update={"endpoint_url": endpoint})
        clients = completion.build_lambda_clients(
            config,
            pool_size=completion.DEFAULT_WORKERS * stack.event_source_settings.maximum_concurrency,
        )
        stack.event_source.handler = completion.make_handler(
            completion.Completion(clients.sfn, clients.sqs, config.results_dlq_url)
        )
        dead = build_clients(config, pool_size=10, autoscaling=False)
        handler = DeadLetterHandler(dead.sfn, dead.sqs, archive_routes(config))
        for source in stack.dead_letter_sources:
            source.handler = handler.handle

    # -- the schedule ---------------------------------------------------------------------
    def _play(
        self, stack: LocalStack, proxy: FaultProxy, fleet: Fleet, copies: Copies, poison: list[Any]
    ) -> None:
        assert stack.clients and stack.config
        obs, plan = self.observed, self.plan
        events: list[Event] = list(self.schedule.events)
        heapq.heapify(events)
        t0 = time.monotonic()
        deadline = t0 + plan.duration_s + plan.task_timeout_s + 30
        last_progress = 0.0
        while time.monotonic() < deadline:
            now = time.monotonic() - t0
            while events and events[0].at_s <= now:
                follow_up = self._do(heapq.heappop(events), stack, proxy, fleet, poison)
                if follow_up is not None:
                    heapq.heappush(events, follow_up)
            for side, body in copies.due(time.monotonic()):
                url = (
                    stack.config.jobs_queue_url
                    if side == "jobs"
                    else stack.config.results_queue_url
                )
                stack.clients.sqs.send_message(QueueUrl=url, MessageBody=body)
                copies.sent["duplicate_job" if side == "jobs" else "duplicate_result"] += 1
            fleet.check()
            if time.monotonic() - last_progress > 1.0:
                last_progress = time.monotonic()
                done = obs.refresh(stack.clients.sfn)
                self.progress(done, plan.jobs)
                if not events and not copies.pending() and obs.all_started and obs.running == 0:
                    return
            time.sleep(0.05)
        log.warning("chaos: executions still running at the deadline")

    def _do(
        self, event: Event, stack: LocalStack, proxy: FaultProxy, fleet: Fleet, poison: list[Any]
    ) -> Event | None:
        """Carry out one event; returns a follow-up event (a restart) if there is one."""
        assert stack.clients and stack.config
        obs, sfn, config = self.observed, stack.clients.sfn, stack.config
        kind, at = event.kind, event.at_s
        if kind == "start_execution":
            name = f"chaos-{event.target:03d}-{uuid.uuid4().hex[:6]}"
            items = self.schedule.items[event.target]
            arn = sfn.start_execution(
                stateMachineArn=config.state_machine_arn,
                name=name,
                input=json.dumps({"jobs": items}),
            )["executionArn"]
            obs.executions.append(Execution(arn, name, items, started_at=time.time()))
            obs.all_started = len(obs.executions) == len(self.schedule.items)
        elif kind == "stop_execution":
            if event.target < len(obs.executions):
                execution = obs.executions[event.target]
                sfn.stop_execution(
                    executionArn=execution.arn, error="Chaos.Stopped", cause="stopped by chaos"
                )
                execution.stopped_at = time.time()
                obs.count_fault("execution_stopped")
        elif kind in ("kill", "term"):
            signum = signal.SIGKILL if kind == "kill" else signal.SIGTERM
            if kind == "term" and not fleet.ready(event.target):
                return Event(at + 0.5, kind, event.target, event.seconds)  # still starting
            if fleet.signal(event.target, signum):
                obs.count_fault("consumer_killed" if kind == "kill" else "consumer_sigterm")
                return Event(at + event.seconds, "restart", event.target)
        elif kind == "restart":
            if not fleet.restart(event.target):
                return Event(at + 0.5, "restart", event.target)
        elif kind == "stop":
            generation = fleet.stop(event.target)
            if generation is not None:
                obs.count_fault("consumer_sigstop", event.seconds)
                return Event(at + event.seconds, "cont", (event.target, generation))
            if at < self.plan.duration_s:  # down, draining or restarting: try again soon
                return Event(at + 1.0, kind, event.target, event.seconds)
        elif kind == "cont":
            index, generation = event.target
            fleet.cont(index, generation)
        elif kind == "results_missing":
            proxy.missing(event.seconds)
            obs.count_fault("results_queue_missing", event.seconds)
        elif kind == "announce_terminate":
            if config.metadata_endpoint:
                fleet.expect_exit(event.target)
                announce(config.metadata_endpoint, "terminate")
                obs.count_fault("termination_notice")
                return Event(at + self.plan.drain_timeout_s + 2, "restart", event.target)
        elif kind == "outage":
            proxy.outage(event.target, event.seconds)
            obs.count_fault(f"outage_{event.target}", event.seconds)
        elif kind == "poison" and event.target < len(poison):
            item = poison[event.target]
            url = config.jobs_queue_url if item.queue == "jobs" else config.results_queue_url
            refused = send_poison(stack.clients.sqs, url or "", item)
            obs.poison_sent[item.marker] = refused
        elif kind == "check_listeners":
            obs.listeners += listeners_off_loopback(fleet.pids())
            obs.listener_checks += 1
        elif kind == "foreign_result":
            self._foreign(stack)
        return None

    def _foreign(self, stack: LocalStack) -> None:
        """Results carrying tokens other state machines issued: one in another region (as
        another deployment or account would be: must change nothing), one in this region
        (reported: Step Functions' callbacks take no resource-level permission, so only the
        results queue's sender policy keeps such a result out)."""
        assert stack.config and stack.clients
        settings = stack.settings

        def definition(queue_url: str) -> str:
            return render_definition(settings.state_machine_params(queue_url))

        for key, region in (("foreign", FOREIGN_REGION), ("same_region", stack.config.region)):
            clients = build_clients(
                stack.config.model_copy(update={"region": region}), autoscaling=False
            )
            try:
                arn, token = foreign_token(clients, definition, LOCAL_ROLE_ARN, f"chaos-{key}")
            except Exception as exc:  # reported, not fatal: the check then did not run
                self.observed.foreign_checks[key] = {"checked": False, "error": str(exc)[:300]}
                continue
            stack.clients.sqs.send_message(
                QueueUrl=stack.config.results_queue_url,
                MessageBody=foreign_result(token, f"chaos-{key}/job"),
            )
            self.observed.foreign_checks[key] = {"checked": False, "arn": arn}
            self.observed.foreign_clients[key] = clients.sfn

    def _daemons(self) -> None:
        """Daemons that ``daemon`` jobs started and that are still alive now that every job
        has ended: recorded, then killed (the campaign cleans up after itself)."""
        names = [e.name for e in self.observed.executions]
        found = live_daemons(names) if names else []
        self.observed.daemons_alive = [(d.pid, d.job_id, d.ppid) for d in found]
        for daemon in found:
            try:
                os.kill(daemon.pid, signal.SIGKILL)
            except OSError:
                continue

    def _settle(self, stack: LocalStack, timeout_s: float = 30.0) -> None:
        """Until the queues and DLQs are empty (poison handled, dead letters archived)."""
        assert stack.clients and stack.config
        config, sqs = stack.config, stack.clients.sqs
        urls = [config.jobs_queue_url, config.results_queue_url, config.jobs_dlq_url,
                config.results_dlq_url]  # fmt: skip
        deadline, quiet = time.monotonic() + timeout_s, 0
        while time.monotonic() < deadline and quiet < 3:
            depth = sum(_depth(sqs, url) for url in urls if url)
            quiet = quiet + 1 if depth == 0 else 0
            time.sleep(0.5)


def _name(url: str | None) -> str:
    return (url or "").rstrip("/").rsplit("/", 1)[-1]


def _depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def run_campaign(
    plan: ChaosPlan, progress: Progress | None = None, work_dir: Path | None = None
) -> Observed:
    """Run ``plan``; the logs, journals and state stay in ``work_dir``."""
    work_dir = work_dir or Path(tempfile.mkdtemp(prefix="callback-bridge-chaos-"))
    return Campaign(plan, work_dir, progress or (lambda _d, _t: None)).run()
