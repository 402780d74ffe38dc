"""Deletes of answered job messages, gathered over a window of seconds into DeleteMessageBatch.

Why a window of seconds, when results keep their quarter of a second
(:data:`consumers.results.LINGER_S`): jobs of minutes to hours finish at random times, so a
window short enough for a result's latency catches nothing and every job pays one
DeleteMessageBatch of its own. The delete has no one waiting for it: the result is already on
the results queue, the job's slot is already free (state ``deleting``, :mod:`consumers.jobs`)
and the keep-alive keeps the message hidden meanwhile, without heartbeats
(:meth:`consumers.keepalive.Keepalive.settle`). So deletes wait until :data:`SQS_MAX_BATCH`
are pending or :data:`DELETE_WINDOW_S` has passed since the oldest, then go in one request.

What the wait costs: each message stays in flight a few seconds longer (SQS allows 120,000 in
flight per standard queue; this adds completions per second times the window), and a worker
that dies inside the window leaves those messages to reappear after their visibility timeout;
they come back redelivered, so the stale check (:mod:`consumers.stale`) finds their task closed
and deletes them unrun. A message delivered again while its delete waits (its visibility lapsed)
is not run either: the worker still holds it, and :meth:`DeleteBatch.renew` takes its new
receipt handle, the only one SQS now honours for the delete.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bridge.batching import SQS_MAX_BATCH
from consumers.pending import Handles, Pending

#: The longest an answered job message waits for others to share its DeleteMessageBatch: a
#: worker that completes r jobs a second sends about one request per min(10, 1 + r x window)
#: jobs. Chosen by measurement, worker deletes per job (the mapping's left out):
#:
#: * ``bench --scenarios steady`` (3 workers at --concurrency 4, jobs of 10 minutes median: a
#:   completion every few minutes per worker): 1.0 with no window, 0.975 at 5 s, 0.9 at 30 s,
#:   0.875 at 60 s. Windows of seconds catch nothing at the rate of the jobs the bridge is for;
#: * ``bench --scenarios bridge --jobs 120 --job-ms 1000,15000`` (about one completion a second
#:   per worker): 0.775 with none, 0.14 at 5 s (by the formula, full batches from about 10 s).
#:
#: Waiting costs no latency (the result is out, the slot free) and little else: the messages
#: stay in flight that much longer (completions per second times the window, against SQS's
#: 120,000 per queue); a drain or a stop flushes what is pending at once. But a worker killed
#: without a drain leaves a window's answered messages to reappear, and then only the stale
#: check stands between them and a second run: when Step Functions does not answer it (an
#: outage, throttling) the job runs again after its result was delivered. The chaos campaign
#: found exactly that with a 30 s default (``callback-bridge chaos --quick --seed 7`` on
#: python3.12, two runs of two: "1 jobs run again after their result was delivered", "1 stale
#: jobs ran in full"; with 0 it passed). So the default is 0 (deleted with its result's batch)
#: and a window is opt-in, for a fleet that finishes jobs fast enough to fill batches and
#: accepts that risk. ``--delete-window`` sets it (0-60 s).
DELETE_WINDOW_S = 0.0


class DeleteBatch:
    """Job messages to delete, by message id, each with when it was answered. Thread-safe: the
    sender's thread adds and takes; the receiver's thread renews a handle."""

    def __init__(
        self, window_s: float = DELETE_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if window_s < 0:
            raise ValueError(f"the delete window must be 0 s or more, got {window_s}")
        self.window_s = window_s
        self.clock = clock
        #: message id -> (the result that answers it, receipt handle, when it was added).
        self._pending: dict[str, tuple[Pending, str, float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def add(self, handles: Handles) -> None:
        """Job messages whose results are sent: delete them with the next batch."""
        now = self.clock()
        with self._lock:
            for pending, message_id, handle in handles:
                self._pending.setdefault(message_id, (pending, handle, now))

    def renew(self, message_id: str, receipt_handle: str) -> bool:
        """The message was received again while its delete waits: delete it with this handle
        (SQS ignores a delete by an older one). False when no delete of it is pending."""
        with self._lock:
            entry = self._pending.get(message_id)
            if entry is None:
                return False
            self._pending[message_id] = (entry[0], receipt_handle, entry[2])
            return True

    def wait_s(self) -> float | None:
        """How long until a batch is due: 0 when one is, None when nothing is pending."""
        with self._lock:
            if not self._pending:
                return None
            if len(self._pending) >= SQS_MAX_BATCH:
                return 0.0
            oldest = min(since for _p, _h, since in self._pending.values())
        return max(0.0, oldest + self.window_s - self.clock())

    def take(self, everything: bool = False) -> Handles:
        """The deletes due now, oldest first, forgotten here: all of them once the oldest has
        waited the window (or with ``everything``: a stop), else whole batches of ten."""
        now = self.clock()
        with self._lock:
            entries = sorted(self._pending.items(), key=lambda item: item[1][2])
            if not entries:
                return []
            if not everything and entries[0][1][2] + self.window_s > now:
                entries = entries[: len(entries) - len(entries) % SQS_MAX_BATCH]
            for message_id, _entry in entries:
                del self._pending[message_id]
        return [(pending, message_id, handle) for message_id, (pending, handle, _) in entries]
