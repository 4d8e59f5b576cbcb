"""Snapshots: a validated, split dataset written once to the data lake with a manifest.

Layout under the lake root::

    snapshots/<id>/train.parquet, val.parquet, test.parquet   (or data.npz)
    snapshots/<id>/holdout.parquet                            (derived snapshots only)
    snapshots/<id>/validation.json
    snapshots/<id>/manifest.json                              (written last: the commit marker)

The id is a hash of the raw content, the split parameters, the format and the layout version, so
the same input always gives the same id and writing it again is a no-op. A folder without a
manifest is an interrupted write: it is invisible to readers and overwritten by the next write.

A derived snapshot (:func:`write_derived_snapshot`, used by retraining) adds rows to a base
snapshot's train split and may keep a ``holdout`` split that no training step reads; its
manifest's ``lineage`` says where every added row came from.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from fmnist import IMAGE_SIZE, NUM_CLASSES, __version__
from fmnist.config import DataSettings, ValidationSettings
from fmnist.data.sources import RawDataset
from fmnist.data.validation import Check, ValidationReport, content_ids, validate_splits
from fmnist.errors import DataFormatError, SnapshotNotFoundError, ValidationFailedError
from fmnist.identity import digest_bytes, digest_json
from fmnist.platform.storage import Storage

LAYOUT_VERSION = 1
SNAPSHOTS = "snapshots"
SPLITS = ("train", "val", "test")
HOLDOUT = "holdout"
"""The optional split of a derived snapshot that evaluation uses and training never reads."""
PIXELS = IMAGE_SIZE * IMAGE_SIZE

Images = npt.NDArray[np.uint8]
Labels = npt.NDArray[np.uint8]


class FileEntry(BaseModel):
    """A file of a snapshot with its checksum."""

    sha256: str
    bytes: int


class Manifest(BaseModel):
    """Everything needed to trust and reproduce a snapshot."""

    snapshot_id: str
    layout_version: int
    created_at: str
    code_version: str
    source: str
    content_hash: str
    source_checksums: dict[str, str]
    format: Literal["parquet", "npz"]
    split_seed: int
    val_fraction: float
    counts: dict[str, int]
    files: dict[str, FileEntry]
    validation: dict[str, Any]
    lineage: dict[str, Any] | None = None
    """For a derived snapshot: its base snapshot and the origin of the added rows."""


@dataclass(frozen=True)
class Snapshot:
    """A loaded snapshot: its manifest and arrays by split (plus original row indices)."""

    manifest: Manifest
    images: dict[str, Images]
    labels: dict[str, Labels]
    source_index: dict[str, npt.NDArray[np.int32]]

    @property
    def snapshot_id(self) -> str:
        """The snapshot's id."""
        return self.manifest.snapshot_id

    def split(self, name: str) -> tuple[Images, Labels]:
        """Images and labels of one split."""
        return self.images[name], self.labels[name]


def snapshot_id(raw: RawDataset, data: DataSettings) -> str:
    """The deterministic id of the snapshot that ``raw`` and ``data`` produce."""
    identity = {
        "content_hash": raw.content_hash,
        "format": data.snapshot_format,
        "layout_version": LAYOUT_VERSION,
        "split_seed": data.split_seed,
        "val_fraction": data.val_fraction,
    }
    return digest_json(identity, length=16)


