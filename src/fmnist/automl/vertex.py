"""Vertex AI AutoML image classification: export a snapshot in its import format, launch a job.

The export writes every image of a snapshot as a PNG under a bucket prefix (any fsspec URL:
``gs://`` for Vertex AI, a local folder for tests) and a CSV import file with one line per
image, ``ML_USE,GCS_PATH,LABEL``. ``ML_USE`` is ``training``, ``validation`` or ``test`` and
follows the snapshot's own splits, so AutoML is scored on exactly the test set the leaderboard
uses. Label names are made safe for Vertex AI (letters, digits and underscores, starting with a
letter): ``T-shirt/top`` becomes ``T_shirt_top``.

The job specification mirrors the google-cloud-aiplatform calls (``aiplatform.init``,
``ImageDataset.create``, ``AutoMLImageTrainingJob(prediction_type="classification",
model_type="CLOUD")`` and ``job.run``); :func:`launch` makes them. The package is imported
lazily and is not a dependency of fmnist: ``pip install google-cloud-aiplatform`` to launch.
Costs are described in ``docs/automl.md``.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import numpy.typing as npt

from fmnist import CLASS_NAMES
from fmnist.atomic import atomic_write_bytes
from fmnist.data.snapshot import SPLITS, Snapshot
from fmnist.errors import ConfigError, FmnistError
from fmnist.platform.storage import Storage

ML_USE: dict[str, str] = {"train": "training", "val": "validation", "test": "test"}
"""Snapshot split -> Vertex AI ``ML_USE`` value."""
IMPORT_SCHEMA_URI = (
    "gs://google-cloud-aiplatform/schema/dataset/ioformat/"
    "image_classification_single_label_io_format_1.0.0.yaml"
)
"""The single-label image classification import schema (``aiplatform.schema.dataset.ioformat
.image.single_label_classification``)."""
ML_USE_LABEL = "aiplatform.googleapis.com/ml_use"
DEFAULT_BUDGET_NODE_HOURS = 8.0
"""Vertex AI's minimum (and the SDK's default) training budget for cloud image classification."""
MAX_BUDGET_NODE_HOURS = 800.0
USD_PER_TRAINING_NODE_HOUR = 3.465
"""AutoML image training price at the time of writing; check current pricing."""
AIPLATFORM_MISSING = (
    "google-cloud-aiplatform is not installed: pip install google-cloud-aiplatform "
    "(or use --dry-run to print the job specification)"
)

_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


class AutomlError(FmnistError):
    """The AutoML export or launch cannot be done as asked."""


def vertex_label(name: str) -> str:
    """``name`` in Vertex AI's label charset: letters, digits, underscores; starts with a letter.

    >>> vertex_label("T-shirt/top"), vertex_label("Ankle boot")
    ('T_shirt_top', 'Ankle_boot')
    """
    label = _UNSAFE.sub("_", name).strip("_")
    if not label or not label[0].isalpha():
        label = f"class_{label}"
    return label[:128]


VERTEX_LABELS: tuple[str, ...] = tuple(vertex_label(n) for n in CLASS_NAMES)
"""Vertex AI label of each class id."""


def png_bytes(image: npt.NDArray[np.uint8]) -> bytes:
    """A 28x28 uint8 image as an 8-bit grayscale PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _join(prefix: str, key: str) -> str:
    return f"{prefix.rstrip('/')}/{key}"


