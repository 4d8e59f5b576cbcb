"""Vertex AI AutoML: the export format, the label mapping, the job specification, the launch."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from unittest.mock import create_autospec

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import fmnist.data.snapshot as snapshot_module
from fmnist import CLASS_NAMES
from fmnist.automl import vertex as vertex_automl
from fmnist.automl.vertex import (
    VERTEX_LABELS,
    AutomlError,
    build_job_spec,
    export_snapshot,
    launch,
    read_import_csv,
    vertex_label,
)
from fmnist.cli import app
from fmnist.composition import build_services
from fmnist.data.snapshot import Manifest, Snapshot
from fmnist.errors import ConfigError
from fmnist.platform.storage import Storage

COUNTS = {"train": 30, "val": 10, "test": 20}
AIPLATFORM = "google.cloud.aiplatform"


def fake_snapshot() -> Snapshot:
    """A small snapshot with random pixels and labels cycling through the classes."""
    rng = np.random.default_rng(0)
    images, labels, index = {}, {}, {}
    offset = 0
    for split, n in COUNTS.items():
        images[split] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels[split] = (np.arange(n) % 10).astype(np.uint8)
        start = 0 if split == "test" else offset
        index[split] = np.arange(start, start + n, dtype=np.int32)
        if split != "test":
            offset += n
    manifest = Manifest(
        snapshot_id="abc123",
        layout_version=1,
        created_at="2026-01-01T00:00:00+00:00",
        code_version="test",
        source="synthetic",
        content_hash="0" * 64,
        source_checksums={},
        format="npz",
        split_seed=0,
        val_fraction=0.1,
        counts=COUNTS,
        files={},
        validation={},
    )
    return Snapshot(manifest=manifest, images=images, labels=labels, source_index=index)


@pytest.fixture
def no_aiplatform(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import google.cloud.aiplatform`` fail, installed or not."""
    monkeypatch.setitem(sys.modules, AIPLATFORM, None)


def test_labels_fit_the_vertex_charset() -> None:
    assert vertex_label("T-shirt/top") == "T_shirt_top"
    assert vertex_label("Ankle boot") == "Ankle_boot"
    assert vertex_label("3 piece") == "class_3_piece"
    assert len(set(VERTEX_LABELS)) == len(CLASS_NAMES)
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,127}", label) for label in VERTEX_LABELS)


def open_storage(url: str) -> Storage:
    """Storage at ``url`` through the composition root, as the CLI gets it."""
    from fmnist.config import Settings

    return build_services(Settings()).open_storage(url)


def test_export_writes_pngs_and_a_csv_matching_the_splits(tmp_path: Path) -> None:
    snapshot = fake_snapshot()
    bucket = tmp_path / "bucket"
    result = export_snapshot(snapshot, str(bucket), open_storage, workers=4)

    rows = read_import_csv((bucket / "import.csv").read_text())
    assert result.csv_url == f"{bucket}/import.csv"
    assert len(rows) == result.rows == sum(COUNTS.values())
    assert all(len(row) == 3 for row in rows)
    uses = [row[0] for row in rows]
    assert result.counts == {"training": 30, "validation": 10, "test": 20}
    assert {u: uses.count(u) for u in set(uses)} == result.counts
    assert {row[2] for row in rows} == set(VERTEX_LABELS)

    first_test = next(row for row in rows if row[0] == "test")
    assert first_test[1] == f"{bucket}/images/test/T_shirt_top/00000.png"
    pixels = np.asarray(Image.open(first_test[1]))
    np.testing.assert_array_equal(pixels, snapshot.images["test"][0])
    for ml_use, path, label in rows:
        assert Path(path).is_file()
        assert f"/images/{ml_use}/{label}/" in path
    assert len(list(bucket.rglob("*.png"))) == len(rows)  # no key collides

    manifest = json.loads((bucket / "export.json").read_text())
    assert manifest["snapshot_id"] == "abc123"
    assert manifest["labels"]["T-shirt/top"] == "T_shirt_top"


def test_export_to_a_file_url_with_a_limit_and_another_csv(tmp_path: Path) -> None:
    bucket = f"file://{tmp_path}/b"
    csv_url = f"file://{tmp_path}/lists/fmnist.csv"
    result = export_snapshot(
        fake_snapshot(), bucket, open_storage, csv_url=csv_url, limit_per_split=3
    )
    rows = read_import_csv((tmp_path / "lists" / "fmnist.csv").read_text())
    assert result.counts == {"training": 3, "validation": 3, "test": 3}
    assert [r[0] for r in rows] == ["training"] * 3 + ["validation"] * 3 + ["test"] * 3
    assert rows[0][1].startswith(f"{bucket}/images/training/")
    assert Path(rows[0][1].removeprefix("file://")).is_file()


