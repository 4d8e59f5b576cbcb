"""Day-partitioned Parquet segments of the prediction log (``date=YYYY-MM-DD/part-NNNN.parquet``).

A segment is written to a hidden temporary file, synced, renamed into place and its folder
synced, so a reader (or DuckDB over ``**/*.parquet``) sees a whole file or none. Hidden names
(``.``-prefixed) are ignored by readers, which is also how retention removes a day: rename the
partition to a hidden name, then delete it.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from fmnist.monitoring.log_arrow import ARROW_SCHEMA

_PART = re.compile(r"^part-(\d+)\.parquet$")
_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
PARTITIONING = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")
DATASET_SCHEMA = ARROW_SCHEMA.append(pa.field("date", pa.string()))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` through a hidden synced temporary file renamed into place,
    then sync the folder: after return the file is durable, before it is absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class SegmentStore:
    """The Parquet side of the log under ``root``."""

    def __init__(self, root: Path) -> None:
        """Use (and create on first write) the folder ``root``."""
        self.root = Path(root)

    def days(self) -> list[date]:
        """The days that have a partition, oldest first."""
        if not self.root.is_dir():
            return []
        found = (_DATE_DIR.match(p.name) for p in self.root.iterdir() if p.is_dir())
        return sorted(date.fromisoformat(m.group(1)) for m in found if m)

    def _dataset(self) -> ds.Dataset | None:
        if not self.days():
            return None
        return ds.dataset(
            self.root, schema=DATASET_SCHEMA, format="parquet", partitioning=PARTITIONING
        )

    def read(
        self, where: ds.Expression | None = None, columns: list[str] | None = None
    ) -> pa.Table:
        """The rows matching ``where`` (columns of :data:`ARROW_SCHEMA`), in no order."""
        names = columns or ARROW_SCHEMA.names
        dataset = self._dataset()
        if dataset is None:
            return ARROW_SCHEMA.empty_table().select(names)
        return dataset.to_table(columns=names, filter=where)

    def count(self, where: ds.Expression | None = None) -> int:
        """The number of rows matching ``where``."""
        dataset = self._dataset()
        return 0 if dataset is None else int(dataset.count_rows(filter=where))

    def ids(self, day: date) -> pa.Array:
        """The request ids stored for ``day``."""
        table = self.read(pc.field("date") == day.isoformat(), ["request_id"])
        return table.column("request_id").combine_chunks()

    def partition(self, day: date) -> Path:
        """The folder of ``day``'s segments."""
        return self.root / f"date={day.isoformat()}"

    def write_part(self, day: date, table: pa.Table) -> Path:
        """Write ``table`` as the next segment of ``day``, durably; return its path."""
        folder = self.partition(day)
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _PART.match(p.name))]
        path = folder / f"part-{max(numbers, default=-1) + 1:04d}.parquet"
        write_parquet_atomic(table.cast(ARROW_SCHEMA), path)
        if created:
            _fsync_dir(folder.parent)
        return path

    def drop_before(self, day: date) -> int:
        """Delete the partitions of days before ``day``; return how many were deleted."""
        dropped = 0
        for old in (d for d in self.days() if d < day):
            folder = self.partition(old)
            hidden = folder.with_name(f".deleting-{folder.name}")
            folder.replace(hidden)
            shutil.rmtree(hidden)
            dropped += 1
        if dropped:
            _fsync_dir(self.root)
        return dropped

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the exclusive compaction lock (across processes) for the block."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".compaction.lock").open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