def write_url(url: str, data: bytes) -> None:
    """Write ``data`` to an fsspec URL or local path (atomically for local files)."""
    fs, path = fsspec.core.url_to_fs(url)
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    if "file" in protocols:
        atomic_write_bytes(Path(path), data)
    else:
        fs.pipe_file(path, data)


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it holds."""

    csv_url: str
    image_prefix: str
    snapshot_id: str
    rows: int
    counts: dict[str, int]
    labels: dict[str, str] = field(default_factory=dict)
    """Original class name -> Vertex AI label."""


@dataclass(frozen=True)
class ImportRow:
    """One line of the import CSV and the snapshot image it comes from."""

    ml_use: str
    url: str
    label: str
    split: str
    position: int
    """Row of the image in its snapshot split."""

    def csv_fields(self) -> list[str]:
        """``[ML_USE, GCS_PATH, LABEL]``."""
        return [self.ml_use, self.url, self.label]


def import_rows(
    snapshot: Snapshot, image_prefix: str, limit_per_split: int | None = None
) -> list[ImportRow]:
    """The rows to export, split by split.

    Image keys are ``<ml_use>/<label>/<source_index>.png``; ``source_index`` is the image's row
    in the original file (train and validation both come from the training file, so their
    keys never collide).
    """
    rows = []
    for split in SPLITS:
        _, labels = snapshot.split(split)
        index = snapshot.source_index[split]
        n = len(labels) if limit_per_split is None else min(limit_per_split, len(labels))
        for i in range(n):
            label = VERTEX_LABELS[int(labels[i])]
            key = f"{ML_USE[split]}/{label}/{int(index[i]):05d}.png"
            rows.append(ImportRow(ML_USE[split], _join(image_prefix, key), label, split, i))
    return rows


def export_snapshot(
    snapshot: Snapshot,
    bucket: str,
    open_storage: Callable[[str], Storage],
    *,
    csv_url: str | None = None,
    limit_per_split: int | None = None,
    workers: int = 16,
) -> ExportResult:
    """Write ``snapshot`` as PNG files under ``<bucket>/images`` and a Vertex AI import CSV.

    ``csv_url`` defaults to ``<bucket>/import.csv``; ``limit_per_split`` keeps the first N
    images of each split (for a cheap trial run). A manifest ``export.json`` is written next to
    the images. Uploads run on ``workers`` threads; the CSV is written after every image.
    """
    if workers < 1:
        raise ConfigError("workers must be at least 1")
    image_prefix = _join(bucket, "images")
    csv_url = csv_url or _join(bucket, "import.csv")
    rows = import_rows(snapshot, image_prefix, limit_per_split)
    try:
        storage = open_storage(image_prefix)
    except FmnistError as exc:  # gs:// needs gcsfs, s3:// needs s3fs
        raise AutomlError(f"cannot write to {image_prefix}: {exc}") from None

    def upload(row: ImportRow) -> None:
        key = row.url.removeprefix(image_prefix + "/")
        storage.write_bytes(key, png_bytes(snapshot.images[row.split][row.position]))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(upload, rows):
            pass

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerows(row.csv_fields() for row in rows)
    write_url(csv_url, text.getvalue().encode("utf-8"))

    counts = {ml_use: sum(r.ml_use == ml_use for r in rows) for ml_use in ML_USE.values()}
    result = ExportResult(
        csv_url=csv_url,
        image_prefix=image_prefix,
        snapshot_id=snapshot.snapshot_id,
        rows=len(rows),
        counts=counts,
        labels=dict(zip(CLASS_NAMES, VERTEX_LABELS, strict=True)),
    )
    manifest = asdict(result) | {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "import_schema_uri": IMPORT_SCHEMA_URI,
        "limit_per_split": limit_per_split,
    }
    write_url(_join(bucket, "export.json"), json.dumps(manifest, indent=2).encode("utf-8"))
    return result


def estimated_training_usd(node_hours: float) -> float:
    """Training cost at :data:`USD_PER_TRAINING_NODE_HOUR` (a ceiling: early stopping may end
    sooner). Deployment is billed separately; see ``docs/automl.md``."""
    return round(node_hours * USD_PER_TRAINING_NODE_HOUR, 2)


@dataclass(frozen=True)
class AutomlJobSpec:
    """The google-cloud-aiplatform calls that create the dataset and run the training job."""

    init: dict[str, Any]
    dataset: dict[str, Any]
    training_job: dict[str, Any]
    run: dict[str, Any]
    cost: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (what ``--dry-run`` prints)."""
        return asdict(self)


