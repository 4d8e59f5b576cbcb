"""The batch job's output: Parquet shards, the job manifest and the combined file, all atomic.

Each shard is written to ``OUTPUT.parts/part-NNNNN.parquet`` atomically. The parts folder holds
a manifest naming the input (path, size, mtime or a listing hash), the model (name, version,
SHA-256), the decision rule and the shard size: a parts folder of another job is refused unless
``overwrite``. When every shard is there they are combined into ``OUTPUT`` (atomically, with the
manifest in the file's metadata).

Output columns: ``input_ref`` (relative path or row number or id), ``class_id`` (int32, null when
unknown or unreadable), ``label``, ``confidence`` (calibrated top probability), ``probabilities``
(fixed-size list of float32), ``model_name``, ``model_version``, ``error`` (null when the row
was read fine). A row that could not be read has an ``error`` and nulls elsewhere (its
``probabilities`` are a list of nulls).
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from fmnist.atomic import atomic_write_bytes, atomic_write_text
from fmnist.batch.errors import BatchJobError
from fmnist.batch.inputs import BatchInput, InputChunk
from fmnist.batch.model import BatchModel, Prediction
from fmnist.evaluation.unknown import UNKNOWN, Verdicts

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
METADATA_KEY = b"fmnist.batch_manifest"
"""Key of the job manifest (JSON) in the output file's Parquet metadata."""
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    # Repeated strings are dictionary-encoded; floats are byte-stream-split, which halves their
    # size under zstd and is several times cheaper to encode than dictionaries of floats.
    "use_dictionary": ["label", "model_name", "model_version", "error"],
    "use_byte_stream_split": ["confidence", "probabilities.list.element"],
}


def output_schema(num_classes: int) -> pa.Schema:
    """The schema of the output file and of every shard."""
    return pa.schema(
        [
            pa.field("input_ref", pa.string()),
            pa.field("class_id", pa.int32()),
            pa.field("label", pa.string()),
            pa.field("confidence", pa.float32()),
            pa.field("probabilities", pa.list_(pa.float32(), num_classes)),
            pa.field("model_name", pa.string()),
            pa.field("model_version", pa.string()),
            pa.field("error", pa.string()),
        ]
    )


def parts_dir(output: Path) -> Path:
    """The folder holding the finished shards and the manifest of a running job."""
    return output.with_name(output.name + ".parts")


def part_path(parts: Path, shard: int) -> Path:
    """The file of shard ``shard``."""
    return parts / f"part-{shard:05d}.parquet"


@dataclass
class ShardStats:
    """Rows, unknown answers and unreadable rows of a shard (or a whole output)."""

    rows: int = 0
    unknown: int = 0
    errors: int = 0

    def add(self, other: ShardStats) -> None:
        """Add the counts of ``other``."""
        self.rows += other.rows
        self.unknown += other.unknown
        self.errors += other.errors


