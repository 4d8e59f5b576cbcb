"""Snapshots: a validated, split dataset written once to the data lake with a manifest.

Layout under the lake root::

    snapshots/<id>/train.parquet, val.parquet, test.parquet   (or data.npz)
    snapshots/<id>/validation.json
    snapshots/<id>/manifest.json                              (written last: the commit marker)

The id is a hash of the raw content, the split parameters, the format and the layout version, so
the same input always gives the same id and writing it again is a no-op. A folder without a
manifest is an interrupted write: it is invisible to readers and overwritten by the next write.
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
from fmnist.data.validation import ValidationReport, validate_splits
from fmnist.errors import DataFormatError, SnapshotNotFoundError, ValidationFailedError
from fmnist.identity import digest_bytes, digest_json
from fmnist.platform.storage import Storage

LAYOUT_VERSION = 1
SNAPSHOTS = "snapshots"
SPLITS = ("train", "val", "test")
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

    blobs: dict[str, bytes] = {}
    if data.snapshot_format == "parquet":
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
        source=raw.source,
        content_hash=raw.content_hash,
        source_checksums=raw.checksums,
        format=data.snapshot_format,
        split_seed=data.split_seed,
        val_fraction=data.val_fraction,
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
    )
    storage.write_bytes(f"{prefix}/manifest.json", manifest.model_dump_json(indent=2).encode())
    return manifest, report


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
    if manifest.format == "parquet":
        for split in SPLITS:
            images[split], labels[split], index[split] = _from_parquet(
                blob(f"{split}.parquet"), f"{prefix}/{split}.parquet"
            )
    else:
        with np.load(io.BytesIO(blob("data.npz"))) as npz:
            for split in SPLITS:
                images[split] = npz[f"{split}_images"]
                labels[split] = npz[f"{split}_labels"]
                index[split] = npz[f"{split}_index"]
    return Snapshot(manifest, images, labels, index)
