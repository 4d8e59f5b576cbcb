"""Compaction of closed days into Parquet, reading across both stores, and retention."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.prediction_log import PredictionLog
from prediction_records import BASE, record, records

DAY0 = BASE.date()  # 2024-05-01; records(72) cover 05-01, 05-02 and 05-03


@pytest.fixture
def log(tmp_path: Path) -> PredictionLog:
    log = PredictionLog(tmp_path / "predictions.db", tmp_path / "segments")
    log.append(records(72))
    return log


def live_count(log: PredictionLog) -> int:
    return int(log.db.query("SELECT count(*) FROM predictions")[0][0])


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_compaction_moves_closed_days_and_reads_stay_the_same(log: PredictionLog) -> None:
    before = log.window()
    result = log.compact(DAY0 + timedelta(days=2))

    assert result.days == (DAY0, DAY0 + timedelta(days=1))
    assert (result.rows_written, result.rows_deleted) == (48, 48)
    assert files(log.segments.root) == [
        ".compaction.lock",
        "date=2024-05-01/part-0000.parquet",
        "date=2024-05-02/part-0000.parquet",
    ]
    for path, day in zip(result.segments, result.days, strict=True):
        table = pq.read_table(path)
        days = {t.date() for t in table.column("ts").to_pylist()}
        assert table.num_rows == 24 and days == {day}
    assert live_count(log) == 24
    assert log.window() == before
    assert log.count() == 72
    assert log.get("req-00003") == before[3]
    assert log.db.query("SELECT day, count(*) FROM segment_index GROUP BY day") == [
        ("2024-05-01", 24),
        ("2024-05-02", 24),
    ]
    assert log.get("req-99999") is None
    assert [r.request_id for r in log.window(3, until=BASE + timedelta(hours=30))] == [
        "req-00027",
        "req-00028",
        "req-00029",
    ]
    straddling = log.window(4, since=BASE + timedelta(hours=46))
    assert [r.request_id for r in straddling] == [
        "req-00068",
        "req-00069",
        "req-00070",
        "req-00071",
    ]
    assert [r.request_id for r in log.window(2, model_name="fmnist-classifier")][-1] == "req-00071"
    arrays = log.window_arrays(72)
    assert len(arrays) == 72 and int(arrays.pixels[5, 0, 0]) == 5


def test_nothing_to_compact_is_a_no_op(log: PredictionLog) -> None:
    result = log.compact(DAY0)
    assert (result.days, result.rows_written, result.rows_deleted) == ((), 0, 0)
    assert log.segments.days() == []


def test_a_day_is_split_into_segments_of_the_configured_size(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db", tmp_path / "s", segment_rows=10)
    log.append(records(24))
    result = log.compact(DAY0 + timedelta(days=1))
    assert [p.name for p in result.segments] == [
        "part-0000.parquet",
        "part-0001.parquet",
        "part-0002.parquet",
    ]
    assert [pq.read_metadata(p).num_rows for p in result.segments] == [10, 10, 4]
    assert log.window() == records(24)


def test_crash_between_segment_write_and_delete_leaves_no_duplicate(log: PredictionLog) -> None:
    """The state a crash leaves: day 0's segment is durable, its live rows not yet deleted."""
    expected = log.window()
    day_end = BASE + timedelta(days=1)
    log.segments.write_part(DAY0, log.window_table(until=day_end))
    assert live_count(log) == 72

    assert log.window() == expected
    assert log.get("req-00001") == expected[1]
    assert log.count() == 72
    assert len(log.window_arrays()) == 72
    assert [r.request_id for r in log.window(2, until=day_end)] == ["req-00022", "req-00023"]

    result = log.compact(DAY0 + timedelta(days=1))  # the rerun deletes without rewriting
    assert (result.rows_written, result.rows_deleted, result.segments) == (0, 24, ())
    assert files(log.segments.root)[1:] == ["date=2024-05-01/part-0000.parquet"]
    assert log.window() == expected


