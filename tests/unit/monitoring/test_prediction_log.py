"""The prediction log's SQLite side: append, window/since/until/last, arrays, settings."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from fmnist import CLASS_NAMES
from fmnist.config import Settings
from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.prediction_log import PredictionLog, open_prediction_log
from fmnist.monitoring.records import PredictionRecord
from prediction_records import BASE, record, records


@pytest.fixture
def log(tmp_path: Path) -> PredictionLog:
    return PredictionLog(tmp_path / "predictions.db", tmp_path / "segments")


def ids(items: Sequence[PredictionRecord]) -> list[str]:
    return [r.request_id for r in items]


def test_append_round_trips_every_field(log: PredictionLog) -> None:
    written = records(5)
    assert log.append(written) == 5
    assert log.window() == written
    assert log.get("req-00003") == written[3]
    assert log.get("no-such-id") is None
    assert log.count() == 5


def test_append_of_nothing_writes_nothing(log: PredictionLog) -> None:
    assert log.append([]) == 0
    assert log.count() == 0
    assert log.window() == []


def test_a_repeated_request_id_keeps_the_first_record(log: PredictionLog) -> None:
    first = record(1, BASE)
    retry = record(2, BASE + timedelta(seconds=1), request_id=first.request_id)
    assert log.append([first]) == 1
    assert log.append([retry]) == 0
    assert log.append([retry, record(3, BASE)]) == 1
    assert log.get(first.request_id) == first
    assert log.count() == 2


def test_window_selects_by_time_last_and_model(log: PredictionLog) -> None:
    log.append(records(48))  # one per hour from BASE
    other = [
        record(100 + i, BASE + timedelta(minutes=30 + 60 * i), model_name="other") for i in range(3)
    ]
    log.append(other)

    assert ids(log.window(3, model_name="fmnist-classifier")) == [
        "req-00045",
        "req-00046",
        "req-00047",
    ]
    since = log.window(since=BASE + timedelta(hours=40))
    assert ids(since) == [f"req-{i:05d}" for i in range(40, 48)]
    until = log.window(until=BASE + timedelta(hours=2))  # exclusive
    assert ids(until) == ["req-00000", "req-00100", "req-00001", "req-00101"]
    both = log.window(2, since=BASE + timedelta(hours=10), until=BASE + timedelta(hours=20))
    assert ids(both) == ["req-00018", "req-00019"]
    assert ids(log.window(model_name="other")) == ids(other)
    naive = log.window(since=(BASE + timedelta(hours=47)).replace(tzinfo=None))
    assert ids(naive) == ["req-00047"]
    assert len(log.window(1000)) == 51


def test_window_orders_by_timestamp_not_arrival(log: PredictionLog) -> None:
    late, early = record(1, BASE + timedelta(hours=2)), record(2, BASE + timedelta(hours=1))
    log.append([late])
    log.append([early])
    assert ids(log.window()) == ["req-00002", "req-00001"]
    assert ids(log.window(1)) == ["req-00001"]


def test_window_arrays_match_the_records(log: PredictionLog) -> None:
    written = [*records(11), record(11, BASE + timedelta(hours=11), predicted=-1)]
    log.append(written)
    arrays = log.window_arrays(10)

    assert len(arrays) == 10
    assert arrays.pixels.shape == (10, 28, 28) and arrays.pixels.dtype == np.uint8
    assert [int(arrays.pixels[k, 5, 7]) for k in range(10)] == list(range(2, 12))
    assert arrays.probabilities.shape == (10, 10) and arrays.probabilities.dtype == np.float32
    np.testing.assert_allclose(arrays.probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert arrays.predicted.tolist() == [2, 3, 4, 5, 6, 7, 8, 9, 0, -1]
    assert CLASS_NAMES[int(arrays.probabilities[0].argmax())] == written[2].predicted_class
    assert arrays.timestamps[0] == np.datetime64("2024-05-01T02:00:00", "us")
    assert arrays.input_kinds.tolist()[:2] == ["upload", "json"]
    assert arrays.request_ids.tolist()[-1] == "req-00011"
    assert arrays.model_versions.tolist() == [1] * 10


def test_window_arrays_of_an_empty_window(log: PredictionLog) -> None:
    arrays = log.window_arrays(100)
    assert len(arrays) == 0
    assert arrays.pixels.shape == (0, 28, 28)
    assert arrays.probabilities.shape == (0, 10)


def test_bad_arguments_raise_one_line_errors(log: PredictionLog) -> None:
    with pytest.raises(MonitoringError, match="last must be at least 1"):
        log.window(0)
    bad = record(1, BASE)
    object.__setattr__(bad, "timestamp", "yesterday")
    with pytest.raises(MonitoringError, match="'yesterday' is not ISO 8601"):
        log.append([bad])
    with pytest.raises(MonitoringError, match="fsync must be"):
        PredictionLog(log.path, log.segments.root, fsync="sometimes")  # type: ignore[arg-type]


def test_threads_append_concurrently(tmp_path: Path) -> None:
    """Threads share one log object, and a second object on the same file (as a second
    process would) writes through its own connection."""
    first = PredictionLog(tmp_path / "p.db", tmp_path / "s")
    second = PredictionLog(tmp_path / "p.db", tmp_path / "s")

    def work(target: PredictionLog, t: int) -> None:
        for i in range(50):
            target.append([record(t * 1000 + i, BASE + timedelta(seconds=i))])

    threads = [
        threading.Thread(target=work, args=(first if t % 2 else second, t)) for t in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert first.count() == 400
    assert len({r.request_id for r in second.window()}) == 400


@pytest.mark.parametrize(("policy", "level"), [("off", 0), ("normal", 1), ("full", 2)])
def test_fsync_policy_sets_sqlite_synchronous(tmp_path: Path, policy: str, level: int) -> None:
    log = PredictionLog(tmp_path / "p.db", tmp_path / "s", fsync=policy)  # type: ignore[arg-type]
    log.append([record(1, BASE)])
    assert log.db.query("PRAGMA journal_mode") == [("wal",)]
    assert log.db.query("PRAGMA synchronous") == [(level,)]


def test_open_prediction_log_follows_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    home = settings.home  # FMNIST_HOME of the isolated test
    with pytest.raises(MonitoringError, match="no prediction log at"):
        open_prediction_log(settings, create=False)
    log = open_prediction_log(settings)
    assert log.path == home / "monitoring" / "predictions.db"
    assert log.segments.root == home / "lake" / "monitoring" / "predictions"
    assert log.fsync == "normal"
    assert open_prediction_log(settings, create=False).path == log.path

    monkeypatch.setenv("FMNIST_LAKE_URL", "s3://bucket/lake")
    assert open_prediction_log(Settings()).segments.root == home / "monitoring" / "predictions"
    monkeypatch.setenv("FMNIST_MONITORING__LOG_PATH", str(home / "x.db"))
    monkeypatch.setenv("FMNIST_MONITORING__FSYNC", "full")
    opened = open_prediction_log(Settings())
    assert (opened.path, opened.fsync) == (home / "x.db", "full")


def test_window_table_reads_only_the_columns_asked_for(log: PredictionLog) -> None:
    log.append(records(4))
    table = log.window_table(2, columns=["confidence"])
    assert table.column_names == ["seq", "request_id", "ts", "confidence"]
    assert table.column("request_id").to_pylist() == ["req-00002", "req-00003"]
    with pytest.raises(MonitoringError, match="no such log columns: bogus"):
        log.window_table(columns=["bogus"])