def build_job_spec(
    csv_url: str,
    *,
    project: str | None,
    location: str,
    staging_bucket: str | None = None,
    display_name: str = "fmnist-automl",
    budget_node_hours: float = DEFAULT_BUDGET_NODE_HOURS,
    disable_early_stopping: bool = False,
) -> AutomlJobSpec:
    """The job specification for an import CSV written by :func:`export_snapshot`.

    The split follows the CSV's ``ML_USE`` column through filter splits on the
    ``aiplatform.googleapis.com/ml_use`` label Vertex AI gives each imported image.
    """
    if not DEFAULT_BUDGET_NODE_HOURS <= budget_node_hours <= MAX_BUDGET_NODE_HOURS:
        raise ConfigError(
            f"budget must be {DEFAULT_BUDGET_NODE_HOURS:g} to {MAX_BUDGET_NODE_HOURS:g} node "
            f"hours for cloud image classification, got {budget_node_hours:g}"
        )
    if not csv_url.endswith(".csv"):
        raise ConfigError(f"the import file must end in .csv, got {csv_url}")
    warnings = []
    if not csv_url.startswith("gs://"):
        warnings.append(f"{csv_url} is not in Cloud Storage: Vertex AI imports only gs:// files")
    if project is None:
        warnings.append("no project: set gcp.project (FMNIST_GCP__PROJECT) or --project")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    milli = round(budget_node_hours * 1000)
    return AutomlJobSpec(
        init={"project": project, "location": location, "staging_bucket": staging_bucket},
        dataset={
            "display_name": f"{display_name}-data-{stamp}",
            "gcs_source": [csv_url],
            "import_schema_uri": IMPORT_SCHEMA_URI,
        },
        training_job={
            "display_name": f"{display_name}-{stamp}",
            "prediction_type": "classification",
            "multi_label": False,
            "model_type": "CLOUD",
            "base_model": None,
        },
        run={
            "model_display_name": display_name,
            "budget_milli_node_hours": milli,
            "disable_early_stopping": disable_early_stopping,
            "training_filter_split": f"labels.{ML_USE_LABEL}=training",
            "validation_filter_split": f"labels.{ML_USE_LABEL}=validation",
            "test_filter_split": f"labels.{ML_USE_LABEL}=test",
        },
        cost={
            "training_node_hours": budget_node_hours,
            "usd_per_training_node_hour": USD_PER_TRAINING_NODE_HOUR,
            "estimated_max_training_usd": estimated_training_usd(budget_node_hours),
            "note": "list price at the time of writing, check current pricing; deploying the "
            "model to an endpoint is billed per node hour on top (see docs/automl.md)",
        },
        warnings=warnings,
    )


def import_aiplatform() -> Any:
    """``google.cloud.aiplatform``, or :class:`AutomlError` telling how to install it."""
    try:
        return importlib.import_module("google.cloud.aiplatform")
    except ImportError:
        raise AutomlError(AIPLATFORM_MISSING) from None


def launch(spec: AutomlJobSpec, *, sync: bool = False) -> dict[str, str]:
    """Create the dataset and start the AutoML training job described by ``spec``.

    With ``sync=False`` it returns once the training pipeline exists (the job goes on in
    Vertex AI); returns the resource names.
    """
    if spec.init.get("project") is None:
        raise AutomlError("no Google Cloud project: set gcp.project or pass --project")
    gcs = spec.dataset["gcs_source"]
    if not all(str(u).startswith("gs://") for u in gcs):
        raise AutomlError(f"Vertex AI imports only gs:// files, got {', '.join(gcs)}")
    aiplatform = import_aiplatform()
    aiplatform.init(**{k: v for k, v in spec.init.items() if v is not None})
    dataset = aiplatform.ImageDataset.create(**spec.dataset)
    job = aiplatform.AutoMLImageTrainingJob(**spec.training_job)
    job.run(dataset=dataset, sync=sync, **spec.run)
    if not sync and hasattr(job, "wait_for_resource_creation"):
        job.wait_for_resource_creation()
    return {
        "dataset": str(getattr(dataset, "resource_name", "")),
        "training_job": str(getattr(job, "resource_name", "")),
    }


def read_import_csv(text: str) -> list[Sequence[str]]:
    """The rows of an import CSV (for checks and tests)."""
    return list(csv.reader(io.StringIO(text)))