class ShardWriter:
    """Turns a chunk, its predictions and verdicts into an Arrow table and writes the shard."""

    def __init__(self, model: BatchModel, parts: Path, manifest_json: bytes) -> None:
        """Write shards of ``model``'s answers into ``parts``, the manifest in their metadata."""
        self.model = model
        self.parts = parts
        self.num_classes = model.classifier.num_classes
        self.schema = output_schema(self.num_classes).with_metadata({METADATA_KEY: manifest_json})
        self.labels = pa.array([*model.classifier.class_names, UNKNOWN], type=pa.string())

    def table(
        self, chunk: InputChunk, prediction: Prediction, verdicts: Verdicts
    ) -> tuple[pa.Table, ShardStats]:
        """The shard's rows (unreadable rows scattered back into place) and their counts."""
        n = len(chunk)
        valid = chunk.valid
        class_id = verdicts.class_id
        confidence = verdicts.confidence
        probabilities = prediction.probabilities
        missing: npt.NDArray[np.bool_] | None = None
        if valid is not None:  # scatter the predictions of the readable rows back into place
            missing = ~valid
            class_id = np.full(n, -1, dtype=np.int32)
            class_id[valid] = verdicts.class_id
            confidence = np.zeros(n, dtype=np.float32)
            confidence[valid] = verdicts.confidence
            probabilities = np.zeros((n, self.num_classes), dtype=np.float32)
            probabilities[valid] = prediction.probabilities
        unknown = class_id < 0
        label_index = np.where(unknown, self.num_classes, class_id)
        label = self.labels.take(pa.array(label_index, mask=missing))
        # Unreadable rows get a list of nulls rather than a null list: pyarrow < 26 cannot read
        # null fixed-size lists back from Parquet (apache/arrow#35692).
        flat = pa.array(
            np.ascontiguousarray(probabilities, dtype=np.float32).reshape(-1),
            mask=None if missing is None else np.repeat(missing, self.num_classes),
        )
        table = pa.Table.from_arrays(
            [
                chunk.refs,
                pa.array(class_id, type=pa.int32(), mask=unknown),
                label,
                pa.array(confidence, type=pa.float32(), mask=missing),
                pa.FixedSizeListArray.from_arrays(flat, self.num_classes),
                pa.repeat(pa.scalar(self.model.name, pa.string()), n),
                pa.repeat(pa.scalar(self.model.version, pa.string()), n),
                pa.array(chunk.errors, type=pa.string())
                if chunk.errors is not None
                else pa.nulls(n, pa.string()),
            ],
            schema=self.schema,
        )
        errors = chunk.error_count
        return table, ShardStats(n, int(unknown.sum()) - errors, errors)

    def write(
        self, shard: int, chunk: InputChunk, prediction: Prediction, verdicts: Verdicts
    ) -> ShardStats:
        """Write shard ``shard`` atomically (one row group) and return its counts."""
        table, stats = self.table(chunk, prediction, verdicts)
        sink = io.BytesIO()
        pq.write_table(table, sink, row_group_size=max(1, len(table)), **PARQUET_OPTIONS)
        atomic_write_bytes(part_path(self.parts, shard), sink.getvalue())
        return stats


def count(table: pa.Table) -> ShardStats:
    """The counts of an output table (needs its ``class_id`` and ``error`` columns)."""
    errors = len(table) - table.column("error").null_count
    unknown = table.column("class_id").null_count - errors
    return ShardStats(len(table), unknown, errors)


def count_output(output: Path) -> ShardStats:
    """The counts of a finished output file."""
    return count(pq.read_table(output, columns=["class_id", "error"]))


# ---------------------------------------------------------------------------- the manifest


def job_manifest(
    source: BatchInput, model: BatchModel, shard_size: int, min_confidence: float
) -> dict[str, Any]:
    """What identifies a job: input fingerprint, model, shard size, rows and decision rule."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "input": source.fingerprint(),
        "model": model.identity(),
        "decision": {
            "min_confidence": min_confidence,
            "energy_threshold": model.energy_threshold,
            "temperature": model.temperature,
        },
        "shard_size": shard_size,
        "total_rows": source.num_rows,
        "num_shards": num_shards(source.num_rows, shard_size),
    }


def num_shards(rows: int, shard_size: int) -> int:
    """Shards of ``shard_size`` rows needed for ``rows`` (at least one)."""
    return max(1, math.ceil(rows / shard_size))


def shard_rows(shard: int, rows: int, shard_size: int) -> int:
    """The number of rows of shard ``shard``."""
    return max(0, min(rows, (shard + 1) * shard_size) - shard * shard_size)


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The manifest as compact JSON with sorted keys (stored in the Parquet metadata)."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs between two manifests, one level deep (``key (before -> after)``)."""
    parts = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        before, after = old.get(key), new.get(key)
        if isinstance(before, dict) and isinstance(after, dict):
            inner = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            details = ", ".join(f"{k} {before.get(k)!r} -> {after.get(k)!r}" for k in inner)
            parts.append(f"{key} ({details})")
        else:
            parts.append(f"{key} ({before!r} -> {after!r})")
    return "; ".join(parts)


