"""Command jobs the end-to-end tests run through ``--command`` (one script, modes by input)."""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPT = r"""
import json, os, subprocess, sys, time
data = json.load(sys.stdin)
marks = data["marks"]
job = os.environ["BRIDGE_JOB_ID"].replace("/", "_")
with open(os.path.join(marks, "runs.log"), "a") as log:
    log.write(job + "\n")
mode = data.get("mode", "quick")
if mode == "quick":
    time.sleep(float(data.get("sleep_s", 0)))
    print(json.dumps({"job": job}))
elif mode == "hang":
    # A grandchild that would leave a mark if it outlived its job.
    subprocess.Popen(["sh", "-c", "sleep 2; touch " + os.path.join(marks, job + ".grandchild")])
    open(os.path.join(marks, job + ".started"), "w").close()
    time.sleep(60)
elif mode == "binary":
    sys.stdout.buffer.write(b"\xff\xfe not utf-8")
"""


def job_script(directory: Path) -> str:
    """Write the script; returns the --command that runs it."""
    path = directory / "job_script.py"
    path.write_text(SCRIPT)
    return f"{sys.executable} {path}"


def runs(marks: Path) -> list[str]:
    log = marks / "runs.log"
    return log.read_text().split() if log.exists() else []
