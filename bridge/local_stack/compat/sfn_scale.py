"""Step Functions scale patches: speed, not behaviour. Each keeps what an execution does and
produces exactly as moto 5.2.5 does, and removes a cost that grows with the size of a fan-out.
On AWS the cost of one Map iteration does not depend on how many items the Map has ("Map
state", Step Functions developer guide); in moto 5.2.5 it did, which made a 5,000-item Map
unusable on the embedded stack (docs/local-stack.md, "Scale").
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
from typing import Any

from bridge.local_stack.compat.patch import Patch, Replacement, expect

logger = logging.getLogger(__name__)

#: Child executions a Distributed Map runs at once on the embedded stack. AWS runs up to 10,000
#: ("Map state in Distributed mode"); each one here costs three interpreter threads and ~100 KB,
#: so 10,000 at once would not fit the stack's memory budget (1.5 GB). Every item still runs,
#: exactly once; at most this many wait for their task token at the same time.
DISTRIBUTED_CHILDREN_AT_ONCE = 1000
#: Attribute a Map run's job pool counts its launched workers under.
_LAUNCHED = "_bridge_launched_workers"

#: Attribute a Map run's job pool carries its one shared copy of the Map's input under.
_SHARED_INPUT = "_bridge_shared_map_input"
_shared_input_lock = threading.Lock()


def _shared_map_input(job_pool: Any, map_state_input: Any) -> Any:
    """One deep copy of ``map_state_input`` per Map run (per job pool), made on first use.

    The copy keeps moto's isolation (iterations never see a later change to the state's
    input); sharing it is safe because the interpreter only reads ``$states.input`` through
    paths that copy what they extract."""
    with _shared_input_lock:
        cached = getattr(job_pool, _SHARED_INPUT, None)
        if cached is None or cached[0] is not map_state_input:
            cached = (map_state_input, copy.deepcopy(map_state_input))
            setattr(job_pool, _SHARED_INPUT, cached)
        return cached[1]


def shared_map_input() -> list[Replacement]:
    """Speed, not behaviour: on AWS an iteration's cost does not depend on how many items its
    Map has ("Map state", Step Functions developer guide). Before a Map iteration evaluates
    ``ItemSelector`` (or ``Parameters``), moto 5.2.5 resets the iteration's ``$states.input``
    to a *deep copy of the whole Map input*: N iterations copy N items each, O(N^2) in time
    and, with every iteration starting at once, in memory too (a 5,000-job DISTRIBUTED fan-out
    grew past 4.9 GB before 12 jobs were queued). The patch makes that copy once per Map run
    and lets the iterations share it; what the selector sees, and everything after it, is
    unchanged. moto also leaves the Map input on the iteration's evaluation stack, under the
    selector's output, where nothing reads it but every Task state deep-copies it again; the
    patch drops it."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (  # noqa: E501
        inline_item_processor_worker as module,
    )

    owner = module.InlineItemProcessorWorker
    expect(owner, "_eval_input")

    def _eval_input(self: Any, env_frame: Any) -> None:
        if not self._parameters and not self._item_selector:
            return
        map_state_input = self._env.stack[-1]
        data = env_frame.states._states_data  # what States.reset sets, minus the deep copy
        data["input"] = _shared_map_input(self._job_pool, map_state_input)
        data["result"] = None
        data["errorOutput"] = None
        base = len(env_frame.stack)
        env_frame.stack.append(map_state_input)
        if self._item_selector:
            self._item_selector.eval(env_frame)
        elif self._parameters:
            self._parameters.eval(env_frame)
        env_frame.states.reset(input_value=env_frame.stack[-1])
        # moto leaves the whole Map input under the selector's output for the rest of the
        # iteration, and every Task deep-copies its frame's stack: drop that dead entry.
        if len(env_frame.stack) > base + 1 and env_frame.stack[base] is map_state_input:
            del env_frame.stack[base]

    return [Replacement(owner, "_eval_input", _eval_input)]


