"""The API's prediction journal and its mover: what is written reaches the log, once."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fmnist.monitoring import journal as journal_module
from fmnist.monitoring import log_schema as schema
from fmnist.monitoring.journal import (
    CLOSED_SUFFIX,
    MOVER_LOCK,
    PROBE_BYTES,
    JournalMover,
    JournalWriteError,
    PredictionJournal,
    journal_dir,
    replay_journals,
)
from fmnist.monitoring.journal_frames import encode_frame, frame_of_row, read_frames
from fmnist.monitoring.journal_mover import run as run_mover
from fmnist.monitoring.prediction_log import PredictionLog
from prediction_records import records


@pytest.fixture
def log(tmp_path: Path) -> PredictionLog:
    return PredictionLog(tmp_path / "predictions.db", tmp_path / "segments")


def journal_files(log: PredictionLog) -> list[str]:
    return sorted(p.name for p in journal_dir(log.path).glob("*.jnl"))


def dead_pid() -> int:
    """The pid of a process that has exited (reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


def test_a_frame_round_trips_every_value() -> None:
    rows = [schema.to_row(r) for r in records(3)]
    data = b"".join(frame_of_row(row) for row in rows)
    assert read_frames(data) == (rows, len(data), False)
    assert read_frames(data[:-5]) == (rows[:2], len(data) - len(frame_of_row(rows[2])), False)
    assert read_frames(b"not a frame") == ([], 0, True)


def test_the_api_frame_derives_the_timestamp_and_the_digest() -> None:
    pixels = bytes(range(256)) * 3 + bytes(16)
    frame = encode_frame(
        request_id="r1",
        ts_us=1_700_000_000_123_456,
        model_name="m",
        model_version=3,
        model_alias="champion",
        arm="",
        input_kind="upload",
        pixels=pixels,
        probabilities=[0.5, 0.5],
        predicted_class="Shirt",
        confidence=0.5,
        latency_ms=1.25,
        client_id="",
        photo_flags="{}",
        route="/v1/predict",
    )
    (row,), _, _ = read_frames(frame)
    values = dict(zip(schema.COLUMNS[1:], row, strict=True))
    assert values["timestamp"] == "2023-11-14T22:13:20.123456+00:00"
    assert values["input_digest"] == hashlib.sha256(pixels).hexdigest()[:32]
    assert values["pixels"] == pixels and values["model_version"] == 3


def test_a_value_holding_the_separator_is_refused() -> None:
    row = schema.to_row(records(1)[0])
    bad = (row[0] + "\x1f", *row[1:])
    with pytest.raises(ValueError, match="separator"):
        frame_of_row(bad)


def test_appended_records_reach_the_log_once_through_replay(log: PredictionLog) -> None:
    journal = PredictionJournal(log, start_mover=False)
    written = records(6)
    journal.append(written[:4])
    journal.append(written[4:])
    assert log.count() == 0  # in the journal only, until a mover or a reader moves it
    assert replay_journals(log) == 6
    assert replay_journals(log) == 0  # idempotent
    assert log.window() == written
    assert len(journal_files(log)) == 1  # still open: kept
    journal.close()
    assert journal_files(log)[0].endswith(CLOSED_SUFFIX)
    replay_journals(log)
    assert journal_files(log) == []  # closed and moved: removed
    assert log.count() == 6


def test_a_line_cut_short_by_a_crash_is_ignored(log: PredictionLog) -> None:
    folder = journal_dir(log.path)
    folder.mkdir(parents=True)
    first, second = (schema.to_row(r) for r in records(2))
    torn = frame_of_row(second)[:40]  # the process died inside the write: no answer was sent
    (folder / f"{dead_pid()}-1-deadbeef.jnl").write_bytes(frame_of_row(first) + torn)
    assert replay_journals(log) == 1
    assert [r.request_id for r in log.window()] == [first[0]]
    assert journal_files(log) == []  # its process is gone: the file is done


def test_two_journals_of_one_process_keep_their_files_until_closed(log: PredictionLog) -> None:
    one = PredictionJournal(log, start_mover=False)
    two = PredictionJournal(log, start_mover=False)
    written = records(4)
    one.append(written[:1])
    two.append(written[1:2])
    mover = JournalMover(log.db, journal_dir(log.path))
    assert mover.move() == 2
    one.append(written[2:3])  # still the same open file: nothing was removed under it
    two.append(written[3:])
    assert mover.move() == 2
    assert len(journal_files(log)) == 2
    one.close()
    two.close()
    assert mover.move() == 0
    assert journal_files(log) == []
    assert log.count() == 4


def test_a_full_file_rotates_and_the_old_one_is_removed_once_moved(log: PredictionLog) -> None:
    journal = PredictionJournal(log, start_mover=False, rotate_bytes=1)
    journal.append(records(1))
    journal.append(records(1, start=1))
    names = journal_files(log)
    assert len(names) == 2 and names[0].endswith(CLOSED_SUFFIX)
    assert replay_journals(log) == 2
    assert len(journal_files(log)) == 1
    journal.close()


def test_the_mover_moves_until_stopped_and_a_standby_waits(log: PredictionLog) -> None:
    journal = PredictionJournal(log, start_mover=False)
    journal.append(records(3))
    folder = journal_dir(log.path)
    holder = os.open(folder / MOVER_LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another mover is active
    stop = threading.Event()
    stop.set()
    assert run_mover(log.path, interval_s=0.01, stop=stop) == 0  # standby: moved nothing
    os.close(holder)
    result: list[int] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: result.append(run_mover(log.path, interval_s=0.01, stop=stop))
    )
    thread.start()
    journal.append(records(2, start=3))
    journal.close()
    stop.set()
    thread.join(timeout=10)
    assert result == [5]
    assert log.count() == 5
    assert journal_files(log) == []


def test_the_mover_exits_when_its_parent_is_gone(log: PredictionLog) -> None:
    PredictionJournal(log, start_mover=False).append(records(2))
    assert run_mover(log.path, interval_s=0.01, parent_pid=dead_pid()) == 2
    assert log.count() == 2


def test_the_journal_starts_a_mover_process_and_stops_it_on_close(log: PredictionLog) -> None:
    journal = PredictionJournal(log, move_interval_s=0.05)
    journal.append(records(3))
    mover = journal._mover
    assert mover is not None and mover.poll() is None
    deadline = time.monotonic() + 30
    while log.count() < 3 and time.monotonic() < deadline:  # the process moves on its own
        time.sleep(0.05)
    assert log.count() == 3
    journal.append(records(2, start=3))
    journal.close()
    assert mover.poll() is not None
    assert log.count() == 5  # moved by the mover's last pass
    assert journal_files(log) == []


class DiskFills:
    """``os`` for the journal module whose ``write`` stores at most ``room`` more bytes, then
    fails with ENOSPC (a short write first, as a file system running out of space does)."""

    def __init__(self, room: int) -> None:
        self.room = room

    def write(self, fd: int, data: memoryview) -> int:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done = os.write(fd, data[: self.room])
        self.room -= done
        return done

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)


