"""The result spool: durable, atomic writes; whatever else is in its directory is reported and
skipped, never a crash."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from bridge.contract import encode
from consumers import spool as spool_module
from consumers.spool import (
    MAX_FILE_BYTES,
    REJECTED_DIR,
    SPOOL_DIR,
    Spool,
    Spooled,
    SpoolError,
    SpoolPlace,
    file_name,
    resolve_state_dir,
    scope,
)
from tests.support.messages import make_result

TOKEN = "AAAAtok" + "z" * 600 + "ENDTOK"


def entry(message_id: str = "3f9a1c52-0d4e-4b6a-9c1e-2b7d5f8e6a10", **fields: Any) -> Spooled:
    result = make_result(job_id=fields.pop("job_id", "run-1/RunJob/0/0"), token=TOKEN)
    values: dict[str, Any] = {
        "message_id": message_id,
        "job_id": result.job_id,
        "token": TOKEN,
        "body": encode(result),
        "spooled_at": 1_765_000_000.5,
    }
    values.update(fields)
    return Spooled(**values)


def test_the_state_dir_is_the_flag_then_systemds_then_the_home_default(tmp_path: Path) -> None:
    env = {"STATE_DIRECTORY": "/var/lib/callback-bridge:/var/lib/other", "HOME": "/home/u"}
    assert resolve_state_dir(str(tmp_path / "s"), env) == tmp_path / "s"
    assert resolve_state_dir(None, env) == Path("/var/lib/callback-bridge")
    assert resolve_state_dir(None, {"HOME": "/home/u"}) == Path(
        "/home/u/.local/state/callback-bridge"
    )
    assert resolve_state_dir("", {"STATE_DIRECTORY": "", "HOME": "/h"}) == Path(
        "/h/.local/state/callback-bridge"
    )


def test_a_result_round_trips_private_and_exact(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    written = entry()
    path = spool.put(written)
    assert path.name == written.message_id + ".json"
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [loaded] = Spool(tmp_path / "spool").load()
    assert loaded == written  # the body byte for byte, the token read back from it
    spool.remove(written.message_id)
    spool.remove(written.message_id)  # already gone: fine
    assert spool.load() == []


def test_a_loose_existing_directory_is_made_private(tmp_path: Path) -> None:
    (tmp_path / "spool").mkdir(mode=0o755)
    os.chmod(tmp_path / "spool", 0o755)
    Spool(tmp_path / "spool")
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700


def test_writes_are_fsynced_file_then_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    spool.put(entry())
    assert len(synced) == 2
    assert Path(synced[0]).parent == tmp_path and Path(synced[0]).name.startswith(".tmp-")
    assert synced[1] == str(tmp_path)  # the rename itself made durable
    synced.clear()
    spool.remove(entry().message_id)
    assert synced == [str(tmp_path)]


def test_a_failed_write_leaves_the_old_version_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path)
    spool.put(entry())

    def full(*_args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(SpoolError, match="No space left"):
        spool.put(entry(sent=True))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == [entry().message_id + ".json"]
    assert [e.sent for e in spool.load()] == [False]


def test_an_interrupted_write_is_cleaned_up_at_load(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(entry())
    (tmp_path / ".tmp-abc-1234").write_text('{"version": 1, "mess')
    assert len(spool.load()) == 1
    assert not (tmp_path / ".tmp-abc-1234").exists()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'{"version": 1, "message_id": "m-1", "spool', id="truncated"),
        pytest.param(b"\x00\xff garbage \x80", id="garbage"),
        pytest.param(b"[" * 200_000 + b"]" * 200_000, id="over-deep"),
        pytest.param(b'{"version": 1, "version": 1}', id="duplicate-keys"),
        pytest.param(b'["m-1"]', id="not-an-object"),
        pytest.param(
            b'{"version": 2, "message_id": "m-1", "spooled_at": 1, "sent": false, "body": "{}"}',
            id="unknown-version",
        ),
        pytest.param(
            b'{"version": 1, "message_id": "m-2", "spooled_at": 1, "sent": false, "body": "{}"}',
            id="message-id-not-its-name",
        ),
        pytest.param(
            b'{"version": 1, "message_id": "m-1", "spooled_at": 1, "sent": false, "body": "{}"}',
            id="body-not-a-result",
        ),
        pytest.param(
            b'{"version": 1, "message_id": "m-1", "spooled_at": 1, "sent": false, "body": "'
            + b"[" * 5000
            + b'"}',
            id="over-deep-body",
        ),
        pytest.param(
            b'{"version": 1, "message_id": "m-1", "spooled_at": NaN, "sent": false, "body": ""}',
            id="nan",
        ),
    ],
)
def test_an_unreadable_spool_file_is_moved_aside_with_a_log_line(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    spool.put(entry())
    (tmp_path / "m-1.json").write_bytes(content)
    with caplog.at_level(logging.ERROR, logger="consumers.spool"):
        loaded = spool.load()
    assert [e.message_id for e in loaded] == [entry().message_id]  # the good one still loads
    assert not (tmp_path / "m-1.json").exists()
    [moved] = (tmp_path / REJECTED_DIR).iterdir()
    assert moved.name.startswith("m-1.json.") and moved.read_bytes() == content
    assert any("m-1.json is unreadable" in r.getMessage() for r in caplog.records)
    assert spool.load() == loaded  # moved once, not again


def test_a_file_over_the_size_limit_is_not_read_but_moved_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    with open(tmp_path / "m-1.json", "wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)
    assert spool.load() == []
    assert len(list((tmp_path / REJECTED_DIR).iterdir())) == 1


def test_foreign_files_are_reported_and_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    spool.put(entry())
    (tmp_path / "README.txt").write_text("notes")
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "elsewhere.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").rename(tmp_path / "elsewhere.txt")
    with caplog.at_level(logging.WARNING, logger="consumers.spool"):
        assert len(spool.load()) == 1
    ignored = " ".join(r.getMessage() for r in caplog.records)
    for name in ("README.txt", "dir.json", "link.json"):
        assert name in ignored
        assert (tmp_path / name).exists() or (tmp_path / name).is_symlink()


def test_an_odd_message_id_gets_a_safe_file_name(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    odd = "../../etc/passwd\n"
    path = spool.put(entry(odd))
    assert path.parent == tmp_path and path.name.startswith("h-")
    assert file_name(odd) == path.name
    assert [e.message_id for e in spool.load()] == [odd]


def test_the_token_is_never_in_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path)
    with caplog.at_level(logging.DEBUG):
        spool.put(entry())
        (tmp_path / "m-1.json").write_text('{"body": "' + TOKEN + '"')
        spool.load()
        assert TOKEN not in entry().describe()
    assert caplog.records and all(TOKEN not in r.getMessage() for r in caplog.records)


def test_each_worker_claims_a_spool_of_its_own_and_a_successor_takes_it_over(
    tmp_path: Path,
) -> None:
    first = Spool.claim(tmp_path)
    second = Spool.claim(tmp_path)
    assert first.directory == tmp_path / SPOOL_DIR / "worker-0"
    assert second.directory == tmp_path / SPOOL_DIR / "worker-1"
    first.put(entry())
    first.close()  # the worker ended (its process exiting releases the lock the same way)
    successor = Spool.claim(tmp_path)
    assert successor.directory == first.directory
    assert [e.message_id for e in successor.load()] == [entry().message_id]
    second.close()  # empty: removed, so short-lived workers leave nothing behind
    assert not second.directory.exists()
    successor.close()  # holds a result: stays, lock file and all
    assert sorted(p.name for p in successor.directory.iterdir()) == [
        ".lock",
        entry().message_id + ".json",
    ]
    successor.remove(entry().message_id)
    assert Spool.claim(tmp_path).directory == first.directory


def test_each_pair_of_queues_has_a_spool_of_its_own(tmp_path: Path) -> None:
    jobs = "https://sqs.us-east-1.amazonaws.com/123456789012/app-jobs"
    results = "https://sqs.us-east-1.amazonaws.com/123456789012/app-results"
    mine = scope(jobs, results)
    assert mine.startswith("app-results-") and len(mine) == len("app-results-") + 12
    assert scope(jobs, results) == mine
    assert scope(jobs.replace("123456789012", "210987654321"), results) != mine
    assert scope("http://127.0.0.1:4566/000/j", "http://127.0.0.1:4566/000/../x y") != mine
    assert "/" not in scope("j", "http://h/q/../..") and ".." not in scope("j", "../..")
    first = Spool.claim(tmp_path, mine)
    other = Spool.claim(tmp_path, scope(jobs, results + "-2"))
    assert first.directory == tmp_path / SPOOL_DIR / mine / "worker-0"
    assert other.directory.name == "worker-0" and other.directory != first.directory
    first.close()
    other.close()
    assert not (tmp_path / SPOOL_DIR).exists()  # nothing held: nothing left behind


def test_a_state_dir_that_cannot_be_created_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SpoolError, match="file"):
        Spool.claim(tmp_path / "file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_state_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir(mode=0o500)
    with pytest.raises(SpoolError, match="ro"):
        Spool.claim(tmp_path / "ro")


def test_the_module_imports_nothing_of_the_worker() -> None:
    """The spool is a leaf: results and compose use it, it uses only the contract."""
    source = Path(spool_module.__file__).read_text()
    assert "from consumers" not in source


# --- the sender's side: retries with backoff, no queue needed ---------------------------------


class FlakySqs:
    """A results queue that refuses every send with ``code`` until ``back`` is set."""

    def __init__(self, code: str = "AWS.SimpleQueueService.NonExistentQueue") -> None:
        self.code, self.back = code, False
        self.sends: list[int] = []
        self.deleted: list[str] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        self.sends.append(len(Entries))
        if not self.back:
            raise ClientError(
                {"Error": {"Code": self.code}, "ResponseMetadata": {"HTTPStatusCode": 400}},
                "SendMessageBatch",
            )
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.deleted.extend(e["ReceiptHandle"] for e in Entries)
        return {}


def test_spooled_results_are_retried_with_capped_exponential_backoff(tmp_path: Path) -> None:
    from consumers.held_results import SPOOL_RETRY_MAX_S
    from consumers.results import Pending, ResultSender

    now = [1000.0]
    sqs = FlakySqs()
    done: dict[str, bool] = {}
    counts: dict[str, float] = {}
    sender = ResultSender(
        sqs,
        "results-url",
        "jobs-url",
        lambda message_id, delivered: done.__setitem__(message_id, delivered),
        spool=Spool(tmp_path),
        count=lambda name, n: counts.__setitem__(name, counts.get(name, 0) + n),
        clock=lambda: now[0],
    )
    sender.send([Pending(make_result(token=TOKEN), "m-1", "receipt-1")])
    assert sqs.sends == [1] and done == {} and sender.spooled == 1  # a permanent error: at once
    assert [p.name for p in tmp_path.glob("*.json")] == ["m-1.json"]
    pauses: list[float] = []
    for _ in range(9):
        before = len(sqs.sends)
        while len(sqs.sends) == before:
            now[0] += 0.5
            sender.service()
        pauses.append(now[0] - sum(pauses) - 1000.0)
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert pauses[-1] == SPOOL_RETRY_MAX_S
    sqs.back = True
    now[0] += 60
    sender.service()
    assert done == {"m-1": True} and sqs.deleted == ["receipt-1"]
    assert sender.spooled == 0 and list(tmp_path.glob("*.json")) == []
    assert counts == {"results_spooled": 1, "results_unspooled": 1}


def test_a_result_that_cannot_be_spooled_is_left_to_run_again(tmp_path: Path) -> None:
    from consumers.results import Pending, ResultSender

    spool = Spool(tmp_path)
    done: dict[str, bool] = {}
    os.chmod(tmp_path, 0o500)
    try:
        sender = ResultSender(
            FlakySqs(),
            "results-url",
            "jobs-url",
            lambda message_id, delivered: done.__setitem__(message_id, delivered),
            spool=spool,
        )
        if os.geteuid() == 0:  # root writes anyway: make the write itself fail
            spool.directory = tmp_path / "gone"
        sender.send([Pending(make_result(token=TOKEN), "m-1", "receipt-1")])
    finally:
        os.chmod(tmp_path, 0o700)
    assert done == {"m-1": False} and sender.spooled == 0


def test_a_result_refused_for_its_own_content_is_not_spooled(tmp_path: Path) -> None:
    from consumers.results import Pending, ResultSender

    done: dict[str, bool] = {}
    sender = ResultSender(
        FlakySqs("InvalidMessageContents"),
        "results-url",
        "jobs-url",
        lambda message_id, delivered: done.__setitem__(message_id, delivered),
        spool=Spool(tmp_path),
    )
    sender.send([Pending(make_result(token=TOKEN), "m-1", "receipt-1")])
    assert done == {"m-1": False} and sender.spooled == 0
    assert list(tmp_path.glob("*.json")) == []


def test_a_spool_place_is_checked_at_once_and_claimed_only_when_the_sender_starts(
    tmp_path: Path,
) -> None:
    from consumers.results import ResultSender

    place = SpoolPlace(tmp_path / "state", "q-abc")
    place.check()
    assert (tmp_path / "state" / SPOOL_DIR / "q-abc").is_dir()
    sender = ResultSender(FlakySqs(), "results-url", "jobs-url", lambda _m, _d: None, spool=place)
    assert (
        sender.spool is None
        and not (tmp_path / "state" / SPOOL_DIR / "q-abc" / "worker-0").exists()
    )
    sender.start()
    assert sender.spool is not None and sender.spool.directory.name == "worker-0"
    assert sender.status()["spool"] == str(sender.spool.directory)
    assert sender.stop(timeout_s=5)
    assert not (tmp_path / "state" / SPOOL_DIR).exists()  # nothing held: tidied at stop
    with pytest.raises(SpoolError):
        (tmp_path / "file").write_text("")
        SpoolPlace(tmp_path / "file").check()


def test_a_result_sent_before_its_job_message_came_back_is_remembered_then_forgotten(
    tmp_path: Path,
) -> None:
    from consumers.held_results import SENT_MARKER_TTL_S
    from consumers.results import ResultSender

    now, wall = [0.0], [1_765_000_000.0]
    spool = Spool(tmp_path)
    done: dict[str, bool] = {}
    spool.put(entry(spooled_at=wall[0] - 3600))  # spooled an hour before this start
    sqs = FlakySqs()
    sqs.back = True
    sender = ResultSender(
        sqs, "results-url", "jobs-url", lambda m, d: done.__setitem__(m, d), spool=spool,
        clock=lambda: now[0], wall_clock=lambda: wall[0],
    )  # fmt: skip
    assert sender.load_spool() == 1 and sender.outside_slots == 1
    sender.service()
    assert sqs.sends == [1] and sender.spooled == 0 and sender.outside_slots == 0
    [marker] = spool.load()
    assert marker.sent and marker.spooled_at == wall[0]  # its TTL counts from the send
    now[0] += 120
    wall[0] += SENT_MARKER_TTL_S - 60
    sender.service()
    assert len(spool.load()) == 1  # still within its time: a late job message is deleted
    now[0] += 120
    wall[0] += 120
    sender.service()
    assert spool.load() == [] and not sender.holding and done == {}
