"""``fmnist monitor drift`` and ``fmnist monitor run`` on a real prediction log and model."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from typer.testing import CliRunner

pytest.importorskip("onnxscript")
torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fmnist import CLASS_NAMES  # noqa: E402
from fmnist.cli import app  # noqa: E402
from fmnist.config import load_settings  # noqa: E402
from fmnist.data.loaders import to_tensor  # noqa: E402
from fmnist.data.sources import RawDataset  # noqa: E402
from fmnist.evaluation.drift_reference import compute_reference, save_reference  # noqa: E402
from fmnist.monitoring.feedback import FeedbackStore  # noqa: E402
from fmnist.monitoring.prediction_log import open_prediction_log  # noqa: E402
from fmnist.monitoring.records import PredictionRecord  # noqa: E402
from fmnist.registry.onnx_export import export_onnx  # noqa: E402
from fmnist.registry.onnx_runtime import OnnxClassifier  # noqa: E402

WINDOW = 400


@pytest.fixture(scope="module")
def reference_dir(raw_dataset: RawDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CNN trained briefly on 3,000 images, exported, with its reference computed on
    2,000 other training images (the validation split's role), in one folder."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10),
    )  # fmt: skip
    x = to_tensor(raw_dataset.train_images[:3000].copy())
    y = torch.from_numpy(raw_dataset.train_labels[:3000].astype(np.int64))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(150):
        idx = torch.randint(0, 3000, (64,), generator=generator)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    folder = tmp_path_factory.mktemp("reference")
    onnx_path = export_onnx(model.eval(), folder / "model.onnx")
    reference = compute_reference(
        onnx_path, raw_dataset.train_images[3000:5000], raw_dataset.train_labels[3000:5000]
    )
    save_reference(reference.with_model("fmnist-classifier", 1), folder)
    return folder


def _log(folder: Path, images: npt.NDArray[np.uint8]) -> list[str]:
    """Log one prediction per image, as the API would, into the test's home; returns ids."""
    clf = OnnxClassifier(folder / "model.onnx")
    probs = clf.predict_proba(images)
    now = datetime.now(UTC)
    records = [
        PredictionRecord(
            request_id=f"req-{i:05d}",
            timestamp=(now - timedelta(seconds=len(images) - i)).isoformat(),
            model_name="fmnist-classifier",
            model_version=1,
            model_alias="champion",
            arm="",
            input_kind="upload",
            input_digest=hashlib.sha256(image.tobytes()).hexdigest(),
            pixels=image.tobytes(),
            probabilities=tuple(float(v) for v in p),
            predicted_class=CLASS_NAMES[int(p.argmax())],
            confidence=float(p.max()),
            latency_ms=1.0,
        )
        for i, (image, p) in enumerate(zip(images, probs, strict=True))
    ]
    log = open_prediction_log(load_settings().settings)
    try:
        log.append(records)
    finally:
        log.close()
    return [r.request_id for r in records]


def _drift_json(folder: Path, *extra: str) -> dict:
    result = CliRunner().invoke(
        app,
        ["monitor", "drift", "--last", str(WINDOW), "--json", "--reference", str(folder), *extra],
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1  # exactly one JSON object
    payload: dict = json.loads(lines[0])
    return payload


def test_clean_traffic_is_no_drift_and_the_report_is_written(
    reference_dir: Path, raw_dataset: RawDataset
) -> None:
    _log(reference_dir, raw_dataset.test_images[:WINDOW])
    payload = _drift_json(reference_dir)
    assert payload["drift_detected"] is False
    assert (
        payload["window"]["size"] == WINDOW
        and payload["window"]["start"] < payload["window"]["end"]
    )
    assert payload["reference"]["model_name"] == "fmnist-classifier"
    assert payload["reference"]["model_version"] == 1
    names = {t["name"] for t in payload["tests"]}
    assert {"bbsd_ks", "mmd", "prediction_chi2", "confidence_ks", "mean_intensity_ks"} <= names
    for test in payload["tests"]:
        assert {"statistic", "p_value", "threshold", "fired", "details"} <= set(test)
    report = Path(payload["report_path"])
    assert sorted(p.name for p in report.iterdir()) == [
        "drift.json",
        "evidently.json",
        "report.html",
    ]
    assert json.loads((report / "drift.json").read_text())["drift_detected"] is False
    assert "metrics" in json.loads((report / "evidently.json").read_text())


def test_dimmed_and_translated_traffic_is_drift(
    reference_dir: Path, raw_dataset: RawDataset
) -> None:
    images = raw_dataset.test_images[:WINDOW]
    shifted = np.zeros_like(images)
    shifted[:, 2:, 2:] = (images[:, :-2, :-2] * 0.6).astype(np.uint8)
    _log(reference_dir, shifted)
    payload = _drift_json(reference_dir)
    assert payload["drift_detected"] is True
    fired = {t["name"] for t in payload["tests"] if t["fired"]}
    assert {"mean_intensity_ks", "bbsd_ks"} <= fired


def test_feedback_enters_the_live_accuracy_test(
    reference_dir: Path, raw_dataset: RawDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FMNIST_DRIFT__WRITE_REPORTS", "false")
    ids = _log(reference_dir, raw_dataset.test_images[:WINDOW])
    log = open_prediction_log(load_settings().settings)
    try:
        store = FeedbackStore(log)
        for rid, label in zip(ids[:100], raw_dataset.test_labels[:100], strict=True):
            store.record(rid, int(label))
    finally:
        log.close()
    payload = _drift_json(reference_dir)
    accuracy = next(t for t in payload["tests"] if t["name"] == "live_accuracy")
    assert accuracy["details"]["labelled"] == 100 and accuracy["p_value"] is not None
    assert payload["report_path"] is None


def test_table_output_and_run_once(reference_dir: Path, raw_dataset: RawDataset) -> None:
    _log(reference_dir, raw_dataset.test_images[:WINDOW])
    runner = CliRunner()
    table = runner.invoke(
        app, ["monitor", "drift", "--last", str(WINDOW), "--reference", str(reference_dir)]
    )
    assert table.exit_code == 0, table.output
    assert "no drift" in table.stdout and "bbsd_ks" in table.stdout
    once = runner.invoke(
        app,
        ["monitor", "run", "--once", "--port", "0", "--last", str(WINDOW),
         "--reference", str(reference_dir)],
    )  # fmt: skip
    assert once.exit_code == 0, once.output
    assert json.loads(once.stdout.strip().splitlines()[-1])["drift_detected"] is False


def test_too_few_predictions_is_an_error(reference_dir: Path, raw_dataset: RawDataset) -> None:
    _log(reference_dir, raw_dataset.test_images[:10])
    result = CliRunner().invoke(
        app, ["monitor", "drift", "--json", "--reference", str(reference_dir)]
    )
    assert result.exit_code != 0
    assert "min_window" in result.output


def test_reference_folder_without_model_needs_the_registry(
    reference_dir: Path, tmp_path: Path
) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("drift_reference.npz", "drift_reference.json"):
        shutil.copyfile(reference_dir / name, bare / name)
    result = CliRunner().invoke(app, ["monitor", "drift", "--reference", str(bare)])
    assert result.exit_code != 0