def test_a_write_into_a_full_disk_leaves_no_torn_frame_in_front_of_later_ones(
    log: PredictionLog, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    journal = PredictionJournal(log, start_mover=False)
    written = records(5)
    journal.append(written[:1])
    disk = DiskFills(room=len(frame_of_row(schema.to_row(written[1]))) // 2)
    monkeypatch.setattr(journal_module, "os", disk)
    with pytest.raises(JournalWriteError, match="No space left on device") as failed:
        journal.append(written[1:2])  # half a frame reaches the file
    assert failed.value.errno == errno.ENOSPC
    names = journal_files(log)
    assert len(names) == 1 and names[0].endswith(CLOSED_SUFFIX)  # closed behind its torn tail
    with pytest.raises(JournalWriteError):
        journal.append(written[2:3])  # nothing reaches a new file: it stays open for later
    disk.room = 10**9  # space is back: the same journal writes again
    journal.append(written[3:])
    with caplog.at_level(logging.WARNING, logger="fmnist.monitoring.journal"):
        assert replay_journals(log) == 3
    assert "a partial frame of" in caplog.text
    assert [r.request_id for r in log.window()] == [written[i].request_id for i in (0, 3, 4)]
    assert len(journal_files(log)) == 1  # the torn closed file is done; the live one is kept
    journal.close()
    replay_journals(log)
    assert journal_files(log) == []


def test_the_probe_tells_whether_a_failing_journal_could_write_again(
    log: PredictionLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = PredictionJournal(log, start_mover=False)
    written = records(3)
    journal.append(written[:1])
    assert not journal.failing and journal.probe()
    disk = DiskFills(room=0)
    monkeypatch.setattr(journal_module, "os", disk)
    with pytest.raises(JournalWriteError):
        journal.append(written[1:2])
    assert journal.failing
    disk.room = PROBE_BYTES - 1  # a page does not fit: a short write is a failure
    assert not journal.probe() and journal.failing
    disk.room = 10**9  # space is back: the probe says so before any record is written
    assert journal.probe() and not journal.failing
    assert [p.name for p in journal.folder.iterdir() if p.name.startswith(".probe")] == []
    journal.append(written[2:])
    journal.close()
    replay_journals(log)
    assert [r.request_id for r in log.window()] == [written[0].request_id, written[2].request_id]
