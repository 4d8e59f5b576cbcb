"""Snapshots of the real data in a local lake (and an in-memory one)."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fmnist.config import DataSettings, ValidationSettings
from fmnist.data import snapshot as snap
from fmnist.data.snapshot import (
    Manifest,
    list_snapshots,
    load_snapshot,
    read_manifest,
    resolve_snapshot_id,
    snapshot_id,
    split_raw,
    stratified_split,
    write_snapshot,
)
from fmnist.data.sources import RawDataset
from fmnist.data.validation import ValidationReport
from fmnist.errors import DataFormatError, SnapshotNotFoundError, ValidationFailedError
from fmnist.platform.storage import FsspecStorage, Storage


@dataclass(frozen=True)
class Written:
    storage: Storage
    root: Path
    manifest: Manifest
    report: ValidationReport | None


def write(
    root: Path, raw: RawDataset, data: DataSettings | None = None, **validation: float
) -> Written:
    storage = FsspecStorage(str(root))
    manifest, report = write_snapshot(
        storage, raw, data or DataSettings(), ValidationSettings(**validation)
    )
    return Written(storage, root, manifest, report)


def files_with_mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def set_created_at(written: Written, sid: str, created_at: str) -> None:
    """Rewrite a manifest's timestamp (the manifest is not among the checksummed files)."""
    key = f"snapshots/{sid}/manifest.json"
    manifest = json.loads(written.storage.read_bytes(key))
    manifest["created_at"] = created_at
    written.storage.write_bytes(key, json.dumps(manifest).encode())


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory, raw_dataset: RawDataset) -> Written:
    """One parquet snapshot of the full real dataset, shared by the module."""
    return write(tmp_path_factory.mktemp("lake"), raw_dataset)


def test_full_snapshot_manifest(full: Written, raw_dataset: RawDataset) -> None:
    m = full.manifest
    assert full.report is not None and full.report.passed
    assert m.snapshot_id == snapshot_id(raw_dataset, DataSettings())
    assert len(m.snapshot_id) == 16
    assert m.counts == {"train": 54_000, "val": 6_000, "test": 10_000}
    assert m.format == "parquet"
    assert m.content_hash == raw_dataset.content_hash
    assert m.source_checksums == raw_dataset.checksums
    assert m.validation["passed"] is True
    assert m.validation["leaked_test_images"] == 0
    assert set(m.files) == {"train.parquet", "val.parquet", "test.parquet", "validation.json"}
    folder = full.root / "snapshots" / m.snapshot_id
    assert sorted(p.name for p in folder.iterdir()) == sorted([*m.files, "manifest.json"])
    for name, entry in m.files.items():
        assert (folder / name).stat().st_size == entry.bytes
    assert json.loads((folder / "validation.json").read_text())["passed"] is True


def test_second_write_is_a_no_op(full: Written, raw_dataset: RawDataset) -> None:
    before = files_with_mtimes(full.root)

    manifest, report = write_snapshot(
        full.storage, raw_dataset, DataSettings(), ValidationSettings()
    )

    assert report is None
    assert manifest == full.manifest
    assert files_with_mtimes(full.root) == before


def test_id_is_deterministic_and_depends_on_the_split_parameters(raw_dataset: RawDataset) -> None:
    base = snapshot_id(raw_dataset, DataSettings())
    assert snapshot_id(raw_dataset, DataSettings()) == base
    others = {
        snapshot_id(raw_dataset, DataSettings(split_seed=1)),
        snapshot_id(raw_dataset, DataSettings(val_fraction=0.2)),
        snapshot_id(raw_dataset, DataSettings(snapshot_format="npz")),
    }
    assert base not in others
    assert len(others) == 3


def test_parquet_round_trip_is_exact_and_stratified(full: Written, raw_dataset: RawDataset) -> None:
    loaded = load_snapshot(full.storage, full.manifest.snapshot_id)
    expected = split_raw(raw_dataset, DataSettings())

    assert loaded.snapshot_id == full.manifest.snapshot_id
    for split, (images, labels, index) in expected.items():
        got_images, got_labels = loaded.split(split)
        np.testing.assert_array_equal(got_images, images)
        np.testing.assert_array_equal(got_labels, labels)
        np.testing.assert_array_equal(loaded.source_index[split], index)
        assert got_images.dtype == np.uint8
        assert got_images.shape[1:] == (28, 28)
    np.testing.assert_array_equal(loaded.images["test"], raw_dataset.test_images)
    np.testing.assert_array_equal(
        np.sort(np.concatenate([loaded.source_index["train"], loaded.source_index["val"]])),
        np.arange(60_000),
    )
    full_counts = np.bincount(raw_dataset.train_labels, minlength=10)
    val_counts = np.bincount(loaded.labels["val"], minlength=10)
    assert val_counts.tolist() == [round(0.1 * c) for c in full_counts]


def test_stratified_split_is_reproducible(raw_dataset: RawDataset) -> None:
    labels = raw_dataset.train_labels[:5_000]
    train_a, val_a = stratified_split(labels, 0.1, seed=3)
    train_b, val_b = stratified_split(labels, 0.1, seed=3)
    _, val_c = stratified_split(labels, 0.1, seed=4)
    np.testing.assert_array_equal(val_a, val_b)
    np.testing.assert_array_equal(train_a, train_b)
    assert not np.array_equal(val_a, val_c)
    assert np.intersect1d(train_a, val_a).size == 0
    counts = np.bincount(labels, minlength=10)
    assert np.bincount(labels[val_a], minlength=10).tolist() == [round(0.1 * c) for c in counts]