def test_job_spec_describes_a_cloud_classification_job() -> None:
    spec = build_job_spec(
        "gs://b/fmnist/import.csv", project="p", location="europe-west4", staging_bucket="gs://b"
    )
    assert spec.init == {"project": "p", "location": "europe-west4", "staging_bucket": "gs://b"}
    assert spec.dataset["gcs_source"] == ["gs://b/fmnist/import.csv"]
    assert spec.dataset["import_schema_uri"].endswith(
        "image_classification_single_label_io_format_1.0.0.yaml"
    )
    assert spec.training_job["prediction_type"] == "classification"
    assert spec.training_job["model_type"] == "CLOUD"
    assert spec.training_job["multi_label"] is False
    assert spec.run["budget_milli_node_hours"] == 8000
    assert spec.run["training_filter_split"] == "labels.aiplatform.googleapis.com/ml_use=training"
    assert spec.run["validation_filter_split"].endswith("ml_use=validation")
    assert spec.run["test_filter_split"].endswith("ml_use=test")
    assert spec.cost["estimated_max_training_usd"] == pytest.approx(27.72)
    assert spec.warnings == []
    json.dumps(spec.to_dict())


def test_job_spec_rejects_bad_budgets_and_warns_about_local_files() -> None:
    with pytest.raises(ConfigError, match="8 to 800 node hours"):
        build_job_spec("gs://b/i.csv", project="p", location="us-central1", budget_node_hours=2)
    with pytest.raises(ConfigError, match=r"must end in \.csv"):
        build_job_spec("gs://b/i.txt", project="p", location="us-central1")
    spec = build_job_spec("/tmp/i.csv", project=None, location="us-central1", budget_node_hours=20)
    assert spec.run["budget_milli_node_hours"] == 20_000
    assert any("not in Cloud Storage" in w for w in spec.warnings)
    assert any("no project" in w for w in spec.warnings)


def test_launch_without_the_package_tells_how_to_install(no_aiplatform: None) -> None:
    spec = build_job_spec("gs://b/i.csv", project="p", location="us-central1")
    with pytest.raises(AutomlError, match="pip install google-cloud-aiplatform"):
        launch(spec)


def test_launch_makes_the_sdk_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.cloud import aiplatform

    # Autospecs of the real SDK: a wrong argument name or a missing method fails the test.
    init = create_autospec(aiplatform.init)
    dataset = create_autospec(aiplatform.ImageDataset, instance=True)
    dataset.resource_name = "projects/p/locations/l/datasets/1"
    create = create_autospec(aiplatform.ImageDataset.create, return_value=dataset)
    job = create_autospec(aiplatform.AutoMLImageTrainingJob, instance=True)
    job.resource_name = "projects/p/locations/l/trainingPipelines/2"
    job_class = create_autospec(aiplatform.AutoMLImageTrainingJob, return_value=job)
    monkeypatch.setattr(aiplatform, "init", init)
    monkeypatch.setattr(aiplatform.ImageDataset, "create", create)
    monkeypatch.setattr(aiplatform, "AutoMLImageTrainingJob", job_class)

    spec = build_job_spec("gs://b/i.csv", project="p", location="us-central1")
    names = launch(spec)

    assert names == {"dataset": dataset.resource_name, "training_job": job.resource_name}
    init.assert_called_once_with(project="p", location="us-central1")
    create.assert_called_once_with(**spec.dataset)
    assert create.call_args.kwargs["gcs_source"] == ["gs://b/i.csv"]
    job_class.assert_called_once_with(**spec.training_job)
    assert job_class.call_args.kwargs["model_type"] == "CLOUD"
    job.run.assert_called_once_with(dataset=dataset, sync=False, **spec.run)
    assert job.run.call_args.kwargs["budget_milli_node_hours"] == 8000
    job.wait_for_resource_creation.assert_called_once_with()


def test_launch_refuses_local_csv_before_importing(no_aiplatform: None) -> None:
    spec = build_job_spec("/tmp/i.csv", project="p", location="us-central1")
    with pytest.raises(AutomlError, match="only gs:// files"):
        launch(spec)


def test_cli_dry_run_prints_the_spec_without_the_package(no_aiplatform: None) -> None:
    args = ["automl", "launch", "--bucket", "gs://b/fmnist", "--dry-run", "--project", "p"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    spec = json.loads(result.output)
    assert spec["dataset"]["gcs_source"] == ["gs://b/fmnist/import.csv"]
    assert spec["init"]["location"] == "europe-west4"  # gcp.region's default


def test_cli_launch_without_the_package_is_a_one_line_error(no_aiplatform: None) -> None:
    args = ["automl", "launch", "--csv", "gs://b/fmnist/import.csv", "--project", "p"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "pip install google-cloud-aiplatform" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_export(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(snapshot_module, "load_snapshot", lambda storage, sid=None: fake_snapshot())
    bucket = tmp_path / "out"
    result = CliRunner().invoke(app, ["automl", "export-vertex", "--bucket", str(bucket)])
    assert result.exit_code == 0, result.output
    assert "60 images (30 training, 10 validation, 20 test)" in result.output
    assert len(read_import_csv((bucket / "import.csv").read_text())) == 60


def test_png_is_grayscale_and_lossless() -> None:
    image = np.arange(784, dtype=np.uint32).reshape(28, 28).astype(np.uint8)
    decoded = Image.open(io.BytesIO(vertex_automl.png_bytes(image)))
    assert decoded.mode == "L" and decoded.size == (28, 28)
    np.testing.assert_array_equal(np.asarray(decoded), image)
