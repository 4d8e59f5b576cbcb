"""The drift monitor against a real registry: the version's model and reference are found,
computed from the snapshot when missing, read from the run's artifacts when registered."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fmnist import CLASS_NAMES
from fmnist.cli import app
from fmnist.composition import build_services
from fmnist.config import load_settings
from fmnist.data.snapshot import load_snapshot
from fmnist.data.sources import RawDataset
from fmnist.evaluation.drift_reference import REFERENCE_FILES, compute_reference, save_reference
from fmnist.monitoring.monitor import REFERENCE_ARTIFACT_DIR, resolve_target
from fmnist.monitoring.prediction_log import open_prediction_log
from fmnist.monitoring.records import PredictionRecord
from fmnist.platform.services import Services
from fmnist.registry.onnx_runtime import OnnxClassifier
from tracking_home import TinyModels, register_tiny_models, set_env


@pytest.fixture(scope="module")
def tiny(
    tmp_path_factory: pytest.TempPathFactory, raw_subset: RawDataset, mlflow_template_db: Path
) -> TinyModels:
    """One tiny registered champion."""
    return register_tiny_models(tmp_path_factory.mktemp("drift"), raw_subset, mlflow_template_db)


@pytest.fixture
def services(tiny: TinyModels, monkeypatch: pytest.MonkeyPatch) -> Services:
    """The services of the tiny home, with a clean monitor cache."""
    set_env(monkeypatch, tiny.env)
    settings = load_settings().settings
    shutil.rmtree(settings.home / "monitoring", ignore_errors=True)
    return build_services(settings)


def test_reference_of_the_champion_is_found_and_cached(
    tiny: TinyModels, services: Services
) -> None:
    registry = services.registry()
    champion = registry.get("champion")
    assert champion.run_id is not None
    logged = {Path(f).name for f in registry.list_run_artifacts(champion.run_id, "evaluation")}
    target = resolve_target(services, "champion")
    # Registration stores the reference (evaluation/drift_reference.*); without it the monitor
    # computes one from the validation split of the version's snapshot.
    registered = set(REFERENCE_FILES) <= logged
    assert target.origin.startswith("artifact" if registered else "computed from the validation")
    info = target.reference.info
    assert info.model_name == "fmnist-classifier" and info.model_version == champion.version
    val_images, _ = load_snapshot(services.storage, tiny.snapshot_id).split("val")
    assert info.n == len(val_images) and info.accuracy is not None
    assert info.embedding_kind == "penultimate"
    assert resolve_target(services, "champion").origin.startswith("cached")


def test_a_registered_reference_artifact_is_used(services: Services, tmp_path: Path) -> None:
    registry = services.registry()
    champion = registry.get("champion")
    assert champion.run_id is not None
    folder = Path(registry.download(str(champion.version), tmp_path / "model"))
    images, labels = load_snapshot(services.storage, champion.tags["snapshot_id"]).split("val")
    reference = compute_reference(folder / "model.onnx", images, labels, pca_dims=4)
    for path in save_reference(reference, tmp_path / "ref"):
        registry.log_artifact(champion.run_id, path, REFERENCE_ARTIFACT_DIR)
    target = resolve_target(services, str(champion.version))
    assert target.origin == f"artifact of run {champion.run_id}"
    assert target.reference.info.pca_dims == 4
    assert target.reference.info.model_version == champion.version


def test_monitor_drift_through_the_registry(services: Services) -> None:
    champion = services.registry().get("champion")
    target = resolve_target(services, "champion")
    images = load_snapshot(services.storage, champion.tags["snapshot_id"]).split("test")[0][:300]
    probs = OnnxClassifier(target.embedder.path).predict_proba(images)
    now = datetime.now(UTC)
    records = [
        PredictionRecord(
            request_id=f"r{i}",
            timestamp=(now - timedelta(seconds=300 - i)).isoformat(),
            model_name="fmnist-classifier",
            model_version=champion.version,
            model_alias="champion",
            arm="",
            input_kind="upload",
            input_digest=hashlib.sha256(image.tobytes()).hexdigest(),
            pixels=image.tobytes(),
            probabilities=tuple(float(v) for v in p),
            predicted_class=CLASS_NAMES[int(np.argmax(p))],
            confidence=float(np.max(p)),
            latency_ms=1.0,
        )
        for i, (image, p) in enumerate(zip(images, probs, strict=True))
    ]
    log = open_prediction_log(services.settings)
    try:
        log.append(records)
    finally:
        log.close()
    result = CliRunner().invoke(app, ["monitor", "drift", "--last", "300", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["drift_detected"] is False
    assert payload["reference"]["model_version"] == champion.version
    assert payload["window"]["size"] == 300