def test_npz_round_trip_is_exact(tmp_path: Path, raw_subset: RawDataset) -> None:
    data = DataSettings(snapshot_format="npz", val_fraction=0.2, split_seed=9)
    written = write(tmp_path / "lake", raw_subset, data)

    assert set(written.manifest.files) == {"data.npz", "validation.json"}
    loaded = load_snapshot(written.storage)  # the newest (and only) one
    for split, (images, labels, index) in split_raw(raw_subset, data).items():
        np.testing.assert_array_equal(loaded.images[split], images)
        np.testing.assert_array_equal(loaded.labels[split], labels)
        np.testing.assert_array_equal(loaded.source_index[split], index)
    counts = np.bincount(raw_subset.train_labels, minlength=10)
    assert np.bincount(loaded.labels["val"], minlength=10).tolist() == [
        round(0.2 * c) for c in counts
    ]


def test_interrupted_write_is_invisible_and_completed_next_time(
    tmp_path: Path, raw_subset: RawDataset
) -> None:
    first = write(tmp_path / "lake", raw_subset)
    sid = first.manifest.snapshot_id
    folder = first.root / "snapshots" / sid
    (folder / "manifest.json").unlink()
    (folder / "val.parquet").write_bytes(b"half a file")  # the crash left garbage behind

    assert list_snapshots(first.storage) == []
    with pytest.raises(SnapshotNotFoundError, match="run 'fmnist data snapshot' first"):
        load_snapshot(first.storage)

    second = write(first.root, raw_subset)

    assert second.report is not None  # written again, not skipped
    assert second.manifest.snapshot_id == sid
    assert [m.snapshot_id for m in list_snapshots(second.storage)] == [sid]
    loaded = load_snapshot(second.storage, sid)
    assert len(loaded.labels["val"]) == second.manifest.counts["val"]


def test_tampered_file_is_detected(tmp_path: Path, raw_subset: RawDataset) -> None:
    written = write(tmp_path / "lake", raw_subset)
    sid = written.manifest.snapshot_id
    path = written.root / "snapshots" / sid / "train.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    with pytest.raises(DataFormatError) as info:
        load_snapshot(written.storage, sid)
    assert f"{written.root}/snapshots/{sid}/train.parquet: checksum mismatch" in str(info.value)


def test_validation_failure_writes_nothing(tmp_path: Path, raw_subset: RawDataset) -> None:
    root = tmp_path / "lake"
    with pytest.raises(ValidationFailedError) as info:
        write(root, raw_subset, blank_range=255, max_blank_fraction=0.0)

    assert "snapshot not written" in str(info.value)
    assert "train.blank_fraction=1 > 0" in str(info.value)
    assert info.value.exit_code == 1
    assert not (root / "snapshots").exists()
    assert list_snapshots(FsspecStorage(str(root))) == []


def test_resolve_snapshot_id(tmp_path: Path, raw_subset: RawDataset) -> None:
    root = tmp_path / "lake"
    old = write(root, raw_subset, DataSettings(split_seed=1))
    new = write(root, raw_subset, DataSettings(split_seed=2))
    old_id, new_id = old.manifest.snapshot_id, new.manifest.snapshot_id
    set_created_at(old, old_id, "2000-01-01T00:00:00+00:00")
    storage = new.storage

    assert [m.snapshot_id for m in list_snapshots(storage)] == [old_id, new_id]
    assert resolve_snapshot_id(storage, None) == new_id
    assert resolve_snapshot_id(storage, old_id) == old_id
    assert resolve_snapshot_id(storage, old_id[:6]) == old_id
    assert load_snapshot(storage).snapshot_id == new_id
    with pytest.raises(SnapshotNotFoundError, match="no snapshot match 'zzzz'"):
        resolve_snapshot_id(storage, "zzzz")
    with pytest.raises(SnapshotNotFoundError, match="2 snapshots match ''"):
        resolve_snapshot_id(storage, "")
    with pytest.raises(SnapshotNotFoundError, match="snapshot '0123456789abcdef' not found"):
        read_manifest(storage, "0123456789abcdef")


def test_image_column_must_be_fixed_size() -> None:
    table = pa.table(
        {
            "source_index": pa.array([0], pa.int32()),
            "label": pa.array([1], pa.uint8()),
            "image": pa.array([b"\x00" * 784], pa.binary()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    with pytest.raises(DataFormatError, match=r"x\.parquet: column 'image' is not fixed_size"):
        snap._from_parquet(sink.getvalue(), "x.parquet")


def test_snapshot_in_an_object_store(raw_subset: RawDataset) -> None:
    storage = FsspecStorage(f"memory://fmnist-tests-{uuid.uuid4().hex}/lake")
    data = DataSettings(snapshot_format="npz")
    manifest, report = write_snapshot(storage, raw_subset, data, ValidationSettings())

    assert report is not None
    assert storage.local_path("snapshots") is None
    assert storage.list_dirs("snapshots") == [manifest.snapshot_id]
    loaded = load_snapshot(storage, manifest.snapshot_id[:8])
    np.testing.assert_array_equal(loaded.images["test"], raw_subset.test_images)
    assert write_snapshot(storage, raw_subset, data, ValidationSettings())[1] is None
