"""The model lifecycle end to end on real data: snapshot, train, evaluate, register, promote.

One tiny scenario (5,000 training images, 2 epochs, 1 thread) is run once per module with a
real MLflow SQLite store; the tests assert different parts of what it produced.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fmnist.cli import app
from fmnist.composition import build_services
from fmnist.config import Settings, load_settings
from fmnist.data.snapshot import load_snapshot
from fmnist.data.sources import RawDataset
from fmnist.evaluation.gates import apply_gates
from fmnist.evaluation.metrics import evaluate_logits
from fmnist.evaluation.run import EvaluationOutcome
from fmnist.models import build_model
from fmnist.platform.storage import FsspecStorage
from fmnist.registry.mlflow_registry import CHALLENGER, CHAMPION, RegistryError
from fmnist.registry.onnx_export import export_onnx_checked
from fmnist.registry.onnx_runtime import OnnxClassifier
from fmnist.training.run import TrainedRun
from tracking_home import register_tiny_models


@dataclass
class Scenario:
    """What the module's lifecycle run produced."""

    settings: Settings
    env: dict[str, str]
    snapshot_id: str
    first: TrainedRun
    first_outcome: EvaluationOutcome
    second: TrainedRun
    second_outcome: EvaluationOutcome


@pytest.fixture(scope="module")
def scenario(
    tmp_path_factory: pytest.TempPathFactory, raw_subset: RawDataset, mlflow_template_db: Path
) -> Scenario:
    """Snapshot a real subset, train and evaluate two tiny models with gates a tiny model passes."""
    tiny = register_tiny_models(
        tmp_path_factory.mktemp("lifecycle"),
        raw_subset,
        mlflow_template_db,
        seeds=(0, 1),
        quantized_seeds=(0,),
    )
    (first, second), (first_outcome, second_outcome) = tiny.runs, tiny.outcomes
    return Scenario(
        tiny.settings, tiny.env, tiny.snapshot_id, first, first_outcome, second, second_outcome
    )


def test_tiny_training_is_far_above_chance(scenario: Scenario) -> None:
    assert scenario.first.result.best_val_accuracy > 0.5
    assert scenario.first_outcome.report.accuracy > 0.5  # chance is 0.1
    assert scenario.first.result.history[-1].epoch == 2
    assert scenario.first.parity.passed
    assert scenario.first.temperature > 0


def test_first_model_becomes_champion(scenario: Scenario) -> None:
    outcome = scenario.first_outcome
    assert outcome.decision.passed, outcome.decision.reasons
    assert outcome.promoted
    assert outcome.version is not None
    assert CHAMPION in outcome.version.aliases
    assert outcome.version.tags["gate.passed"] == "true"
    assert outcome.champion_version is None  # nothing to compare with yet


def test_second_model_is_compared_with_champion_by_mcnemar(scenario: Scenario) -> None:
    outcome = scenario.second_outcome
    assert outcome.champion_version == scenario.first_outcome.version.version  # type: ignore[union-attr]
    assert outcome.decision.mcnemar is not None
    assert "champion" in outcome.decision.checks
    registry = build_services(scenario.settings).registry()
    assert registry.get(CHALLENGER).version == outcome.version.version  # type: ignore[union-attr]
    if not outcome.decision.checks["champion"]:
        assert any("McNemar" in r for r in outcome.decision.reasons)
        assert registry.get(CHAMPION).version == scenario.first_outcome.version.version  # type: ignore[union-attr]


def test_registered_version_carries_onnx_weights_signature_and_example(
    scenario: Scenario, tmp_path: Path
) -> None:
    registry = build_services(scenario.settings).registry()
    folder = registry.download(CHAMPION, tmp_path)
    assert (folder / "model.onnx").is_file()
    assert (folder / "weights.pt").is_file()
    model_root = folder.parent
    mlmodel = (model_root / "MLmodel").read_text()
    assert "signature" in mlmodel
    assert "input_example" in mlmodel or (model_root / "input_example.json").exists()
    classifier = OnnxClassifier(folder / "model.onnx")
    snapshot = load_snapshot(FsspecStorage(scenario.settings.resolved_lake_url))
    images, labels = snapshot.split("test")
    accuracy = float((classifier.predict(images) == labels).mean())
    assert accuracy == pytest.approx(scenario.first_outcome.report.accuracy)


