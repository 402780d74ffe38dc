"""The consumers the bridge is compared with, as the common samples write them.

One loop per thread: receive **one** message, run the job, report, delete **one** message. No
batching, no visibility extension, no heartbeats, no stale check. Two ways to report:

* ``callback`` (the naive callback consumer): send one contract v1 result message to a results
  queue, so the bridge's own completion handler answers the task token;
* ``status`` (the polling pattern's worker): write the job's status object to S3
  (``status/<job id>``, metadata ``state``, ``job-id`` and the timing), which the polling state
  machine checks every interval.

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


def status_key(job_id: str) -> str:
    """Where the polling pattern's worker writes a job's status (and the machine looks)."""
    return f"status/{job_id}"


def _sent_at(message: dict[str, Any]) -> datetime | None:
    millis = message.get("Attributes", {}).get("SentTimestamp")
    return datetime.fromtimestamp(int(millis) / 1000, UTC) if millis else None


class NaiveConsumer:
    """``threads`` loops of receive 1 → run → report → delete 1."""

    def __init__(
        self, sqs: Any, s3: Any, jobs_url: str, mode: str, target: str, wait_s: int = 20
    ) -> None:
        """``target``: the results queue URL (``callback``) or the status bucket (``status``)."""
        if mode not in ("callback", "status"):
            raise ValueError(f"mode must be 'callback' or 'status', not {mode!r}")
        self.sqs, self.s3, self.jobs_url = sqs, s3, jobs_url
        self.mode, self.target, self.wait_s = mode, target, wait_s
        self.stop = threading.Event()
        self.identity = Worker(id=f"{socket.gethostname()}:{os.getpid()}")

    def loop(self) -> None:
        while not self.stop.is_set():
            messages = self.sqs.receive_message(
                QueueUrl=self.jobs_url,
                MaxNumberOfMessages=1,
                WaitTimeSeconds=self.wait_s,
                MessageSystemAttributeNames=["SentTimestamp"],
            ).get("Messages", [])
            for message in messages:
                try:
                    self.handle(message)
                except Exception as exc:  # a sample would crash; the benchmark must not hang
                    print(f"message {message['MessageId']}: {exc!r}", file=sys.stderr)

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
        try:
            output, error = work(job.input, job), None
        except Exception as exc:  # the job's failure is its result
            output, error = None, exc
        timing = Timing(
            enqueued_at=_sent_at(message), started_at=started, finished_at=datetime.now(UTC)
        )
        if self.mode == "callback":
            self.send_result(job, output, error, timing)
        else:
            self.put_status(job, error, timing)
        self.sqs.delete_message(QueueUrl=self.jobs_url, ReceiptHandle=message["ReceiptHandle"])

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
    parser.add_argument("--mode", choices=["callback", "status"], required=True)
    parser.add_argument("--target", required=True, help="results queue URL or status bucket")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wait-seconds", type=int, default=20)
    args = parser.parse_args(argv)
    config = BridgeConfig(
        region="us-east-1",
        endpoint_url=args.endpoint_url,
        access_key_id="testing",
        secret_access_key="testing",
    )
    clients = build_clients(config, pool_size=args.threads + 2, autoscaling=False, s3=True)
    consumer = NaiveConsumer(
        clients.sqs, clients.s3, args.jobs_queue_url, args.mode, args.target, args.wait_seconds
    )
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
