"""Task tokens of real length for the campaign's embedded Step Functions.

moto issues task tokens that are UUIDs (36 characters). AWS's are long base64 strings, up to
2,048 characters (``SendTaskSuccess``'s ``taskToken``: 1-2,048), and a leak that a short token
never shows (a log line cut after a few hundred characters, a length-limited field, a
redaction pattern that stops early) shows only with long ones. While a campaign runs,
:func:`real_length_tokens` makes the interpreter in this process issue tokens of that shape:
``AQ`` and random base64, 600 to 2,048 characters (a fifth of them exactly 2,048), ``=``
padded. Every other part of the stack is unchanged.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import threading
from collections.abc import Iterator
from typing import Any

from bridge.contract import MAX_TOKEN_CHARS

MIN_CHARS = 600


class TokenMint:
    """Makes tokens; lengths from a seeded RNG, bytes from the OS (a token is a secret)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.issued = 0

    def __call__(self) -> str:
        with self._lock:
            exact = self._rng.random() < 0.2
            size = MAX_TOKEN_CHARS if exact else self._rng.randint(MIN_CHARS, MAX_TOKEN_CHARS)
            self.issued += 1
        body = base64.b64encode(os.urandom(size)).decode()
        return ("AQ" + body)[: size - 2] + "=="


@contextlib.contextmanager
def real_length_tokens(seed: int) -> Iterator[TokenMint]:
    """Within the block, every task token the embedded Step Functions issues comes from a
    :class:`TokenMint` (moto's ``ContextObject.update_task_token``, the one place that makes
    them, retries included)."""
    from moto.stepfunctions.parser.asl.eval.states import ContextObject, TaskData

    mint = TokenMint(seed)
    original = ContextObject.__dict__["update_task_token"]

    def update_task_token(self: Any) -> str:
        token = mint()
        self.context_object_data["Task"] = TaskData(Token=token)
        return token

    ContextObject.update_task_token = update_task_token  # type: ignore[method-assign]
    try:
        yield mint
    finally:
        ContextObject.update_task_token = original  # type: ignore[method-assign]
