"""Batch inference: a whole file or folder through the model into one Parquet file.

The job is cut into shards of ``shard_size`` rows. Each shard is read (a thread ahead of the
model), predicted with ONNX Runtime in batches, decided (class or ``unknown``) and written to
``OUTPUT.parts/part-NNNNN.parquet`` by a writer thread, atomically. The parts folder holds a
manifest naming the input (path, size, mtime or a listing hash), the model (name, version,
SHA-256) and the shard size: running the same job again skips the finished shards, so an
interruption loses at most the shards in flight, and a parts folder of another job is refused
unless ``overwrite``. When every shard is there they are combined into ``OUTPUT`` (atomically,
with the manifest in the file's metadata) and the parts folder is removed.

Output columns: ``input_ref`` (relative path or row number or id), ``class_id`` (int32, null when
unknown or unreadable), ``label``, ``confidence`` (calibrated top probability), ``probabilities``
(fixed-size list of float32), ``model_name``, ``model_version``, ``error`` (null when the row
was read fine). A row that could not be read has an ``error`` and nulls elsewhere (its
``probabilities`` are a list of nulls).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from fmnist.atomic import atomic_write_bytes, atomic_write_text
from fmnist.errors import FmnistError
from fmnist.evaluation.calibration import energy_score
from fmnist.registry.onnx_runtime import LOGITS, PROBABILITIES, OnnxClassifier
from fmnist.serving.batch_inputs import BatchInput, InputChunk
from fmnist.serving.unknown import (
    BLANK_FOREGROUND_FRACTION,
    UNKNOWN,
    energy_threshold_from_metadata,
)

if TYPE_CHECKING:
    from fmnist.config import Settings

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


class BatchJobError(FmnistError):
    """The job cannot run as asked (another job's parts or output in the way, bad model)."""


class ProgressSink(Protocol):
    """Receives the job's progress (for example a Rich progress bar)."""

    def start(self, total_rows: int, done_rows: int) -> None:
        """The job starts: ``done_rows`` of ``total_rows`` were finished by an earlier run."""

    def advance(self, rows: int) -> None:
        """``rows`` more rows were predicted."""


# ------------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class BatchModel:
    """The classifier of a job and what identifies it in the output and the manifest."""

    classifier: OnnxClassifier
    name: str
    version: str
    sha256: str
    energy_threshold: float | None

    @property
    def temperature(self) -> float:
        """The calibration temperature recorded in the model (1 when absent)."""
        return self.classifier.temperature or 1.0

    def identity(self) -> dict[str, Any]:
        """Name, version and file hash (the manifest's ``model`` entry)."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_onnx_model(
    path: Path,
    *,
    name: str | None = None,
    version: str | None = None,
    threads: int = 2,
    batch_size: int = 1024,
) -> BatchModel:
    """Load an exported ONNX classifier; name and version default to the file name and
    ``sha256:<first 12 hex digits>``."""
    if not path.is_file():
        raise BatchJobError(f"{path}: ONNX model file not found")
    try:
        classifier = OnnxClassifier(path, intra_op_threads=threads, batch_size=batch_size)
    except ValueError as exc:
        raise BatchJobError(str(exc)) from exc
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
        raise BatchJobError(f"{path}: not a loadable ONNX model ({exc})") from exc
    sha = _sha256_file(path)
    energy = energy_threshold_from_metadata(classifier.metadata)
    _warm_up(classifier, batch_size)
    return BatchModel(classifier, name or path.name, version or f"sha256:{sha[:12]}", sha, energy)


def load_registered_model(
    settings: Settings, ref: str | None = None, *, threads: int = 2, batch_size: int = 1024
) -> BatchModel:
    """Download version or alias ``ref`` (default ``serving.model_ref``) from the registry and
    load it; the alias is resolved once, so the whole job uses one version."""
    from fmnist.registry.mlflow_registry import MlflowRegistry

    registry = MlflowRegistry(settings)
    info = registry.get(ref or settings.serving.model_ref)
    with tempfile.TemporaryDirectory(prefix="fmnist-batch-model-") as tmp:
        folder = registry.download(str(info.version), Path(tmp))
        return load_onnx_model(
            folder / "model.onnx",
            name=info.name,
            version=str(info.version),
            threads=threads,
            batch_size=batch_size,
        )


def _warm_up(classifier: OnnxClassifier, batch_size: int) -> None:
    """One call at full batch size, so the timed job does not pay for arena allocation."""
    x = np.zeros((batch_size, 1, 28, 28), dtype=np.float32)
    classifier.session.run([LOGITS, PROBABILITIES], {classifier.input_name: x})


# --------------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdicts:
    """Vectorised verdicts for ``n`` rows: class id (-1 when unknown) and top probability."""

    class_id: npt.NDArray[np.int32]
    confidence: npt.NDArray[np.float32]

    @property
    def unknown(self) -> npt.NDArray[np.bool_]:
        """Rows answered ``unknown``."""
        return self.class_id < 0


def decide_arrays(
    probabilities: npt.NDArray[np.float32],
    logits: npt.NDArray[np.float32],
    *,
    temperature: float,
    energy_threshold: float | None,
    min_confidence: float,
    foreground_fraction: npt.NDArray[np.float64] | None = None,
) -> Verdicts:
    """The verdicts of :func:`fmnist.serving.unknown.decide` for whole arrays at once.

    Same rules and constants (blank image, non-finite output, low confidence, energy above the
    threshold), without one Python object per row; the tests check the two agree row by row.
    """
    p = probabilities.astype(np.float64)
    n = len(p)
    rows = np.arange(n)
    finite = np.isfinite(p).all(axis=1) & np.isfinite(logits).all(axis=1)
    top = p.argmax(axis=1) if n else np.zeros(0, dtype=np.intp)
    confidence = np.where(finite, p[rows, top], np.nan)
    with np.errstate(invalid="ignore", over="ignore"):
        unknown = ~finite | (confidence < min_confidence)
        if energy_threshold is not None and n:
            energy = energy_score(logits.astype(np.float64), temperature)
            unknown |= finite & (energy > energy_threshold)
        if foreground_fraction is not None:
            unknown |= foreground_fraction < BLANK_FOREGROUND_FRACTION
    class_id = np.where(unknown, -1, top).astype(np.int32)
    return Verdicts(class_id, confidence.astype(np.float32))


# ----------------------------------------------------------------------------- the output


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
class _ShardStats:
    rows: int = 0
    unknown: int = 0
    errors: int = 0

    def add(self, other: _ShardStats) -> None:
        self.rows += other.rows
        self.unknown += other.unknown
        self.errors += other.errors


@dataclass(frozen=True)
class _Prediction:
    """Model outputs of the valid rows of a chunk (in order)."""

    logits: npt.NDArray[np.float32]
    probabilities: npt.NDArray[np.float32]


class _Writer:
    """Turns a chunk and its predictions into an Arrow table and writes the shard."""

    def __init__(
        self, model: BatchModel, parts: Path, min_confidence: float, manifest_json: bytes
    ) -> None:
        self.model = model
        self.parts = parts
        self.min_confidence = min_confidence
        self.num_classes = model.classifier.num_classes
        self.schema = output_schema(self.num_classes).with_metadata({METADATA_KEY: manifest_json})
        self.labels = pa.array([*model.classifier.class_names, UNKNOWN], type=pa.string())

    def table(self, chunk: InputChunk, prediction: _Prediction) -> tuple[pa.Table, _ShardStats]:
        n = len(chunk)
        valid = chunk.valid
        foreground = chunk.foreground
        if foreground is not None and valid is not None:
            foreground = foreground[valid]
        verdicts = decide_arrays(
            prediction.probabilities,
            prediction.logits,
            temperature=self.model.temperature,
            energy_threshold=self.model.energy_threshold,
            min_confidence=self.min_confidence,
            foreground_fraction=foreground,
        )
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
        return table, _ShardStats(n, int(unknown.sum()) - errors, errors)

    def write(self, shard: int, chunk: InputChunk, prediction: _Prediction) -> _ShardStats:
        table, stats = self.table(chunk, prediction)
        sink = io.BytesIO()
        pq.write_table(table, sink, row_group_size=max(1, len(table)), **PARQUET_OPTIONS)
        atomic_write_bytes(part_path(self.parts, shard), sink.getvalue())
        return stats


def _count(table: pa.Table) -> _ShardStats:
    errors = len(table) - table.column("error").null_count
    unknown = table.column("class_id").null_count - errors
    return _ShardStats(len(table), unknown, errors)


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
        "num_shards": _num_shards(source.num_rows, shard_size),
    }


def _num_shards(rows: int, shard_size: int) -> int:
    return max(1, math.ceil(rows / shard_size))


def _manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
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


def _read_output_manifest(output: Path) -> dict[str, Any] | None:
    try:
        metadata = pq.read_schema(output).metadata or {}
        raw = metadata.get(METADATA_KEY)
        return None if raw is None else dict(json.loads(raw))
    except (OSError, pa.ArrowException, ValueError):
        return None


# --------------------------------------------------------------------------------- the job


@dataclass
class BatchResult:
    """What a job run did; ``complete`` is False when it stopped early (``max_shards``)."""

    output: Path
    total_rows: int
    total_shards: int
    rows: int = 0
    unknown: int = 0
    errors: int = 0
    computed_rows: int = 0
    computed_shards: int = 0
    skipped_shards: int = 0
    seconds: float = 0.0
    complete: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def images_per_s(self) -> float:
        """Rows predicted by this run per second of its wall time."""
        return self.computed_rows / self.seconds if self.seconds > 0 else 0.0


def run_batch(
    source: BatchInput,
    output: Path,
    model: BatchModel,
    *,
    min_confidence: float,
    shard_size: int | None = None,
    batch_size: int = 1024,
    fail_on_error: bool = False,
    overwrite: bool = False,
    keep_parts: bool = False,
    max_shards: int | None = None,
    progress: ProgressSink | None = None,
    on_shard: Callable[[int], None] | None = None,
) -> BatchResult:
    """Predict every row of ``source`` into the Parquet file ``output`` (see the module doc).

    Resumes from ``OUTPUT.parts`` when its manifest matches, refuses another job's parts or an
    existing output of another job unless ``overwrite``. ``fail_on_error`` turns the first
    unreadable photo into a :class:`~fmnist.serving.batch_inputs.BatchInputError` instead of an
    error row. ``max_shards`` stops after computing that many shards (the output is then not
    combined); ``on_shard`` is called with each shard index once its file is written.
    """
    began = time.perf_counter()
    shard_size = shard_size or source.default_shard_size
    if shard_size <= 0 or batch_size <= 0:
        raise ValueError("shard_size and batch_size must be positive")
    manifest = job_manifest(source, model, shard_size, min_confidence)
    total_shards = manifest["num_shards"]
    result = BatchResult(output, source.num_rows, total_shards, warnings=source.warnings)
    parts = parts_dir(output)
    if output.is_dir():
        raise BatchJobError(f"{output} is a folder; OUTPUT must be a Parquet file name")

    if output.exists() and not overwrite:
        existing = _read_output_manifest(output)
        if existing is None:
            raise BatchJobError(
                f"{output} exists and is not the output of a batch job; use --overwrite to "
                "replace it"
            )
        if existing != manifest:
            raise BatchJobError(
                f"{output} exists from another job (differs in: "
                f"{_differences(existing, manifest)}); use --overwrite to replace it"
            )
        if parts.exists() and not keep_parts:
            shutil.rmtree(parts)
        return _finish_from_file(result, output, began)

    _prepare_parts(parts, manifest, overwrite)
    done = _finished_shards(parts, source.num_rows, shard_size, total_shards)
    todo = [s for s in range(total_shards) if s not in done]
    result.skipped_shards = len(done)
    if progress is not None:
        progress.start(
            source.num_rows, sum(_shard_rows(s, source.num_rows, shard_size) for s in done)
        )
    if max_shards is not None:
        todo = todo[:max_shards]

    writer = _Writer(model, parts, min_confidence, _manifest_bytes(manifest))
    try:
        _run_shards(
            source,
            model,
            writer,
            todo,
            shard_size,
            batch_size,
            fail_on_error,
            progress,
            on_shard,
            result,
        )
    except BaseException:
        if not any(parts.glob("part-*.parquet")):  # nothing to resume: leave no trace
            shutil.rmtree(parts, ignore_errors=True)
        raise
    if result.skipped_shards + result.computed_shards < total_shards:
        result.seconds = time.perf_counter() - began
        return result
    stats = _combine(parts, output, total_shards, writer.schema, keep_parts)
    if not keep_parts:
        shutil.rmtree(parts)
    result.rows, result.unknown, result.errors = stats.rows, stats.unknown, stats.errors
    result.complete = True
    result.seconds = time.perf_counter() - began
    return result


def _shard_rows(shard: int, rows: int, shard_size: int) -> int:
    return max(0, min(rows, (shard + 1) * shard_size) - shard * shard_size)


def _prepare_parts(parts: Path, manifest: dict[str, Any], overwrite: bool) -> None:
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
                what = f"belongs to another job (differs in: {_differences(existing, manifest)})"
            raise BatchJobError(
                f"{parts} {what}; use --overwrite to discard it, or choose another OUTPUT"
            )
        shutil.rmtree(parts)
    parts.mkdir(parents=True)
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _finished_shards(parts: Path, rows: int, shard_size: int, total: int) -> set[int]:
    done: set[int] = set()
    for shard in range(total):
        path = part_path(parts, shard)
        if not path.is_file():
            continue
        try:
            if pq.read_metadata(path).num_rows == _shard_rows(shard, rows, shard_size):
                done.add(shard)
        except (OSError, pa.ArrowException):
            continue  # unreadable: computed again (and replaced atomically)
    return done


def _predict(
    model: BatchModel,
    chunk: InputChunk,
    batch_size: int,
    progress: ProgressSink | None,
) -> _Prediction:
    """Run the model on the valid rows of ``chunk`` in batches of ``batch_size``."""
    valid = chunk.valid
    pixels = chunk.pixels if valid is None else chunk.pixels[valid]
    if chunk.progress_reported:
        progress = None
    n = len(pixels)
    classifier = model.classifier
    logits = np.empty((n, classifier.num_classes), dtype=np.float32)
    probabilities = np.empty_like(logits)
    session, input_name = classifier.session, classifier.input_name
    scale = np.float32(255.0)
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        # Same conversion as OnnxClassifier: uint8 (or 0-255 floats) / 255 in float32.
        x = (pixels[start:stop].astype(np.float32) / scale).reshape(stop - start, 1, 28, 28)
        batch_logits, batch_probabilities = session.run([LOGITS, PROBABILITIES], {input_name: x})
        logits[start:stop] = batch_logits
        probabilities[start:stop] = batch_probabilities
        if progress is not None:
            progress.advance(stop - start)
    if progress is not None and n < len(chunk):
        progress.advance(len(chunk) - n)  # unreadable rows count as done
    return _Prediction(logits, probabilities)


def _first_error(chunk: InputChunk) -> str | None:
    if chunk.errors is None:
        return None
    for ref, error in zip(chunk.refs.to_pylist(), chunk.errors, strict=True):
        if error is not None:
            return f"{ref}: {error}"
    return None


def _run_shards(
    source: BatchInput,
    model: BatchModel,
    writer: _Writer,
    todo: list[int],
    shard_size: int,
    batch_size: int,
    fail_on_error: bool,
    progress: ProgressSink | None,
    on_shard: Callable[[int], None] | None,
    result: BatchResult,
) -> None:
    """The pipeline: read shard k+1 and write shard k-1 while the model runs on shard k."""
    from fmnist.serving.batch_inputs import BatchInputError

    if not todo:
        return
    rows = source.num_rows

    report = progress.advance if progress is not None else None

    def read(shard: int) -> InputChunk:
        return source.read(shard * shard_size, min(rows, (shard + 1) * shard_size), report)

    pending: deque[tuple[int, Future[_ShardStats]]] = deque()

    def collect(block: bool) -> None:
        while pending and (block or pending[0][1].done()):
            shard, future = pending.popleft()
            stats = future.result()
            result.computed_shards += 1
            result.computed_rows += stats.rows
            if on_shard is not None:
                on_shard(shard)

    reader = ThreadPoolExecutor(1, thread_name_prefix="fmnist-read")
    with ThreadPoolExecutor(1, thread_name_prefix="fmnist-write") as writing:
        next_read = reader.submit(read, todo[0])
        try:
            for position, shard in enumerate(todo):
                chunk = next_read.result()
                if position + 1 < len(todo):
                    next_read = reader.submit(read, todo[position + 1])
                if fail_on_error and (first := _first_error(chunk)) is not None:
                    raise BatchInputError(f"{source.path}: {first}")
                prediction = _predict(model, chunk, batch_size, progress)
                pending.append((shard, writing.submit(writer.write, shard, chunk, prediction)))
                collect(block=len(pending) > 1)
            collect(block=True)
        except BaseException:
            next_read.cancel()
            # Let the shards already handed to the writer finish: an interruption loses at
            # most the shard being predicted.
            with contextlib.suppress(BaseException):
                collect(block=True)
            raise
        finally:
            reader.shutdown(wait=False, cancel_futures=True)


def _iter_parts(parts: Path, total: int) -> Iterator[pa.Table]:
    for shard in range(total):
        yield pq.read_table(part_path(parts, shard))


def _combine(
    parts: Path, output: Path, total: int, schema: pa.Schema, keep_parts: bool
) -> _ShardStats:
    """Write the shards into ``output`` atomically (one row group per shard)."""
    stats = _ShardStats()
    output.parent.mkdir(parents=True, exist_ok=True)
    if total == 1 and not keep_parts:  # the shard already is the final file: move it
        stats.add(_count(pq.read_table(part_path(parts, 0), columns=["class_id", "error"])))
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
                    stats.add(_count(table))
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


def _finish_from_file(result: BatchResult, output: Path, began: float) -> BatchResult:
    stats = _count(pq.read_table(output, columns=["class_id", "error"]))
    result.rows, result.unknown, result.errors = stats.rows, stats.unknown, stats.errors
    result.skipped_shards = result.total_shards
    result.complete = True
    result.seconds = time.perf_counter() - began
    return result


def parts_status(output: Path) -> tuple[int, int] | None:
    """(finished shards, total shards) of an unfinished job writing ``output``, if any."""
    parts = parts_dir(output)
    try:
        manifest = json.loads((parts / MANIFEST).read_text(encoding="utf-8"))
        total = int(manifest["num_shards"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    done = _finished_shards(parts, int(manifest["total_rows"]), int(manifest["shard_size"]), total)
    return len(done), total
