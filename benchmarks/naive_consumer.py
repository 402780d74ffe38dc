"""The consumers the bridge is compared with, as the common samples write them.

One loop per thread: receive **one** message, run the job, report, delete **one** message. No
batching, no heartbeats, no stale check. Three ways to report:

* ``callback`` (the honest naive consumer, the ``naive`` scenario): call ``SendTaskSuccess`` /
  ``SendTaskFailure`` itself with the message's task token, then delete the message, as AWS's
  samples of ``.waitForTaskToken`` with SQS do. While a job runs, one ``ChangeMessageVisibility``
  per job every third of the visibility timeout (``--visibility-timeout``, 300 s as the samples'
  queues; the bench scales it with the job durations) keeps its message hidden;
* ``results-queue`` (the ``naive-results-queue`` scenario): send one contract v1 result message
  to a results queue, so the bridge's own completion handler answers the task token (no
  visibility extension: for short jobs only);
* ``status`` (the polling pattern's worker): write the job's status object to S3
  (``status/<job id>``, metadata ``state``, ``job-id`` and the timing), which the polling state
  machine checks every interval.

``--times-file`` appends one JSON line per finished job (job id, enqueued, started, finished,
acknowledged) for the harness's latency figures.

Run as a process by the benchmark (``python -m benchmarks.naive_consumer ...``); it stops on
SIGTERM. The job is the demo's (``consumers.demo_handler.work``), as in the bridge scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from bridge.aws import build_clients
from bridge.config import BridgeConfig
from bridge.contract import Job, Result, Timing, Worker, clip, encode
from consumers.demo_handler import work

#: The job message the polling machine sends has no token: stand-ins for the contract's fields.
POLLING_TOKEN = "none"
MODES = ("callback", "results-queue", "status")
#: The visibility timeout of the samples' queues, which the callback mode extends by a third.
SAMPLE_VISIBILITY_S = 300.0


def status_key(job_id: str) -> str:
    """Where the polling pattern's worker writes a job's status (and the machine looks)."""
    return f"status/{job_id}"


def _sent_at(message: dict[str, Any]) -> datetime | None:
    millis = message.get("Attributes", {}).get("SentTimestamp")
    return datetime.fromtimestamp(int(millis) / 1000, UTC) if millis else None


class NaiveConsumer:
    """``threads`` loops of receive 1 → run → report → delete 1."""

    def __init__(
        self,
        sqs: Any,
        s3: Any,
        jobs_url: str,
        mode: str,
        target: str,
        wait_s: int = 20,
        sfn: Any = None,
        visibility_s: float = SAMPLE_VISIBILITY_S,
        times_file: str | None = None,
        stats_file: str | None = None,
    ) -> None:
        """``target``: the results queue URL (``results-queue``), the status bucket
        (``status``), unused for ``callback`` (which needs ``sfn``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if mode == "callback" and sfn is None:
            raise ValueError("the callback mode calls Step Functions: give it an sfn client")
        if visibility_s <= 0:
            raise ValueError(f"visibility_s must be positive, got {visibility_s}")
        self.sqs, self.s3, self.sfn, self.jobs_url = sqs, s3, sfn, jobs_url
        self.mode, self.target, self.wait_s = mode, target, wait_s
        self.visibility_s = visibility_s
        self.stop = threading.Event()
        self.identity = Worker(id=f"{socket.gethostname()}:{os.getpid()}")
        self.times_file, self.stats_file = times_file, stats_file
        self._times_lock = threading.Lock()
        self._receives = [0, 0]

    def loop(self) -> None:
        while not self.stop.is_set():
            messages = self.sqs.receive_message(
                QueueUrl=self.jobs_url,
                MaxNumberOfMessages=1,
                WaitTimeSeconds=self.wait_s,
                MessageSystemAttributeNames=["SentTimestamp"],
            ).get("Messages", [])
            self._count_receive(empty=not messages)
            for message in messages:
                try:
                    self.handle(message)
                except Exception as exc:  # a sample would crash; the benchmark must not hang
                    print(f"message {message['MessageId']}: {exc!r}", file=sys.stderr)

    def _count_receive(self, empty: bool) -> None:
        """Receives and empty receives, kept in ``stats_file`` (the server cannot tell an
        idle long poll from one that brought a job)."""
        if not self.stats_file:
            return
        with self._times_lock:
            self._receives[0] += 1
            self._receives[1] += int(empty)
            tmp = f"{self.stats_file}.tmp"
            with open(tmp, "w") as f:
                json.dump({"receives": self._receives[0], "empty_receives": self._receives[1]}, f)
            os.replace(tmp, self.stats_file)

    def handle(self, message: dict[str, Any]) -> None:
        body = json.loads(message["Body"])
        if self.mode == "status":  # {"job_id", "input"}: no token, no contract
            body = {
                "version": 1,
                "token": POLLING_TOKEN,
                "execution_arn": "",
                "map_index": 0,
                "attempt": 0,
                "type": "demo",
                **body,
            }
        job = Job.model_validate(body)
        started = datetime.now(UTC)
        keep = self._keep_alive(message["ReceiptHandle"]) if self.mode == "callback" else None
        try:
            output, error = work(job.input, job), None
        except Exception as exc:  # the job's failure is its result
            output, error = None, exc
        finally:
            if keep is not None:
                keep.set()
        timing = Timing(
            enqueued_at=_sent_at(message), started_at=started, finished_at=datetime.now(UTC)
        )
        if self.mode == "callback":
            self.callback(job, output, error)
        elif self.mode == "results-queue":
            self.send_result(job, output, error, timing)
        else:
            self.put_status(job, error, timing)
        self.sqs.delete_message(QueueUrl=self.jobs_url, ReceiptHandle=message["ReceiptHandle"])
        self._record(job.job_id, timing)

    def _keep_alive(self, receipt_handle: str) -> threading.Event:
        """The samples' keep-alive: a timer per job that extends its message's visibility
        every third of the timeout, one ChangeMessageVisibility call each, until set."""
        done = threading.Event()

        def extend() -> None:
            while not done.wait(self.visibility_s / 3):
                try:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.jobs_url,
                        ReceiptHandle=receipt_handle,
                        VisibilityTimeout=max(1, round(self.visibility_s)),
                    )
                except Exception as exc:  # a sample logs and carries on
                    print(f"extend failed: {exc!r}", file=sys.stderr)

        threading.Thread(target=extend, name="naive-extend", daemon=True).start()
        return done

    def callback(self, job: Job, output: Any, error: Exception | None) -> None:
        """SendTaskSuccess with the output, or SendTaskFailure with the error's name."""
        if error is None:
            self.sfn.send_task_success(taskToken=job.token, output=json.dumps(output))
        else:
            self.sfn.send_task_failure(
                taskToken=job.token,
                error=type(error).__name__[:256],
                cause=clip(str(error), 32_768),
            )

    def _record(self, job_id: str, timing: Timing) -> None:
        if not self.times_file:
            return
        line = json.dumps(
            {
                "job_id": job_id,
                "enqueued_at": timing.enqueued_at.isoformat() if timing.enqueued_at else None,
                "started_at": timing.started_at.isoformat(),
                "finished_at": timing.finished_at.isoformat(),
                "acked_at": datetime.now(UTC).isoformat(),
                "pid": os.getpid(),
            }
        )
        with self._times_lock, open(self.times_file, "a") as f:
            f.write(line + "\n")

    def send_result(self, job: Job, output: Any, error: Exception | None, timing: Timing) -> None:
        result = Result(
            version=1,
            token=job.token,
            job_id=job.job_id,
            execution_arn=job.execution_arn or None,
            outcome="failed" if error else "succeeded",
            output=None if error else output,
            error=type(error).__name__ if error else None,
            cause=clip(str(error), 32_768) if error else None,
            worker=self.identity,
            timing=timing,
        )
        self.sqs.send_message(QueueUrl=self.target, MessageBody=encode(result))

    def put_status(self, job: Job, error: Exception | None, timing: Timing) -> None:
        metadata = {
            "state": "failed" if error else "done",
            "job-id": job.job_id,
            "started-at": timing.started_at.isoformat(),
            "finished-at": timing.finished_at.isoformat(),
        }
        if timing.enqueued_at:
            metadata["enqueued-at"] = timing.enqueued_at.isoformat()
        self.s3.put_object(
            Bucket=self.target, Key=status_key(job.job_id), Body=b"", Metadata=metadata
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint-url", required=True)
    parser.add_argument("--jobs-queue-url", required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--target", default="", help="results queue URL or status bucket")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wait-seconds", type=int, default=20)
    parser.add_argument(
        "--visibility-timeout", type=float, default=SAMPLE_VISIBILITY_S,
        help="Seconds each extension buys (callback mode; extended every third).",
    )  # fmt: skip
    parser.add_argument("--times-file", help="Append one JSON line per finished job.")
    parser.add_argument("--stats-file", help="Keep receive and empty-receive counts here.")
    args = parser.parse_args(argv)
    config = BridgeConfig(
        region="us-east-1",
        endpoint_url=args.endpoint_url,
        access_key_id="testing",
        secret_access_key="testing",
    )
    clients = build_clients(config, pool_size=2 * args.threads + 2, autoscaling=False, s3=True)
    consumer = NaiveConsumer(
        clients.sqs, clients.s3, args.jobs_queue_url, args.mode, args.target, args.wait_seconds,
        sfn=clients.sfn, visibility_s=args.visibility_timeout, times_file=args.times_file,
        stats_file=args.stats_file,
    )  # fmt: skip
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # samples just die; nothing in flight
    threads = [
        threading.Thread(target=consumer.loop, name=f"naive-{i}", daemon=True)
        for i in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
