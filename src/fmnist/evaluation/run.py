"""The evaluation step of the lifecycle: measure, gate, register, promote.

:func:`evaluate_and_register` takes a finished training run, evaluates its exported ONNX model
(exactly what will be served) on the official test set, compares it with the current champion,
and registers it as a new version whose tags carry the gate decision and its reasons.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fmnist import CLASS_NAMES
from fmnist.atomic import atomic_write_text
from fmnist.config import GateSettings, Settings
from fmnist.data.snapshot import HOLDOUT, Snapshot, load_snapshot
from fmnist.errors import QuantizationError
from fmnist.evaluation.calibration import softmax
from fmnist.evaluation.gates import GateDecision, apply_gates
from fmnist.evaluation.metrics import EvaluationReport, evaluate_logits
from fmnist.evaluation.model_card import write_model_cards
from fmnist.evaluation.plots import confusion_matrix_png, reliability_diagram_png
from fmnist.evaluation.report import per_class_markdown
from fmnist.evaluation.responsible import responsible_evaluation
from fmnist.evaluation.robustness import robustness_accuracy
from fmnist.platform.registry import (
    CHALLENGER,
    CHAMPION,
    ModelRegistry,
    ModelVersionInfo,
    RegistryError,
)
from fmnist.platform.services import Services
from fmnist.registry.onnx_export import QuantizationReport, evaluate_quantization, quantize_int8
from fmnist.registry.onnx_runtime import OnnxClassifier

logger = logging.getLogger(__name__)

CALIBRATION_IMAGES = 512


@dataclass
class EvaluationOutcome:
    """What the evaluation step measured and decided."""

    run_id: str
    report: EvaluationReport
    decision: GateDecision
    version: ModelVersionInfo | None
    promoted: bool
    champion_version: int | None
    quantization: QuantizationReport | None
    artifacts: dict[str, Path] = field(default_factory=dict)


def _run_files(registry: ModelRegistry, settings: Settings, run_id: str) -> Path:
    """The run's local folder with model.onnx and weights.pt, downloaded if not local."""
    local = settings.home / "runs" / run_id
    if (local / "model.onnx").is_file() and (local / "weights.pt").is_file():
        return local
    downloaded = registry.download_run_artifacts(run_id, "training", local.parent / f"{run_id}-dl")
    return downloaded


def _drift_reference(
    settings: Settings, onnx_path: Path, snapshot: Snapshot, out: Path
) -> dict[str, Path]:
    """The drift monitor's reference for this version (softmax outputs, embeddings and input
    statistics on the validation split), saved with the evaluation artifacts."""
    from fmnist.evaluation.drift_reference import compute_reference, save_reference

    images, labels = snapshot.split("val")
    drift = settings.drift
    reference = compute_reference(
        onnx_path,
        images,
        labels,
        pca_dims=drift.pca_dims,
        max_rows=drift.reference_size,
        seed=drift.seed,
    )
    npz, meta = save_reference(reference, out)
    return {"drift_reference": npz, "drift_reference_meta": meta}


def _champion_correct(
    registry: ModelRegistry, snapshot: Snapshot
) -> tuple[int | None, dict[str, npt.NDArray[np.bool_]]]:
    """The champion's version and its per-sample correctness on the test split (and on the
    holdout split of a derived snapshot)."""
    try:
        champion = registry.get(CHAMPION)
    except RegistryError:
        return None, {}
    correct = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = registry.download(str(champion.version), Path(tmp))
        classifier = OnnxClassifier(folder / "model.onnx")
        for split in ("test", HOLDOUT):
            if split in snapshot.images:
                images, labels = snapshot.split(split)
                correct[split] = classifier.predict(images) == labels
    return champion.version, correct