def test_rows_arriving_late_for_a_compacted_day_get_their_own_segment(log: PredictionLog) -> None:
    log.compact(DAY0 + timedelta(days=1))
    late = record(500, BASE + timedelta(hours=5, minutes=30))
    log.append([late])
    assert log.window(since=BASE + timedelta(hours=5), until=BASE + timedelta(hours=6))[1] == late
    result = log.compact(DAY0 + timedelta(days=1))
    assert [p.name for p in result.segments] == ["part-0001.parquet"]
    assert log.count() == 73
    assert log.get(late.request_id) == late


def test_retention_deletes_old_days_everywhere(log: PredictionLog) -> None:
    feedback = FeedbackStore(log)
    for rid in ("req-00001", "req-00030", "req-00060"):
        feedback.record(rid, 1)
    log.compact(DAY0 + timedelta(days=1))  # day 0 in Parquet, days 1 and 2 live

    result = log.apply_retention(1, today=DAY0 + timedelta(days=3))
    assert result.cutoff == DAY0 + timedelta(days=2)
    assert (result.partitions_deleted, result.rows_deleted, result.feedback_deleted) == (1, 24, 2)
    assert log.segments.days() == []
    remaining = log.window()
    assert [r.request_id for r in remaining] == [f"req-{i:05d}" for i in range(48, 72)]
    assert feedback.count() == 1
    assert log.db.query("SELECT count(*) FROM segment_index") == [(0,)]
    assert not [p for p in log.segments.root.iterdir() if p.name.startswith(".deleting")]
    with pytest.raises(MonitoringError, match="at least 1"):
        log.apply_retention(0)


def test_segments_are_plain_hive_partitioned_parquet(log: PredictionLog) -> None:
    """Analytics tools read the segments without our code (hive partitioning by date)."""
    import pyarrow.dataset as ds

    log.compact(date(2024, 5, 3))
    dataset = ds.dataset(log.segments.root, format="parquet", partitioning="hive")
    table = dataset.to_table(filter=pc.field("date") == "2024-05-02")
    assert table.num_rows == 24
    assert set(table.column("request_id").to_pylist()) == {f"req-{i:05d}" for i in range(24, 48)}


def test_windows_over_both_stores_equal_a_plain_filter(tmp_path: Path) -> None:
    """Every combination of last/since/until/model over live rows, segments and a duplicated
    (crash-state) day returns what filtering the original records in Python returns."""
    import random

    rng = random.Random(7)
    log = PredictionLog(tmp_path / "p.db", tmp_path / "s", segment_rows=7)
    written = [
        record(
            i,
            BASE + timedelta(minutes=rng.randrange(5 * 24 * 60)),
            model_name=rng.choice(["a", "b"]),
        )
        for i in range(200)
    ]
    log.append(written)
    log.compact(DAY0 + timedelta(days=3))
    late = record(900, BASE + timedelta(hours=30), model_name="a")  # live row on a compacted day
    log.append([late])
    written.append(late)
    day4 = BASE + timedelta(days=3)
    log.segments.write_part(
        DAY0 + timedelta(days=3), log.window_table(since=day4, until=day4 + timedelta(days=1))
    )
    ordered = sorted(written, key=lambda r: (r.timestamp, r.request_id))

    def expected(
        last: int | None, since: int | None, until: int | None, model: str | None
    ) -> list[str]:
        keep = [
            r.request_id
            for r in ordered
            if (since is None or r.timestamp >= (BASE + timedelta(hours=since)).isoformat())
            and (until is None or r.timestamp < (BASE + timedelta(hours=until)).isoformat())
            and (model is None or r.model_name == model)
        ]
        return keep[-last:] if last else keep

    for last in (None, 1, 5, 40, 150, 500):
        for since in (None, 20, 80):
            for until in (None, 50, 100):
                for model in (None, "a"):
                    got = log.window(
                        last,
                        since=None if since is None else BASE + timedelta(hours=since),
                        until=None if until is None else BASE + timedelta(hours=until),
                        model_name=model,
                    )
                    assert [r.request_id for r in got] == expected(last, since, until, model), (
                        last,
                        since,
                        until,
                        model,
                    )
    assert log.count() == len(written)