def test_pyfunc_flavour_predicts_probabilities(scenario: Scenario) -> None:
    import mlflow.pyfunc

    registry = build_services(scenario.settings).registry()
    mlflow.set_tracking_uri(registry.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{registry.model_name}@{CHAMPION}")
    snapshot = load_snapshot(FsspecStorage(scenario.settings.resolved_lake_url))
    probs = np.asarray(model.predict(snapshot.split("test")[0][:5].astype(np.float32)))
    assert probs.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_evaluation_artifacts_exist(scenario: Scenario) -> None:
    artifacts = scenario.first_outcome.artifacts
    for name in ("confusion_matrix", "reliability_diagram", "model_card", "per_class"):
        assert artifacts[name].is_file(), name
    assert artifacts["confusion_matrix"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = artifacts["model_card"].read_text()
    assert "Accuracy" in card and scenario.snapshot_id in card
    parameters = card.split("- Parameters: ")[1].split("\n")[0]
    assert int(parameters) == scenario.first.result.parameters
    report = scenario.first_outcome.report
    assert report.temperature is not None
    assert report.robustness is not None and "rotation" in report.robustness
    quantization = scenario.first_outcome.quantization
    assert quantization is not None
    assert quantization.accepted == (quantization.accuracy_drop_points < 0.3)


def test_promote_and_rollback_via_cli(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in scenario.env.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    registry = build_services(scenario.settings).registry()
    before = registry.get(CHAMPION).version
    second = scenario.second_outcome.version.version  # type: ignore[union-attr]
    target = second if before != second else scenario.first_outcome.version.version  # type: ignore[union-attr]

    result = runner.invoke(app, ["models", "promote", str(target)])
    assert result.exit_code == 0, result.output
    assert registry.get(CHAMPION).version == target

    result = runner.invoke(app, ["models", "rollback"])
    assert result.exit_code == 0, result.output
    assert registry.get(CHAMPION).version == before
    assert f"to {before}" in result.output

    listing = runner.invoke(app, ["models", "list", "--json"])
    assert listing.exit_code == 0
    assert '"champion"' in listing.output

    shown = runner.invoke(app, ["models", "show", "champion"])
    assert shown.exit_code == 0 and f'"version": {before}' in shown.output

    audited = runner.invoke(app, ["audit", "--json", "--last", "2"])
    assert audited.exit_code == 0, audited.output
    promoted, rolled_back = (json.loads(line) for line in audited.stdout.splitlines())
    assert (promoted["action"], promoted["details"]["version"]) == ("promote", target)
    assert promoted["details"]["previous"] == before
    assert (rolled_back["action"], rolled_back["details"]["version"]) == ("rollback", before)


def test_unknown_version_is_a_one_line_error(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in scenario.env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["models", "show", "999"])
    assert result.exit_code == 2
    assert "no version or alias '999'" in result.output
    assert "Traceback" not in result.output


def test_rollback_without_history_fails_clearly(tmp_path: Path) -> None:
    settings = load_settings().settings
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        build_services(settings).registry().rollback()


def test_untrained_model_is_rejected_with_reasons(raw_subset: RawDataset, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("cnn", widths=[16, 32], convs_per_stage=1).eval()
    path = tmp_path / "untrained.onnx"
    export_onnx_checked(model, path, raw_subset.test_images[:200])
    classifier = OnnxClassifier(path)
    logits = classifier.predict_logits(raw_subset.test_images)
    report = evaluate_logits(logits, raw_subset.test_labels, temperature=1.0)
    decision = apply_gates(report, load_settings().settings.gates)
    assert not decision.passed
    assert not decision.checks["accuracy"] and not decision.checks["class_recall"]
    assert any(r.startswith("accuracy ") and "< minimum 0.900" in r for r in decision.reasons)
    assert any("class recall below minimum" in r for r in decision.reasons)
