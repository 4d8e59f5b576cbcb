"""The Beam snapshot ETL: duplicates, conflicting copies and test leakage are removed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmnist.config import DataSettings, ValidationSettings
from fmnist.data.beam_etl import ETL_VERSION, beam_snapshot, resolve
from fmnist.data.snapshot import load_snapshot
from fmnist.data.sources import RawDataset
from fmnist.platform.storage import FsspecStorage


def test_resolve_keeps_tests_drops_leaks_conflicts_and_extra_copies() -> None:
    def rows(*members: tuple[str, int, int]) -> list[object]:
        return list(resolve(("h", [(s, i, b"x", label) for s, i, label in members])))

    assert rows(("train", 5, 1), ("train", 2, 1)) == [
        ("kept", ("train", 2, b"x", 1)),
        ("removed", "duplicate"),
    ]
    assert rows(("train", 5, 1), ("train", 2, 3)) == [("removed", "conflicting_labels")] * 2
    leaked = rows(("train", 5, 1), ("test", 9, 1))
    assert leaked == [("kept", ("test", 9, b"x", 1)), ("removed", "train_leaked_into_test")]


def test_the_etl_writes_a_clean_snapshot_with_its_story(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (400, 28, 28), dtype=np.uint8)
    labels = np.arange(10, dtype=np.uint8).repeat(40)
    test = rng.integers(0, 256, (100, 28, 28), dtype=np.uint8)
    test_labels = np.arange(10, dtype=np.uint8).repeat(10)
    train[1] = train[0]  # a duplicate (same label: both class 0)
    train[41] = train[40]  # same label again: class 1
    train[10] = train[60]  # a conflicting copy (class 0 vs class 1)
    train[200] = test[50]  # leaked into test
    raw = RawDataset(train, labels, test, test_labels, "synthetic", {"a": "b"})
    storage = FsspecStorage(tmp_path.as_uri())
    result = beam_snapshot(storage, raw, DataSettings(), ValidationSettings())
    assert result.removed == {
        "duplicate": 2,
        "conflicting_labels": 2,
        "train_leaked_into_test": 1,
    }
    snapshot = load_snapshot(storage, result.manifest.snapshot_id)
    assert snapshot.manifest.counts["train"] + snapshot.manifest.counts["val"] == 400 - 5
    assert snapshot.manifest.counts["test"] == 100
    assert ETL_VERSION in snapshot.manifest.source
    assert snapshot.manifest.validation["leaked_test_images"] == 0
