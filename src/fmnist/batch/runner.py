"""Run a batch job: every row of an input through the model, shard by shard, resumably.

The job is cut into shards of ``shard_size`` rows. Each shard is read (a thread ahead of the
model), predicted with ONNX Runtime in batches, then decided (class or ``unknown``, by
:func:`fmnist.evaluation.unknown.decide_arrays`) and written by a writer thread
(:mod:`fmnist.batch.writer`). Running the same job again skips the finished shards, so an
interruption loses at most the shards in flight. When every shard is there they are combined
into ``OUTPUT`` and the parts folder is removed.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from fmnist.batch.errors import BatchInputError, BatchJobError
from fmnist.batch.inputs import BatchInput, InputChunk
from fmnist.batch.model import BatchModel, Prediction
from fmnist.batch.recording import BatchRecorder
from fmnist.batch.writer import (
    ShardStats,
    ShardWriter,
    combine,
    count_output,
    differences,
    finished_shards,
    job_manifest,
    manifest_bytes,
    parts_dir,
    prepare_parts,
    read_output_manifest,
    shard_rows,
)
from fmnist.evaluation.unknown import Verdicts, decide_arrays
from fmnist.registry.onnx_runtime import LOGITS, PROBABILITIES

if TYPE_CHECKING:
    from fmnist.monitoring.prediction_log import PredictionLog


class ProgressSink(Protocol):
    """Receives the job's progress (for example a Rich progress bar)."""

    def start(self, total_rows: int, done_rows: int) -> None:
        """The job starts: ``done_rows`` of ``total_rows`` were finished by an earlier run."""

    def advance(self, rows: int) -> None:
        """``rows`` more rows were predicted."""


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
    log: PredictionLog | None = None,
) -> BatchResult:
    """Predict every row of ``source`` into the Parquet file ``output`` (see the module doc).

    Resumes from ``OUTPUT.parts`` when its manifest matches, refuses another job's parts or an
    existing output of another job unless ``overwrite``. ``fail_on_error`` turns the first
    unreadable photo into a :class:`~fmnist.batch.errors.BatchInputError` instead of an error
    row. ``max_shards`` stops after computing that many shards (the output is then not
    combined); ``on_shard`` is called with each shard index once its file is written. With
    ``log`` every predicted row is also appended to the prediction log (one commit per shard).
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
        existing = read_output_manifest(output)
        if existing is None:
            raise BatchJobError(
                f"{output} exists and is not the output of a batch job; use --overwrite to "
                "replace it"
            )
        if existing != manifest:
            raise BatchJobError(
                f"{output} exists from another job (differs in: "
                f"{differences(existing, manifest)}); use --overwrite to replace it"
            )
        if parts.exists() and not keep_parts:
            shutil.rmtree(parts)
        result.skipped_shards = result.total_shards
        return _complete(result, count_output(output), began)

    prepare_parts(parts, manifest, overwrite)
    done = finished_shards(parts, source.num_rows, shard_size, total_shards)
    todo = [s for s in range(total_shards) if s not in done]
    result.skipped_shards = len(done)
    if progress is not None:
        progress.start(
            source.num_rows, sum(shard_rows(s, source.num_rows, shard_size) for s in done)
        )
    if max_shards is not None:
        todo = todo[:max_shards]

    writer = ShardWriter(model, parts, manifest_bytes(manifest))
    recorder = BatchRecorder(log, model, manifest_bytes(manifest)) if log is not None else None
    job = _Job(source, model, writer, shard_size, batch_size, min_confidence, progress, recorder)
    try:
        job.run(todo, fail_on_error, on_shard, result)
    except BaseException:
        if not any(parts.glob("part-*.parquet")):  # nothing to resume: leave no trace
            shutil.rmtree(parts, ignore_errors=True)
        raise
    if result.skipped_shards + result.computed_shards < total_shards:
        result.seconds = time.perf_counter() - began
        return result
    stats = combine(parts, output, total_shards, writer.schema, keep_parts)
    if not keep_parts:
        shutil.rmtree(parts)
    return _complete(result, stats, began)


def _complete(result: BatchResult, stats: ShardStats, began: float) -> BatchResult:
    result.rows, result.unknown, result.errors = stats.rows, stats.unknown, stats.errors
    result.complete = True
    result.seconds = time.perf_counter() - began
    return result


def _first_error(chunk: InputChunk) -> str | None:
    if chunk.errors is None:
        return None
    for ref, error in zip(chunk.refs.to_pylist(), chunk.errors, strict=True):
        if error is not None:
            return f"{ref}: {error}"
    return None


@dataclass
class _Job:
    """The shards of one run: read, predicted, decided and written."""

    source: BatchInput
    model: BatchModel
    writer: ShardWriter
    shard_size: int
    batch_size: int
    min_confidence: float
    progress: ProgressSink | None
    recorder: BatchRecorder | None = None

    def read(self, shard: int) -> InputChunk:
        """The rows of shard ``shard`` (slow readers report them to the progress as read)."""
        rows = self.source.num_rows
        report = self.progress.advance if self.progress is not None else None
        start, stop = shard * self.shard_size, min(rows, (shard + 1) * self.shard_size)
        return self.source.read(start, stop, report)

    def predict(self, chunk: InputChunk) -> Prediction:
        """Run the model on the valid rows of ``chunk`` in batches of ``batch_size``."""
        valid = chunk.valid
        pixels = chunk.pixels if valid is None else chunk.pixels[valid]
        progress = None if chunk.progress_reported else self.progress
        n = len(pixels)
        classifier = self.model.classifier
        logits = np.empty((n, classifier.num_classes), dtype=np.float32)
        probabilities = np.empty_like(logits)
        session, input_name = classifier.session, classifier.input_name
        scale = np.float32(255.0)
        for start in range(0, n, self.batch_size):
            stop = min(n, start + self.batch_size)
            # Same conversion as OnnxClassifier: uint8 (or 0-255 floats) / 255 in float32.
            x = (pixels[start:stop].astype(np.float32) / scale).reshape(stop - start, 1, 28, 28)
            batch_logits, batch_probabilities = session.run(
                [LOGITS, PROBABILITIES], {input_name: x}
            )
            logits[start:stop] = batch_logits
            probabilities[start:stop] = batch_probabilities
            if progress is not None:
                progress.advance(stop - start)
        if progress is not None and n < len(chunk):
            progress.advance(len(chunk) - n)  # unreadable rows count as done
        return Prediction(logits, probabilities)

    def decide(self, chunk: InputChunk, prediction: Prediction) -> Verdicts:
        """Class or ``unknown`` for each predicted row (the online API's rule)."""
        foreground = chunk.foreground
        if foreground is not None and chunk.valid is not None:
            foreground = foreground[chunk.valid]
        return decide_arrays(
            prediction.probabilities,
            prediction.logits,
            temperature=self.model.temperature,
            energy_threshold=self.model.energy_threshold,
            min_confidence=self.min_confidence,
            foreground_fraction=foreground,
        )

    def finish(self, shard: int, chunk: InputChunk, prediction: Prediction) -> ShardStats:
        """Decide, write and log one shard (on the writer thread)."""
        verdicts = self.decide(chunk, prediction)
        stats = self.writer.write(shard, chunk, prediction, verdicts)
        if self.recorder is not None:
            self.recorder.record(shard * self.shard_size, chunk, prediction, verdicts)
        return stats

    def run(
        self,
        todo: list[int],
        fail_on_error: bool,
        on_shard: Callable[[int], None] | None,
        result: BatchResult,
    ) -> None:
        """The pipeline: read shard k+1 and write shard k-1 while the model runs on shard k."""
        if not todo:
            return
        pending: deque[tuple[int, Future[ShardStats]]] = deque()

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
            next_read = reader.submit(self.read, todo[0])
            try:
                for position, shard in enumerate(todo):
                    chunk = next_read.result()
                    if position + 1 < len(todo):
                        next_read = reader.submit(self.read, todo[position + 1])
                    if fail_on_error and (first := _first_error(chunk)) is not None:
                        raise BatchInputError(f"{self.source.path}: {first}")
                    prediction = self.predict(chunk)
                    pending.append((shard, writing.submit(self.finish, shard, chunk, prediction)))
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
