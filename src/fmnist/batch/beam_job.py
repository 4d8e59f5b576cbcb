"""The batch job as an Apache Beam pipeline (``fmnist predict batch --engine beam``).

Same reader, same preprocessing, same model, same decision and same output schema as the
default engine; only the execution differs:

    shard numbers -> ReadShard (rows, or error rows) -> RunInference (ONNX Runtime in a Beam
    ModelHandler, batched by Beam) -> Decide (class or unknown, in batches) -> Parquet

DirectRunner here; DataflowRunner with :func:`pipeline_options` (project, region, temp and
staging locations, worker machine type, the SDK container image). Rows come out in Beam's
order, not the input's: join on ``input_ref``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apache_beam as beam
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.ml.inference.base import (
    KeyedModelHandler,
    ModelHandler,
    PredictionResult,
    RunInference,
)
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
    WorkerOptions,
)

from fmnist.batch.inputs import InputChunk
from fmnist.batch.model import Prediction, load_onnx_model
from fmnist.batch.writer import ShardWriter, output_schema
from fmnist.evaluation.unknown import Verdicts, decide_arrays
from fmnist.registry.onnx_runtime import LOGITS, PROBABILITIES, OnnxClassifier

if TYPE_CHECKING:
    from fmnist.batch.inputs import BatchInput
    from fmnist.config import GcpSettings

Row = tuple[str, tuple[npt.NDArray[np.uint8], float]]


class OnnxModelHandler(ModelHandler[Any, PredictionResult, OnnxClassifier]):
    """RunInference on an exported ONNX classifier: one ONNX Runtime call per Beam batch."""

    def __init__(self, path: str, *, max_batch_size: int = 1024, threads: int = 1) -> None:
        """Load ``path`` once per worker; Beam batches up to ``max_batch_size`` rows."""
        super().__init__()
        self.path = path
        self.max_batch_size = max_batch_size
        self.threads = threads

    def load_model(self) -> OnnxClassifier:
        """The classifier (shared by the worker's threads)."""
        return OnnxClassifier(Path(self.path), intra_op_threads=self.threads)

    def run_inference(
        self,
        batch: Sequence[Any],
        model: OnnxClassifier,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        """Logits and probabilities of each ``(pixels, foreground)`` example."""
        pixels = np.stack([example[0] for example in batch]).astype(np.float32) / np.float32(255)
        logits, probabilities = model.session.run(
            [LOGITS, PROBABILITIES], {model.input_name: pixels.reshape(len(batch), 1, 28, 28)}
        )
        return [
            PredictionResult(example, (lg, pr))
            for example, lg, pr in zip(batch, logits, probabilities, strict=True)
        ]

    def batch_elements_kwargs(self) -> dict[str, Any]:
        """Batches of up to ``max_batch_size`` rows."""
        return {
            "min_batch_size": min(64, self.max_batch_size),
            "max_batch_size": self.max_batch_size,
        }


class ReadShard(beam.DoFn):
    """Rows of a shard: ``(ref, (pixels, foreground))``, or ``(ref, error)`` to ``errors``."""

    def __init__(self, open_source: Callable[[], BatchInput], shard_size: int) -> None:
        """Each worker opens the input with ``open_source``."""
        super().__init__()
        self.open_source = open_source
        self.shard_size = shard_size

    def setup(self) -> None:
        """Open the input once per worker."""
        self.source = self.open_source()

    def process(self, shard: int) -> Iterator[Any]:
        """Read the shard's rows."""
        start = shard * self.shard_size
        chunk = self.source.read(start, min(self.source.num_rows, start + self.shard_size))
        refs = chunk.refs.to_pylist()
        for i, ref in enumerate(refs):
            error = chunk.errors[i] if chunk.errors is not None else None
            if error is not None:
                yield beam.pvalue.TaggedOutput("errors", (str(ref), error))
                continue
            foreground = float("nan") if chunk.foreground is None else float(chunk.foreground[i])
            yield str(ref), (chunk.pixels[i], foreground)

    def teardown(self) -> None:
        """Close the input."""
        self.source.close()


class ToTable(beam.DoFn):
    """A batch of predictions (or of error rows) as an Arrow table of the output schema."""

    def __init__(self, model_path: str, name: str, version: str, min_confidence: float) -> None:
        """Decide with the model's own temperature and energy threshold."""
        super().__init__()
        self.model_path, self.name, self.version = model_path, name, version
        self.min_confidence = min_confidence

    def setup(self) -> None:
        """The model's identity and the writer of the default engine."""
        self.model = load_onnx_model(
            Path(self.model_path), name=self.name, version=self.version, threads=1, batch_size=1
        )
        self.writer = ShardWriter(self.model, Path(), b"{}")

    def process(self, batch: list[Any]) -> Iterator[pa.Table]:
        """One table per batch."""
        num_classes = self.model.classifier.num_classes
        refs = pa.array([ref for ref, _ in batch], type=pa.string())
        if batch and isinstance(batch[0][1], str):  # error rows
            chunk = InputChunk(
                refs, np.zeros((len(batch), 28, 28), np.uint8), [e for _, e in batch]
            )
            empty = np.empty((0, num_classes), np.float32)
            prediction = Prediction(empty, empty)
            verdicts = Verdicts(np.empty(0, np.int32), np.empty(0, np.float32))
        else:
            results: list[Any] = [result for _, result in batch]  # PredictionResult
            logits = np.stack([r.inference[0] for r in results])
            probabilities = np.stack([r.inference[1] for r in results])
            foreground = np.array([r.example[1] for r in results], dtype=np.float64)
            chunk = InputChunk(
                refs,
                np.stack([r.example[0] for r in results]),
                foreground=None if np.isnan(foreground).all() else foreground,
            )
            prediction = Prediction(logits, probabilities)
            verdicts = decide_arrays(
                probabilities,
                logits,
                temperature=self.model.temperature,
                energy_threshold=self.model.energy_threshold,
                min_confidence=self.min_confidence,
                foreground_fraction=chunk.foreground,
            )
        table, _ = self.writer.table(chunk, prediction, verdicts)
        yield table.replace_schema_metadata(None)


@dataclass(frozen=True)
class BeamResult:
    """What the Beam job wrote."""

    rows: int
    unknown: int
    errors: int
    seconds: float


def pipeline_options(
    runner: str = "DirectRunner", gcp: GcpSettings | None = None, extra: Sequence[str] = ()
) -> PipelineOptions:
    """Options of the job: DirectRunner (one worker process), or DataflowRunner from the gcp
    settings (project, region, ``gs://<bucket>/dataflow/{temp,staging}``, worker machine
    type, the SDK container image); ``extra`` are more ``--flag=value`` Beam options."""
    options = PipelineOptions(list(extra))
    options.view_as(StandardOptions).runner = runner
    if runner == "DataflowRunner":
        if gcp is None or not gcp.project or not gcp.bucket:
            raise ValueError("DataflowRunner needs gcp.project and gcp.bucket")
        cloud = options.view_as(GoogleCloudOptions)
        cloud.project, cloud.region = gcp.project, gcp.region
        cloud.temp_location = f"gs://{gcp.bucket}/dataflow/temp"
        cloud.staging_location = f"gs://{gcp.bucket}/dataflow/staging"
        cloud.job_name = "fmnist-batch-predict"
        cloud.labels = [f"{k}={v}" for k, v in gcp.labels.items()]
        if gcp.kms_key:
            cloud.dataflow_kms_key = gcp.kms_key
        if gcp.service_account:
            cloud.service_account_email = gcp.service_account
        workers = options.view_as(WorkerOptions)
        workers.machine_type = gcp.dataflow_machine_type
        workers.sdk_container_image = gcp.dataflow_image
        if gcp.network:
            workers.network = gcp.network.rsplit("/", 1)[-1]
    return options


def run_beam_batch(
    open_source: Callable[[], BatchInput],
    num_rows: int,
    model_path: Path,
    output: Path,
    *,
    name: str,
    version: str,
    min_confidence: float,
    shard_size: int = 8192,
    batch_size: int = 1024,
    options: PipelineOptions | None = None,
) -> BeamResult:
    """Predict every row of the input into the Parquet file ``output`` with Beam."""
    began = time.perf_counter()
    num_classes = OnnxClassifier(model_path).num_classes
    shards = list(range(-(-num_rows // shard_size)))
    output.parent.mkdir(parents=True, exist_ok=True)
    to_table = ToTable(str(model_path), name, version, min_confidence)
    with beam.Pipeline(options=options or pipeline_options()) as pipeline:
        rows = (
            pipeline
            | "Shards" >> beam.Create(shards)
            | "Read"
            >> beam.ParDo(ReadShard(open_source, shard_size)).with_outputs("errors", main="rows")
        )
        handler: Any = KeyedModelHandler(
            OnnxModelHandler(str(model_path), max_batch_size=batch_size)
        )
        predicted = (
            rows.rows
            | "Predict" >> RunInference(handler)
            | "Batch" >> beam.BatchElements(min_batch_size=64, max_batch_size=batch_size)
            | "Decide" >> beam.ParDo(to_table)
        )
        failed = (
            rows.errors
            | "BatchErrors" >> beam.BatchElements(min_batch_size=1, max_batch_size=batch_size)
            | "ErrorRows" >> beam.ParDo(to_table)
        )
        _ = (
            (predicted, failed)
            | "Tables" >> beam.Flatten()
            | "Write"
            >> beam.io.WriteToParquetBatched(
                str(output), schema=output_schema(num_classes), num_shards=1, shard_name_template=""
            )
        )
    table = pq.read_table(output, columns=["class_id", "error"])
    errors = table.column("error").null_count
    errors = len(table) - errors
    unknown = table.column("class_id").null_count - errors
    return BeamResult(len(table), unknown, errors, time.perf_counter() - began)