def evaluate_and_register(
    services: Services,
    run_id: str | None = None,
    *,
    model_name: str | None = None,
    register: bool = True,
    promote: bool = True,
    quantize: bool = True,
    gates: GateSettings | None = None,
) -> EvaluationOutcome:
    """Evaluate a training run's model, apply the gates, register it and maybe promote it.

    ``run_id`` defaults to the newest finished training run. The version is registered under
    ``model_name`` (default ``tracking.registered_model``) with the alias ``challenger``; when
    every gate passes and ``promote`` is true it becomes ``champion``. ``gates`` replaces the
    configured gates (retraining asks for non-inferiority). When the run's snapshot has a
    holdout split (a drifted window kept out of training), the challenger must also beat the
    champion on it.
    """
    settings = services.settings
    registry = services.registry(model_name)
    run_id = run_id or registry.latest_run("train")
    run_tags = registry.run_tags(run_id)
    snapshot_id = run_tags.get("fmnist.snapshot_id")
    snapshot = load_snapshot(services.storage, snapshot_id)
    images, labels = snapshot.split("test")
    files = _run_files(registry, settings, run_id)
    onnx_path, weights_path = files / "model.onnx", files / "weights.pt"

    classifier = OnnxClassifier(onnx_path)
    logits = classifier.predict_logits(images)
    report = evaluate_logits(logits, labels, temperature=classifier.temperature)
    report = report.model_copy(
        update={"robustness": robustness_accuracy(classifier.predict, images, labels)}
    )
    champion_version, champion_correct = _champion_correct(registry, snapshot)
    window_correct = None
    if HOLDOUT in champion_correct:
        holdout_images, holdout_labels = snapshot.split(HOLDOUT)
        window_correct = (
            classifier.predict(holdout_images) == holdout_labels,
            champion_correct[HOLDOUT],
        )
    decision = apply_gates(
        report,
        gates or settings.gates,
        challenger_correct=logits.argmax(axis=1) == labels,
        champion_correct=champion_correct.get("test"),
        window_correct=window_correct,
    )

    out = settings.home / "runs" / run_id / "evaluation"
    artifacts = {
        "confusion_matrix": confusion_matrix_png(
            report.confusion, CLASS_NAMES, out / "confusion_matrix.png"
        ),
        "reliability_diagram": reliability_diagram_png(
            softmax(logits),
            labels,
            out / "reliability_diagram.png",
            temperature=classifier.temperature,
        ),
    }
    per_class = out / "per_class.md"
    atomic_write_text(per_class, per_class_markdown(report))
    report_json = out / "evaluation.json"
    atomic_write_text(report_json, report.model_dump_json(indent=2))
    artifacts |= {"per_class": per_class, "evaluation": report_json}
    responsible = responsible_evaluation(  # slices, behaviour, intervals: for the model card
        settings.evaluation,
        images=images,
        labels=labels,
        probs=softmax(logits, classifier.temperature or 1.0),
        predict=classifier.predict,
        report=report,
        class_names=CLASS_NAMES,
        out=out,
        reference=snapshot.split("val"),
        model_folder=files,
        figures={k: artifacts[k] for k in ("confusion_matrix", "reliability_diagram")},
        data_counts=snapshot.manifest.counts,
        data_source=snapshot.manifest.source,
    )
    artifacts |= responsible.artifacts
    artifacts |= _drift_reference(settings, onnx_path, snapshot, out)

    quantization: QuantizationReport | None = None
    int8_path = files / "model.int8.onnx"
    quantization_failure = ""
    if quantize:
        val_images = snapshot.split("val")[0][:CALIBRATION_IMAGES]
        try:
            quantize_int8(onnx_path, int8_path, val_images)
        except QuantizationError as exc:  # INT8 is optional: record why, keep the FP32 model
            logger.warning("%s", exc)
            quantization_failure = str(exc)
        else:
            quantization = evaluate_quantization(onnx_path, int8_path, images, labels)
            atomic_write_text(out / "quantization.json", quantization.model_dump_json(indent=2))
            artifacts["quantization"] = out / "quantization.json"

    run_params = registry.run_params(run_id)
    training_params = {
        "Parameters": run_params.get("parameters", "unknown"),
        "Precision": run_params.get("precision_used", "unknown"),
        "Threads": run_params.get("threads_used", "unknown"),
        "Config hash": run_tags.get("fmnist.config_hash", ""),
    }
    config = json.loads(json.dumps(_config_from_weights(weights_path)))
    artifacts |= write_model_cards(
        out,
        name=registry.model_name,
        run_id=run_id,
        snapshot_id=snapshot.snapshot_id,
        config=config,
        training=training_params,
        report=report,
        decision=decision,
        quantization=(
            quantization.model_dump()
            if quantization
            else {"status": f"failed: {quantization_failure}"}
            if quantization_failure
            else None
        ),
        details=responsible.details,
    )

    metrics = {
        "test_accuracy": report.accuracy,
        "test_top2_accuracy": report.top2_accuracy,
        "test_macro_f1": report.macro_f1,
        "test_ece": report.ece,
        "test_ece_before_temperature": report.ece_before_temperature or 0.0,
        "test_nll": report.nll,
        "test_recall_disparity": report.recall_disparity,
    }
    metrics |= {f"robustness_{k}": v for k, v in (report.robustness or {}).items()}
    if quantization:
        metrics |= {
            "int8_accuracy": quantization.int8_accuracy,
            "int8_accuracy_drop_points": quantization.accuracy_drop_points,
            "int8_speedup": quantization.speedup,
        }
    metrics |= responsible.metrics
    registry.log_metrics(run_id, metrics)
    for path in artifacts.values():
        registry.log_artifact(run_id, path, "evaluation")

    version: ModelVersionInfo | None = None
    promoted = False
    if register:
        tags = decision.as_tags() | {
            "snapshot_id": snapshot.snapshot_id,
            "test_accuracy": f"{report.accuracy:.4f}",
            "test_ece": f"{report.ece:.4f}",
            "compared_with_champion": str(champion_version) if champion_version else "none",
            "int8": _int8_tag(quantization, quantization_failure),
        }
        tags |= responsible.tags  # behavioural: passed | failed: <tests>
        extra = {}
        if quantization and quantization.accepted:
            extra["onnx_int8"] = int8_path
        with registry.resume_run(run_id):
            version = registry.log_and_register(
                run_id,
                onnx_path,
                weights_path,
                images[:2],
                tags,
                description=f"accuracy {report.accuracy:.4f}; gates "
                + ("passed" if decision.passed else "failed: " + "; ".join(decision.reasons)),
                extra_artifacts=extra,
            )
        registry.set_alias(CHALLENGER, version.version)
        if decision.passed and promote:
            version = registry.promote(str(version.version), reason="gates passed")
            promoted = True
        else:
            version = registry.get(str(version.version))
    return EvaluationOutcome(
        run_id=run_id,
        report=report,
        decision=decision,
        version=version,
        promoted=promoted,
        champion_version=champion_version,
        quantization=quantization,
        artifacts=artifacts,
    )


def _int8_tag(quantization: QuantizationReport | None, failure: str) -> str:
    """The version's ``int8`` tag: accepted, rejected, failed (with the reason) or not measured."""
    if quantization:
        return "accepted" if quantization.accepted else "rejected"
    return f"failed: {failure}"[:250] if failure else "not measured"


def _config_from_weights(path: Path) -> dict[str, object]:
    import torch

    # weights_only: tensors and plain values only, so a tampered file cannot run code.
    state = torch.load(path, map_location="cpu", weights_only=True)
    config: dict[str, object] = state["config"]
    return config
