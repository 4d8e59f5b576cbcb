"""The model card: one markdown page per model version, generated from measured results."""

from __future__ import annotations

from collections.abc import Mapping

from fmnist.evaluation.gates import GateDecision
from fmnist.evaluation.metrics import EvaluationReport
from fmnist.evaluation.report import per_class_markdown


def model_card_markdown(
    *,
    name: str,
    run_id: str,
    snapshot_id: str,
    config: Mapping[str, object],
    training: Mapping[str, object],
    report: EvaluationReport,
    decision: GateDecision,
    quantization: Mapping[str, object] | None = None,
) -> str:
    """Render the model card for a trained and evaluated model."""
    robustness = report.robustness or {}
    lines = [
        f"# Model card: {name}",
        "",
        "## Model",
        f"- Architecture: `{config.get('model')}` with options `{config.get('model_options')}`",
        f"- Training run: `{run_id}`; data snapshot: `{snapshot_id}`",
        *(f"- {key}: {value}" for key, value in training.items()),
        "",
        "## Intended use",
        "Classifying 28x28 grayscale images of single garments, centred, light on a dark",
        "background, into the ten Fashion-MNIST classes. Photos must go through the project's",
        "photo preprocessing first; inputs unlike Fashion-MNIST are out of distribution.",
        "",
        "## Results on the official test set",
        f"- Accuracy {report.accuracy:.4f}, top-2 accuracy {report.top2_accuracy:.4f}, "
        f"macro F1 {report.macro_f1:.4f} (n = {report.n:,})",
        f"- Expected calibration error {report.ece:.4f} after temperature scaling "
        f"(T = {report.temperature}), {report.ece_before_temperature} before",
        f"- Per-class recall disparity (max - min): {report.recall_disparity:.4f}",
        "",
        per_class_markdown(report),
    ]
    if robustness:
        lines += ["## Robustness (accuracy under corruption)", "", "| corruption | accuracy |"]
        lines += ["|:--|--:|"] + [f"| {k} | {v:.4f} |" for k, v in robustness.items()]
        lines.append("")
    if quantization:
        lines += ["## INT8 quantization", ""]
        lines += [f"- {key}: {value}" for key, value in quantization.items()]
        lines.append("")
    verdict = "passed" if decision.passed else "failed"
    lines += ["## Promotion gates", f"Gates {verdict}."]
    lines += [f"- {reason}" for reason in decision.reasons]
    lines += [
        "",
        "## Limitations",
        "- Trained on studio photos of Zalando products; real photos differ in lighting,",
        "  background and pose, and some garment types (hats, shorts, skirts) have no class.",
        "- Shirt, T-shirt/top, Pullover and Coat are often confused (see the confusion matrix).",
        "",
    ]
    return "\n".join(lines)