def read_output_manifest(output: Path) -> dict[str, Any] | None:
    """The manifest stored in an output file, or None when it is not a batch job's output."""
    try:
        metadata = pq.read_schema(output).metadata or {}
        raw = metadata.get(METADATA_KEY)
        return None if raw is None else dict(json.loads(raw))
    except (OSError, pa.ArrowException, ValueError):
        return None


def prepare_parts(parts: Path, manifest: dict[str, Any], overwrite: bool) -> None:
    """Make ``parts`` the folder of this job: keep it when its manifest matches (removing writes
    cut short), start it afresh when unused or ``overwrite``, refuse another job's shards."""
    manifest_path = parts / MANIFEST
    if parts.exists():
        existing: dict[str, Any] | None = None
        if manifest_path.is_file():
            try:
                existing = dict(json.loads(manifest_path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                existing = None
        if existing == manifest:
            for stale in parts.glob(".*.tmp"):  # a write cut short by a crash
                stale.unlink(missing_ok=True)
            return
        unused = existing is not None and not any(parts.glob("part-*.parquet"))
        if not overwrite and not unused:  # never discard finished shards unasked
            if existing is None:
                what = "holds no readable job manifest"
            else:
                what = f"belongs to another job (differs in: {differences(existing, manifest)})"
            raise BatchJobError(
                f"{parts} {what}; use --overwrite to discard it, or choose another OUTPUT"
            )
        shutil.rmtree(parts)
    parts.mkdir(parents=True)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def finished_shards(parts: Path, rows: int, shard_size: int, total: int) -> set[int]:
    """The shards whose file is there, readable and complete."""
    done: set[int] = set()
    for shard in range(total):
        path = part_path(parts, shard)
        if not path.is_file():
            continue
        try:
            if pq.read_metadata(path).num_rows == shard_rows(shard, rows, shard_size):
                done.add(shard)
        except (OSError, pa.ArrowException):
            continue  # unreadable: computed again (and replaced atomically)
    return done


def parts_status(output: Path) -> tuple[int, int] | None:
    """(finished shards, total shards) of an unfinished job writing ``output``, if any."""
    parts = parts_dir(output)
    try:
        manifest = json.loads((parts / MANIFEST).read_text(encoding="utf-8"))
        total = int(manifest["num_shards"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    done = finished_shards(parts, int(manifest["total_rows"]), int(manifest["shard_size"]), total)
    return len(done), total


# ------------------------------------------------------------------------------ combining


def _iter_parts(parts: Path, total: int) -> Iterator[pa.Table]:
    for shard in range(total):
        yield pq.read_table(part_path(parts, shard))


def combine(
    parts: Path, output: Path, total: int, schema: pa.Schema, keep_parts: bool
) -> ShardStats:
    """Write the shards into ``output`` atomically (one row group per shard)."""
    stats = ShardStats()
    output.parent.mkdir(parents=True, exist_ok=True)
    if total == 1 and not keep_parts:  # the shard already is the final file: move it
        stats.add(count(pq.read_table(part_path(parts, 0), columns=["class_id", "error"])))
        part_path(parts, 0).replace(output)
        return stats
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, renamed into place
        dir=output.parent, prefix=f".{output.name}.", suffix=".tmp", delete=False
    )
    tmp = Path(handle.name)
    try:
        with handle:
            with pq.ParquetWriter(handle, schema, **PARQUET_OPTIONS) as out:
                for table in _iter_parts(parts, total):
                    stats.add(count(table))
                    out.write_table(
                        table.replace_schema_metadata(schema.metadata),
                        row_group_size=max(1, len(table)),
                    )
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return stats