def distributed_children_cap() -> list[Replacement]:
    """A bound, not a behaviour: a Distributed Map whose ``MaxConcurrency`` is 0 (or above
    :data:`DISTRIBUTED_CHILDREN_AT_ONCE`) runs at most that many child executions at once on the
    embedded stack, where AWS runs up to 10,000 ("Map state in Distributed mode", Step
    Functions developer guide). moto 5.2.5 starts one worker (three threads)
    per item up front, so a 5,000-item Map started 15,000 threads. Workers take the next item
    when one ends, so every item still runs exactly once and the Map's output, history and
    failure handling are unchanged; the stack logs a warning when the bound applies
    (docs/local-stack.md, "Scale")."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as module,
    )

    owner = module.DistributedIterationComponent
    inherited = expect(owner, "_launch_worker")

    def _launch_worker(self: Any, env: Any, eval_input: Any, job_pool: Any) -> Any:
        with _shared_input_lock:
            launched = getattr(job_pool, _LAUNCHED, 0)
            setattr(job_pool, _LAUNCHED, launched + 1)
        if launched < DISTRIBUTED_CHILDREN_AT_ONCE:
            return inherited(self, env, eval_input, job_pool)
        if launched == DISTRIBUTED_CHILDREN_AT_ONCE:  # the first worker held back
            logger.warning(
                "embedded stack: Distributed Map %s runs at most %d child executions at once "
                "(AWS: up to 10,000); every item still runs",
                eval_input.state_name,
                DISTRIBUTED_CHILDREN_AT_ONCE,
            )
        return None

    return [Replacement(owner, "_launch_worker", _launch_worker)]


#: Programs evaluated between two prunings of moto's thread list.
PRUNE_EVERY = 1000
_programs = [0]


def _prune(threads: list[Any]) -> None:
    """Drop finished threads from ``threads`` in place (every module holds this list)."""
    threads[:] = [thread for thread in threads if thread.is_alive()]


def forget_finished_threads() -> list[Replacement]:
    """Memory, not behaviour: an execution that ended holds nothing on AWS, so a long-running
    embedded stack must not grow with the jobs it has run ("Map state in Distributed mode", Step
    Functions developer guide: child executions come and go). moto 5.2.5 appends every thread
    its interpreter starts to a module-level list, ``TMP_THREADS``, and never removes one: three
    per job (~6 KB each), 64 MB for 10,000 jobs, kept for the life of the process. Nothing in
    moto reads the list; the patch removes finished threads from it every
    :data:`PRUNE_EVERY` programs."""
    from moto.stepfunctions.parser import utils
    from moto.stepfunctions.parser.asl.component.program import program as module

    owner = module.Program
    original = expect(owner, "eval")
    threads = expect(utils, "TMP_THREADS")

    def eval_program(self: Any, env: Any) -> None:
        original(self, env)
        with _shared_input_lock:
            _programs[0] += 1
            due = _programs[0] % PRUNE_EVERY == 0
        if due:
            _prune(threads)

    return [Replacement(owner, "eval", eval_program)]


def program_cache() -> list[Replacement]:
    """Speed, not behaviour: starting an execution does not re-read its state machine's
    definition on AWS ("StartExecution", Step Functions API reference: the definition was
    validated when the state machine was created). moto 5.2.5 parses the definition again for
    every execution with its ANTLR grammar, before the first state runs: for an execution of a
    few jobs, that parse is most of its time. The parsed program is
    a tree of components that keep nothing of a run (a Map already evaluates one tree for all
    its iterations at once): the patch parses each definition once, when the state machine is
    created or updated, and reuses the program. A definition that does not parse is refused
    by moto's own validation, with its message."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend as Backend

    expect(ExecutionWorker, "_get_evaluation_entrypoint")
    validate = expect(Backend, "_validate_definition")

    @functools.lru_cache(maxsize=64)
    def program(definition: str) -> Any:
        return AmazonStateLanguageParser.parse(definition)[0]

    def _validate_definition(definition: str) -> None:
        try:
            program(definition)
        except Exception:
            validate(definition)  # moto's InvalidDefinition, from its own parse
            raise

    def _get_evaluation_entrypoint(self: Any) -> Any:
        return program(self._evaluation_details.state_machine_details.definition)

    return [
        Replacement(Backend, "_validate_definition", staticmethod(_validate_definition)),
        Replacement(ExecutionWorker, "_get_evaluation_entrypoint", _get_evaluation_entrypoint),
    ]


PATCHES: list[Patch] = [
    Patch(
        "sfn-program-cache",
        "an execution reuses its state machine's parsed program",
        program_cache,
    ),
    Patch(
        "sfn-shared-map-input",
        "a Map iteration does not copy the whole Map input",
        shared_map_input,
    ),
    Patch(
        "sfn-distributed-children-cap",
        "a Distributed Map runs a bounded number of children at once",
        distributed_children_cap,
    ),
    Patch(
        "sfn-forget-finished-threads",
        "finished interpreter threads are not kept forever",
        forget_finished_threads,
    ),
]