def stratified_split(
    labels: Labels, val_fraction: float, seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Train and validation indices, stratified by class, reproducible for a seed."""
    rng = np.random.Generator(np.random.PCG64(seed))
    train_parts, val_parts = [], []
    for cls in range(NUM_CLASSES):
        members = np.flatnonzero(labels == cls)
        rng.shuffle(members)
        n_val = round(len(members) * val_fraction)
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(val_parts))


def split_raw(raw: RawDataset, data: DataSettings) -> dict[str, tuple[Images, Labels, np.ndarray]]:
    """Split the raw dataset into train/val/test with original row indices."""
    train_idx, val_idx = stratified_split(raw.train_labels, data.val_fraction, data.split_seed)
    return {
        "train": (raw.train_images[train_idx], raw.train_labels[train_idx], train_idx),
        "val": (raw.train_images[val_idx], raw.train_labels[val_idx], val_idx),
        "test": (raw.test_images, raw.test_labels, np.arange(len(raw.test_labels))),
    }


def _to_parquet(images: Images, labels: Labels, index: np.ndarray) -> bytes:
    flat = np.ascontiguousarray(images.reshape(len(images), PIXELS))
    image_col = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(PIXELS), len(flat), [None, pa.py_buffer(flat.tobytes())]
    )
    table = pa.table(
        {
            "source_index": pa.array(index.astype(np.int32)),
            "label": pa.array(labels.astype(np.uint8)),
            "image": image_col,
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _from_parquet(data: bytes, name: str) -> tuple[Images, Labels, npt.NDArray[np.int32]]:
    table = pq.read_table(io.BytesIO(data))
    if table.schema.field("image").type != pa.binary(PIXELS):
        raise DataFormatError(f"{name}: column 'image' is not fixed_size_binary[{PIXELS}]")
    images_col = table.column("image").combine_chunks()
    buffer = images_col.buffers()[1]
    start = images_col.offset * PIXELS
    images = np.frombuffer(buffer, dtype=np.uint8)[start : start + len(images_col) * PIXELS]
    return (
        images.reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
        table.column("label").to_numpy().astype(np.uint8),
        table.column("source_index").to_numpy().astype(np.int32),
    )


def _code_version() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}"


def validate_snapshot_splits(
    parts: dict[str, tuple[Images, Labels, np.ndarray]],
    settings: ValidationSettings,
    dataset: str,
) -> ValidationReport:
    """Validate train/val/test as a snapshot will hold them."""
    return validate_splits({k: (v[0], v[1]) for k, v in parts.items()}, settings, dataset)


def write_snapshot(
    storage: Storage,
    raw: RawDataset,
    data: DataSettings,
    validation: ValidationSettings,
) -> tuple[Manifest, ValidationReport | None]:
    """Split, validate and write ``raw`` as a snapshot; return its manifest.

    Idempotent: when the snapshot already exists its manifest is returned and nothing is
    written (the report is then None). Raises :class:`ValidationFailedError` without writing
    anything when validation fails.
    """
    sid = snapshot_id(raw, data)
    prefix = f"{SNAPSHOTS}/{sid}"
    if storage.exists(f"{prefix}/manifest.json"):
        return read_manifest(storage, sid), None

    parts = split_raw(raw, data)
    report = validate_snapshot_splits(parts, validation, raw.content_hash)
    if not report.passed:
        failed = ", ".join(f"{c.name}={c.value:.4g} > {c.threshold:.4g}" for c in report.failures)
        raise ValidationFailedError(f"validation failed, snapshot not written: {failed}")

    return _write_files(
        storage,
        sid,
        parts,
        report,
        fmt=data.snapshot_format,
        source=raw.source,
        content_hash=raw.content_hash,
        checksums=raw.checksums,
        split_seed=data.split_seed,
        val_fraction=data.val_fraction,
    ), report


def _write_files(
    storage: Storage,
    sid: str,
    parts: dict[str, tuple[Images, Labels, np.ndarray]],
    report: ValidationReport,
    *,
    fmt: Literal["parquet", "npz"],
    source: str,
    content_hash: str,
    checksums: dict[str, str],
    split_seed: int,
    val_fraction: float,
    lineage: dict[str, Any] | None = None,
) -> Manifest:
    """Write the splits, the validation report and, last, the manifest of snapshot ``sid``."""
    prefix = f"{SNAPSHOTS}/{sid}"
    blobs: dict[str, bytes] = {}
    if fmt == "parquet":
        for name, (images, labels, index) in parts.items():
            blobs[f"{name}.parquet"] = _to_parquet(images, labels, index)
    else:
        buffer = io.BytesIO()
        arrays: dict[str, np.ndarray] = {}
        for name, (images, labels, index) in parts.items():
            arrays |= {
                f"{name}_images": images,
                f"{name}_labels": labels,
                f"{name}_index": index.astype(np.int32),
            }
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        blobs["data.npz"] = buffer.getvalue()
    blobs["validation.json"] = report.model_dump_json(indent=2).encode()

    for name, blob in blobs.items():
        storage.write_bytes(f"{prefix}/{name}", blob)
    manifest = Manifest(
        snapshot_id=sid,
        layout_version=LAYOUT_VERSION,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        code_version=_code_version(),
        source=source,
        content_hash=content_hash,
        source_checksums=checksums,
        format=fmt,
        split_seed=split_seed,
        val_fraction=val_fraction,
        counts={name: len(part[1]) for name, part in parts.items()},
        files={n: FileEntry(sha256=digest_bytes(b), bytes=len(b)) for n, b in blobs.items()},
        validation={
            "passed": report.passed,
            "checks": len(report.checks),
            "failures": [c.name for c in report.failures],
            "leaked_test_images": sum(x.leaked_images for x in report.leakage),
            "duplicate_extra_copies": {
                k: v.duplicate_extra_copies for k, v in report.splits.items()
            },
        },
        lineage=lineage,
    )
    storage.write_bytes(f"{prefix}/manifest.json", manifest.model_dump_json(indent=2).encode())
    return manifest


def write_derived_snapshot(
    storage: Storage,
    base: Snapshot,
    added: tuple[Images, Labels],
    holdout: tuple[Images, Labels],
    validation: ValidationSettings,
    lineage: dict[str, Any],
    *,
    weight: int = 1,
) -> tuple[Manifest, ValidationReport]:
    """Write ``base`` with ``added`` rows in front of its train split (each ``weight`` times)
    and ``holdout`` as the split that evaluation uses and training never reads.

    Added rows come first so a preset that trains on the first N images (``train_subset``)
    still learns from them. Validation runs on the rows as distinct images (before the
    repetition): schema, duplicates, labels, leakage of val/test into train; a holdout image
    that is also in train is leakage too. Raises :class:`ValidationFailedError` without
    writing anything when a check fails. The id hashes the base id, the rows and the lineage,
    so writing the same derivation again is a no-op.
    """
    train_images, train_labels = base.split("train")
    added_index = np.full(len(added[1]), -1, dtype=np.int32)
    distinct = {
        "train": (
            np.concatenate([added[0], train_images]),
            np.concatenate([added[1], train_labels]),
            np.concatenate([added_index, base.source_index["train"]]),
        ),
        "val": (*base.split("val"), base.source_index["val"]),
        "test": (*base.split("test"), base.source_index["test"]),
    }
    content = {
        "added": digest_bytes(added[0].tobytes() + added[1].tobytes()),
        "holdout": digest_bytes(holdout[0].tobytes() + holdout[1].tobytes()),
        "weight": weight,
    }
    sid = digest_json({"base": base.snapshot_id, "content": content, "lineage": lineage}, length=16)
    report = validate_snapshot_splits(distinct, validation, f"{base.snapshot_id}+{sid}")
    ids = content_ids(np.concatenate([holdout[0], distinct["train"][0]]))  # ids are per call
    leaked = np.isin(ids[: len(holdout[0])], ids[len(holdout[0]) :])
    holdout_check = Check(
        name="holdout.leakage_fraction",
        value=float(leaked.mean()) if len(leaked) else 0.0,
        threshold=0.0,
        passed=not leaked.any(),
        detail=f"{int(leaked.sum())} holdout images also in train",
    )
    report = report.model_copy(
        update={
            "checks": [*report.checks, holdout_check],
            "passed": report.passed and holdout_check.passed,
        }
    )
    if storage.exists(f"{SNAPSHOTS}/{sid}/manifest.json"):
        return read_manifest(storage, sid), report
    if not report.passed:
        failed = ", ".join(f"{c.name}={c.value:.4g} > {c.threshold:.4g}" for c in report.failures)
        raise ValidationFailedError(f"validation failed, snapshot not written: {failed}")
    repeated = (np.repeat(added[0], weight, axis=0), np.repeat(added[1], weight))
    parts = {
        **distinct,
        "train": (
            np.concatenate([repeated[0], train_images]),
            np.concatenate([repeated[1], train_labels]),
            np.concatenate([np.full(len(repeated[1]), -1, np.int32), base.source_index["train"]]),
        ),
        HOLDOUT: (holdout[0], holdout[1], np.full(len(holdout[1]), -1, dtype=np.int32)),
    }
    manifest = base.manifest
    lineage = {
        "base_snapshot": base.snapshot_id,
        "added_rows": len(added[1]),
        "weight": weight,
        "holdout_rows": len(holdout[1]),
        **lineage,
    }
    return _write_files(
        storage,
        sid,
        parts,
        report,
        fmt=manifest.format,
        source=f"derived from snapshot {base.snapshot_id}",
        content_hash=digest_json(content, length=64),
        checksums=manifest.source_checksums,
        split_seed=manifest.split_seed,
        val_fraction=manifest.val_fraction,
        lineage=lineage,
    ), report


def read_manifest(storage: Storage, sid: str) -> Manifest:
    """The manifest of snapshot ``sid``; raises :class:`SnapshotNotFoundError` if absent."""
    key = f"{SNAPSHOTS}/{sid}/manifest.json"
    if not storage.exists(key):
        raise SnapshotNotFoundError(f"snapshot {sid!r} not found in {storage.url}/{SNAPSHOTS}")
    return Manifest.model_validate_json(storage.read_bytes(key))


def list_snapshots(storage: Storage) -> list[Manifest]:
    """All committed snapshots (those with a manifest), oldest first."""
    manifests = [
        read_manifest(storage, sid)
        for sid in storage.list_dirs(SNAPSHOTS)
        if storage.exists(f"{SNAPSHOTS}/{sid}/manifest.json")
    ]
    return sorted(manifests, key=lambda m: (m.created_at, m.snapshot_id))


def resolve_snapshot_id(storage: Storage, sid: str | None) -> str:
    """``sid`` itself, a unique prefix of one, or the newest snapshot when ``sid`` is None."""
    snapshots = list_snapshots(storage)
    if not snapshots:
        raise SnapshotNotFoundError(
            f"no snapshot in {storage.url}/{SNAPSHOTS}; run 'fmnist data snapshot' first"
        )
    if sid is None:
        return snapshots[-1].snapshot_id
    matches = [m.snapshot_id for m in snapshots if m.snapshot_id.startswith(sid)]
    if len(matches) != 1:
        found = "no snapshot" if not matches else f"{len(matches)} snapshots"
        raise SnapshotNotFoundError(f"{found} match {sid!r} in {storage.url}/{SNAPSHOTS}")
    return matches[0]


def load_snapshot(storage: Storage, sid: str | None = None) -> Snapshot:
    """Load and verify a snapshot (the newest when ``sid`` is None)."""
    manifest = read_manifest(storage, resolve_snapshot_id(storage, sid))
    prefix = f"{SNAPSHOTS}/{manifest.snapshot_id}"

    def blob(name: str) -> bytes:
        data = storage.read_bytes(f"{prefix}/{name}")
        expected = manifest.files[name].sha256
        if digest_bytes(data) != expected:
            raise DataFormatError(
                f"{storage.url}/{prefix}/{name}: checksum mismatch with the manifest "
                f"(expected {expected})"
            )
        return data

    images: dict[str, Images] = {}
    labels: dict[str, Labels] = {}
    index: dict[str, npt.NDArray[np.int32]] = {}
    splits = [*SPLITS, *([HOLDOUT] if HOLDOUT in manifest.counts else [])]
    if manifest.format == "parquet":
        for split in splits:
            images[split], labels[split], index[split] = _from_parquet(
                blob(f"{split}.parquet"), f"{prefix}/{split}.parquet"
            )
    else:
        with np.load(io.BytesIO(blob("data.npz"))) as npz:
            for split in splits:
                images[split] = npz[f"{split}_images"]
                labels[split] = npz[f"{split}_labels"]
                index[split] = npz[f"{split}_index"]
    return Snapshot(manifest, images, labels, index)
