"""The window's labelled feedback as rows, and the derived snapshot that holds them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from fmnist.config import DataSettings, Settings, ValidationSettings
from fmnist.data.snapshot import HOLDOUT, load_snapshot, write_derived_snapshot, write_snapshot
from fmnist.data.sources import RawDataset
from fmnist.errors import ValidationFailedError
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.prediction_log import open_prediction_log
from fmnist.platform.storage import FsspecStorage
from fmnist.retraining.window_data import window_data
from fmnist.rollout.assignment import SHADOW_SUFFIX
from prediction_records import BASE, record


def noise(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def test_labelled_rows_exclude_unknown_shadow_and_duplicates(tmp_path: Path) -> None:
    log = open_prediction_log(Settings(home=tmp_path))
    images = noise(60, 1)
    images[1] = images[0]  # the same image sent twice
    rows = []
    for i in range(60):
        rec = record(i, BASE)
        rows.append(dataclasses.replace(rec, pixels=images[i].tobytes()))
    rows.append(dataclasses.replace(record(0, BASE), request_id="req-00000" + SHADOW_SUFFIX))
    log.append(rows)
    store = FeedbackStore(log)
    for i in range(50):  # 10 unlabelled
        if i == 7:
            store.record(f"req-{i:05d}", None, unknown=True)
        else:
            store.record(f"req-{i:05d}", i % 10)
    data = window_data(log, store, since=None, until=None, holdout_fraction=0.3)
    counts = data.lineage["log_window"]
    assert counts["predictions"] == 60 and counts["unlabelled"] == 10
    assert counts["unknown_excluded"] == 1 and counts["duplicates_dropped"] == 1
    assert data.labelled == 48 == counts["labelled"]
    assert 5 <= len(data.holdout[1]) <= 25  # about 30%, decided by the request id
    again = window_data(log, store, since=None, until=None, holdout_fraction=0.3)
    assert np.array_equal(again.holdout[0], data.holdout[0])  # reproducible
    log.close()


def base_snapshot(tmp_path: Path) -> tuple[FsspecStorage, str]:
    labels = np.arange(10, dtype=np.uint8).repeat(30)
    raw = RawDataset(noise(300, 2), labels, noise(100, 3), labels[::3].copy(), "synthetic", {})
    storage = FsspecStorage(tmp_path.as_uri())
    manifest, _ = write_snapshot(storage, raw, DataSettings(), ValidationSettings())
    return storage, manifest.snapshot_id


def test_a_derived_snapshot_puts_the_feedback_first_and_keeps_the_holdout(tmp_path: Path) -> None:
    storage, base_id = base_snapshot(tmp_path)
    base = load_snapshot(storage, base_id)
    added = (noise(20, 4), np.arange(20, dtype=np.uint8) % 10)
    holdout = (noise(8, 5), np.arange(8, dtype=np.uint8) % 10)
    manifest, report = write_derived_snapshot(
        storage, base, added, holdout, ValidationSettings(), {"trigger": "manual"}, weight=3
    )
    assert report.passed
    assert manifest.lineage == {
        "base_snapshot": base_id,
        "added_rows": 20,
        "weight": 3,
        "holdout_rows": 8,
        "trigger": "manual",
    }
    derived = load_snapshot(storage, manifest.snapshot_id)
    train_images, train_labels = derived.split("train")
    assert np.array_equal(train_images[:3], np.repeat(added[0][:1], 3, axis=0))
    assert len(train_labels) == 60 + len(base.split("train")[1])
    assert np.array_equal(derived.split(HOLDOUT)[0], holdout[0])
    assert np.array_equal(derived.split("test")[0], base.split("test")[0])
    same, _ = write_derived_snapshot(
        storage, base, added, holdout, ValidationSettings(), {"trigger": "manual"}, weight=3
    )
    assert same.snapshot_id == manifest.snapshot_id  # idempotent


def test_feedback_that_leaks_the_test_split_or_the_holdout_is_refused(tmp_path: Path) -> None:
    storage, base_id = base_snapshot(tmp_path)
    base = load_snapshot(storage, base_id)
    test_images, test_labels = base.split("test")
    leaking = (test_images[:30], test_labels[:30])
    holdout = (noise(8, 5), np.arange(8, dtype=np.uint8) % 10)
    with pytest.raises(ValidationFailedError, match="leak"):
        write_derived_snapshot(storage, base, leaking, holdout, ValidationSettings(), {})
    added = (noise(20, 4), np.arange(20, dtype=np.uint8) % 10)
    overlap = (added[0][:4], added[1][:4])
    with pytest.raises(ValidationFailedError, match=r"holdout\.leakage_fraction"):
        write_derived_snapshot(storage, base, added, overlap, ValidationSettings(), {})
