"""The snapshot ETL as an Apache Beam pipeline (``fmnist data snapshot --engine beam``).

    raw rows (split, index, pixels, label) -> key by (content hash) -> GroupByKey
      -> resolve each group -> Parquet rows -> the snapshot writer (split, validate, write)

Resolving a group of identical images: a test image also in train is removed from train
(leakage); copies with one label keep the first (lowest index); copies whose labels disagree
are all dropped (label noise). The result is written by the same code as the default path
(stratified split, the validation checks of ``fmnist data validate``, the manifest), so the
snapshot is the training input like any other; its source names the ETL and what it removed.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms import combiners

from fmnist.data.snapshot import Manifest, write_snapshot
from fmnist.data.sources import RawDataset

if TYPE_CHECKING:
    from fmnist.config import DataSettings, ValidationSettings
    from fmnist.data.validation import ValidationReport
    from fmnist.platform.storage import Storage

ETL_VERSION = "beam-dedup-v1"
CHUNK = 5000


@dataclass(frozen=True)
class EtlResult:
    """The snapshot written and what the ETL removed."""

    manifest: Manifest
    report: ValidationReport | None
    removed: dict[str, int]


def _rows(part: tuple[str, int, np.ndarray, np.ndarray]) -> Iterator[tuple[str, Any]]:
    split, start, images, labels = part
    for offset, (image, label) in enumerate(zip(images, labels, strict=True)):
        data = image.tobytes()
        yield hashlib.sha256(data).hexdigest(), (split, start + offset, data, int(label))


def resolve(group: tuple[str, Iterable[Any]]) -> Iterator[Any]:
    """The rows a group of identical images keeps, and one ``("removed", reason)`` per drop."""
    _, members = group
    rows = sorted(members, key=lambda r: (r[0], r[1]))  # test before train, then by index
    tests = [r for r in rows if r[0] == "test"]
    trains = [r for r in rows if r[0] == "train"]
    yield from (("kept", r) for r in tests)  # the test split is never changed
    if tests:
        yield from (("removed", "train_leaked_into_test") for _ in trains)
        return
    if len({r[3] for r in trains}) > 1:
        yield from (("removed", "conflicting_labels") for _ in trains)
        return
    if trains:
        yield "kept", trains[0]
        yield from (("removed", "duplicate") for _ in trains[1:])


class _ToTable(beam.DoFn):
    """Kept rows, in batches, as Arrow tables."""

    def process(self, batch: list[Any]) -> Iterator[pa.Table]:
        """One table per batch."""
        yield pa.table(
            {
                "split": [r[0] for r in batch],
                "index": [r[1] for r in batch],
                "image": pa.array([r[2] for r in batch], type=pa.binary(784)),
                "label": pa.array([r[3] for r in batch], type=pa.uint8()),
            }
        )


def beam_snapshot(
    storage: Storage,
    raw: RawDataset,
    data: DataSettings,
    validation: ValidationSettings,
    options: PipelineOptions | None = None,
) -> EtlResult:
    """Deduplicate ``raw`` with Beam, then split, validate and write it as a snapshot."""
    parts = [
        (split, start, images[start : start + CHUNK], labels[start : start + CHUNK])
        for split, images, labels in (
            ("train", raw.train_images, raw.train_labels),
            ("test", raw.test_images, raw.test_labels),
        )
        for start in range(0, len(labels), CHUNK)
    ]
    schema = pa.schema(
        [
            ("split", pa.string()),
            ("index", pa.int64()),
            ("image", pa.binary(784)),
            ("label", pa.uint8()),
        ]
    )
    with tempfile.TemporaryDirectory(prefix="fmnist-etl-") as tmp:
        kept_path, removed_path = Path(tmp) / "kept.parquet", Path(tmp) / "removed"
        with beam.Pipeline(options=options or PipelineOptions(["--runner=DirectRunner"])) as p:
            resolved = (
                p
                | "Chunks" >> beam.Create(parts)
                | "Rows" >> beam.FlatMap(_rows)
                | "ByContent" >> beam.GroupByKey()
                | "Resolve" >> beam.FlatMap(resolve)
            )
            _ = (
                resolved
                | "Kept" >> beam.Filter(lambda r: r[0] == "kept")
                | "Row" >> beam.Map(lambda r: r[1])
                | "Batch" >> beam.BatchElements(min_batch_size=1000, max_batch_size=10_000)
                | "Table" >> beam.ParDo(_ToTable())
                | "Write"
                >> beam.io.WriteToParquetBatched(
                    str(kept_path), schema=schema, num_shards=1, shard_name_template=""
                )
            )
            _ = (
                resolved
                | "Removed" >> beam.Filter(lambda r: r[0] == "removed")
                | "Reason" >> beam.Map(lambda r: r[1])
                | "Count" >> combiners.Count.PerElement()
                | "Format" >> beam.Map(lambda kv: f"{kv[0]}\t{kv[1]}")
                | "WriteCounts" >> beam.io.WriteToText(str(removed_path), shard_name_template="")
            )
        table = pq.read_table(kept_path).sort_by([("split", "ascending"), ("index", "ascending")])
        removed = {
            reason: int(count)
            for reason, count in (
                line.split("\t") for line in removed_path.read_text().splitlines() if line
            )
        }
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("train", "test"):
        rows = table.filter(pc.equal(table["split"], split))
        images = np.frombuffer(b"".join(rows.column("image").to_pylist()), dtype=np.uint8).reshape(
            -1, 28, 28
        )
        arrays[split] = (images, rows.column("label").to_numpy().astype(np.uint8))
    removed_text = ", ".join(f"{k} {v}" for k, v in sorted(removed.items())) or "nothing"
    cleaned = RawDataset(
        *arrays["train"],
        *arrays["test"],
        source=f"{raw.source}, deduplicated by the Beam ETL ({ETL_VERSION}; removed "
        f"{removed_text})",
        checksums={**raw.checksums, "etl": ETL_VERSION},
    )
    manifest, report = write_snapshot(storage, cleaned, data, validation)
    return EtlResult(manifest, report, removed)
