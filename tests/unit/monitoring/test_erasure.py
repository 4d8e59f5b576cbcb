"""Erasure: purging a client's records everywhere they live, and clearing old inputs."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pyarrow.compute as pc
import pytest

from fmnist.monitoring.erasure import clear_images, purge_clients
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.journal import PredictionJournal, replay_journals
from fmnist.monitoring.prediction_log import PredictionLog
from fmnist.monitoring.records import PredictionRecord
from prediction_records import BASE, records

DAY0 = BASE.date()  # records(72) cover 2024-05-01 .. 05-03, one per hour
ALICE, BOB = "a" * 32, "b" * 32


def of_client(items: list[PredictionRecord], client: str) -> list[PredictionRecord]:
    return [dataclasses.replace(r, client_id=client) for r in items]


@pytest.fixture
def log(tmp_path: Path) -> PredictionLog:
    log = PredictionLog(tmp_path / "predictions.db", tmp_path / "segments")
    items = records(72)
    log.append(
        [
            dataclasses.replace(r, client_id=ALICE if i % 3 == 0 else BOB)
            for i, r in enumerate(items)
        ]
    )
    return log


def alice_ids(log: PredictionLog) -> list[str]:
    return sorted(r.request_id for r in log.window() if r.client_id == ALICE)


def test_purge_deletes_live_and_compacted_records_with_their_feedback(log: PredictionLog) -> None:
    feedback = FeedbackStore(log)
    for request_id in ("req-00000", "req-00003", "req-00060", "req-00001"):
        feedback.record(request_id, 1)
    log.compact(DAY0 + timedelta(days=2))  # days 1 and 2 into Parquet, day 3 stays live
    assert len(alice_ids(log)) == 24

    dry = purge_clients(log, [ALICE], dry_run=True)
    assert (dry.live_rows, dry.compacted_rows, dry.feedback_rows, dry.dry_run) == (8, 16, 3, True)
    assert len(alice_ids(log)) == 24  # nothing deleted

    done = purge_clients(log, [ALICE, "unknown-client"])
    assert (done.records, done.feedback_rows, done.segments_rewritten) == (24, 3, 2)
    assert alice_ids(log) == []
    assert log.count() == 48
    assert log.get("req-00003") is None and feedback.get("req-00003") is None
    assert feedback.get("req-00001") is not None  # another client's feedback stays
    assert log.segments.count(pc.field("client_id") == ALICE) == 0
    assert log.segments.count() == 32
    assert purge_clients(log, [ALICE]).records == 0  # running it again finds nothing


def test_a_purged_client_stays_purged_when_a_journal_is_replayed(log: PredictionLog) -> None:
    journal = PredictionJournal(log, start_mover=False)
    old = of_client(records(2, start=200), ALICE)
    other = of_client(records(1, start=210), BOB)
    journal.append([*old, *other])  # acknowledged, still in the journal when the purge runs
    purge_clients(log, [ALICE])
    journal.close()
    assert replay_journals(log) == 1
    assert all(log.get(r.request_id) is None for r in old)
    assert log.get(other[0].request_id) is not None
    later = dataclasses.replace(
        of_client(records(1, start=300), ALICE)[0],
        timestamp=(BASE + timedelta(days=3650)).isoformat(),
    )
    log.append([later])  # the client's predictions after the purge are logged as usual
    assert log.get(later.request_id) is not None


def test_clear_images_empties_old_inputs_and_keeps_the_predictions(log: PredictionLog) -> None:
    log.compact(DAY0 + timedelta(days=1))  # day 1 into Parquet
    cleared = clear_images(log, DAY0 + timedelta(days=2))  # days 1 and 2
    assert (cleared.live_rows, cleared.segments_rewritten) == (24, 1)
    arrays = log.window_arrays()
    assert len(arrays) == 72
    assert not arrays.pixels[:48].any() and arrays.pixels[48:].reshape(24, -1).any(axis=1).all()
    assert clear_images(log, DAY0 + timedelta(days=2)).segments_rewritten == 0  # marked done
    # a late compaction adds a part to day 1 with inputs: only that part is rewritten
    log.append(
        [
            dataclasses.replace(
                records(1, start=900)[0], timestamp=(BASE + timedelta(hours=5)).isoformat()
            )
        ]
    )
    log.compact(DAY0 + timedelta(days=1))
    again = clear_images(log, DAY0 + timedelta(days=2))
    assert again.segments_rewritten == 1
    assert not log.window_arrays(until=BASE + timedelta(days=2)).pixels.any()


def test_retention_clears_images_by_age(log: PredictionLog) -> None:
    today = DAY0 + timedelta(days=3)
    kept = log.apply_retention(3650, image_days=2, today=today)
    assert kept.images_cleared == 24  # 05-01 is more than 2 days before 05-04
    assert log.apply_retention(3650, image_days=0, today=today).images_cleared == 48
    assert not log.window_arrays().pixels.any()
    assert log.count() == 72
