"""The model card's sections, built from the measured results of one model version.

Every number comes from the evaluation passed in; sections whose measurements are missing say
so. Real-photo figures appear only when they were measured for this version
(:attr:`~fmnist.evaluation.card_data.CardDetails.real_photos`); otherwise the card says they were
not, and names the command that measures them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NotRequired, TypedDict, Unpack

from fmnist.evaluation.card_checks import (
    behavioural_section,
    calibration_section,
    confusion_section,
    explanation_section,
    interval,
    pct,
    robustness_section,
    slices_section,
)
from fmnist.evaluation.card_data import (
    Block,
    Bullets,
    CardDetails,
    ModelCard,
    RealPhotoFigures,
    Section,
    Table,
)
from fmnist.evaluation.gates import GateDecision
from fmnist.evaluation.metrics import EvaluationReport

REAL_WORLD_COMMAND = "fmnist experiment real-world PHOTOS --model {name}@VERSION"
"""The command that measures a registered version on a folder of labelled photos."""


class CardInputs(TypedDict):
    """What a model card is built from (the keyword arguments of the card functions)."""

    name: str
    run_id: str
    snapshot_id: str
    config: Mapping[str, object]
    training: Mapping[str, object]
    report: EvaluationReport
    decision: GateDecision
    quantization: NotRequired[Mapping[str, object] | None]
    details: NotRequired[CardDetails | None]


def _model_section(
    name: str,
    run_id: str,
    snapshot_id: str,
    config: Mapping[str, object],
    training: Mapping[str, object],
) -> Section:
    return Section(
        "Model",
        [
            Bullets(
                [
                    f"Registered model: `{name}`",
                    f"Architecture: `{config.get('model')}` with options "
                    f"`{config.get('model_options')}`",
                    f"Training run: `{run_id}`; data snapshot: `{snapshot_id}`",
                    *(f"{key}: {value}" for key, value in training.items()),
                ]
            )
        ],
    )


def real_photo_text(name: str, figures: RealPhotoFigures | None) -> str:
    """What the card says about real photos: the figures measured for this version and where
    they come from, or that none were measured and the command that measures them."""
    if figures is None:
        command = REAL_WORLD_COMMAND.format(name=name)
        return (
            "Real-photo accuracy: not measured for this version; "
            f"`{command}` measures it on a folder of labelled photos (see docs/real-photos.md)."
        )

    def share(value: float | None) -> str:
        return "–" if value is None else pct(value)

    return (
        f"Measured for this version by `fmnist experiment real-world` ({figures.source}; "
        f"{figures.preprocessing} preprocessing): of the {figures.mappable_photos:,} photos whose "
        f"garment has a Fashion-MNIST class, the top class was right for "
        f"{share(figures.mappable_accuracy)}; with the unknown rule the service answered a wrong "
        f"class for {share(figures.mappable_wrong_answers)} and declined "
        f"{share(figures.mappable_abstention)}; it declined "
        f"{share(figures.unmappable_abstention)} of the {figures.unmappable_photos:,} photos "
        "without a class."
    )


def _use_sections(name: str, real_photos: RealPhotoFigures | None) -> list[Section]:
    intended = Section(
        "Intended use",
        [
            "Classifying 28x28 grayscale images of single garments, centred, light on a dark "
            "background, into the ten Fashion-MNIST classes. Photos must go through the "
            "project's photo preprocessing first; inputs unlike Fashion-MNIST are out of "
            "distribution.",
            "Suitable for demonstrations, teaching and as a reference system for MLOps practice.",
        ],
    )
    out_of_scope = Section(
        "Out-of-scope use",
        [
            Bullets(
                [
                    "**Real photos as they come** (the domain gap): the model saw only "
                    "Fashion-MNIST's product images. Real photos differ in lighting, background, "
                    "pose, framing and colour, and accuracy on them is far below the test-set "
                    "figures. " + real_photo_text(name, real_photos),
                    "Garments of other kinds (hats, shorts, skirts, accessories): there is no "
                    "class for them; the model names one of its ten classes unless the serving "
                    "unknown rule declines.",
                    "Several garments in one image, garments worn by people, or cropped parts.",
                    "Any decision about people, and any use where a wrong class has a cost "
                    "(pricing, stock, safety) without a human check.",
                ]
            )
        ],
    )
    return [intended, out_of_scope]


def _data_section(snapshot_id: str, report: EvaluationReport, details: CardDetails) -> Section:
    counts = details.data_counts or {}
    items = [
        "Fashion-MNIST (Zalando Research, MIT licence): 70,000 28x28 grayscale product "
        "images in ten balanced classes.",
        f"Data snapshot `{snapshot_id}`"
        + (f" from {details.data_source}" if details.data_source else "")
        + ": "
        + (
            ", ".join(f"{split} {count:,}" for split, count in counts.items())
            if counts
            else "split sizes not recorded"
        )
        + " images.",
        "The training split trains the weights, the validation split selects the epoch and "
        "fits the temperature, and the official test split is used only here "
        f"({report.n:,} images).",
    ]
    return Section("Training data", [Bullets(items)])


def _metrics_section(report: EvaluationReport, details: CardDetails) -> Section:
    iv = details.intervals
    level = f"{iv.confidence:.0%} interval" if iv else "interval"
    rows = [
        ["accuracy", f"{report.accuracy:.4f}", interval(iv.accuracy if iv else None)],
        ["macro F1", f"{report.macro_f1:.4f}", interval(iv.macro_f1 if iv else None)],
        ["ECE (after temperature scaling)", f"{report.ece:.4f}", interval(iv.ece if iv else None)],
        ["top-2 accuracy", f"{report.top2_accuracy:.4f}", ""],
        ["negative log-likelihood", f"{report.nll:.4f}", ""],
    ]
    note = (
        f"Bootstrap: {iv.resamples:,} resamples of the {iv.n:,} test images (seed {iv.seed}), "
        "percentile intervals. ECE is biased upwards under resampling, so its interval may "
        "lie above the estimate."
        if iv
        else "Bootstrap intervals were not computed for this version."
    )
    return Section(
        "Metrics",
        [
            f"Accuracy {report.accuracy:.4f}, top-2 accuracy {report.top2_accuracy:.4f}, "
            f"macro F1 {report.macro_f1:.4f} on the official test set (n = {report.n:,}).",
            Table(["metric", "value", level], rows, numeric=frozenset({1, 2})),
            note,
        ],
    )


def _per_class_section(report: EvaluationReport, details: CardDetails) -> Section:
    disparity = details.disparity
    recalls = {r.name: r for r in disparity.recalls} if disparity else {}
    worst = disparity.worst_class if disparity else None
    rows, highlight = [], set()
    for i, m in enumerate(report.per_class):
        r = recalls.get(m.name)
        rows.append(
            [
                m.name,
                f"{m.precision:.3f}",
                f"{m.recall:.3f}",
                f"{r.low:.3f} - {r.high:.3f}" if r else "",
                f"{m.f1:.3f}",
                str(m.support),
            ]
        )
        if m.name == worst:
            highlight.add(i)
    blocks: list[Block] = [
        Table(
            ["class", "precision", "recall", "recall interval (Wilson)", "F1", "support"],
            rows,
            frozenset(highlight),
            frozenset({1, 2, 3, 4, 5}),
        )
    ]
    if disparity:
        items = [
            f"Recall disparity (max - min): {disparity.recall_disparity:.4f} "
            f"(best {disparity.best_class} "
            f"{recalls[disparity.best_class].recall:.3f}, worst {disparity.worst_class} "
            f"{recalls[disparity.worst_class].recall:.3f}).",
            f"F1 disparity (max - min): {disparity.f1_disparity:.4f}.",
            "Classes whose whole recall interval lies below the mean recall: "
            + (", ".join(disparity.below_mean) or "none")
            + ".",
        ]
        blocks.append(Bullets(items))
    else:
        blocks.append(f"Recall disparity (max - min): {report.recall_disparity:.4f}.")
    return Section("Per-class metrics and disparity", blocks)


def _limitations_section(report: EvaluationReport, details: CardDetails) -> Section:
    items = [
        "Trained on studio photos of Zalando products; real photos differ in lighting, "
        "background and pose, and some garment types (hats, shorts, skirts) have no class.",
    ]
    if report.per_class:
        weakest = min(report.per_class, key=lambda m: m.recall)
        items.append(f"Weakest class: {weakest.name} (recall {weakest.recall:.3f}).")
    if details.confused_pairs:
        top = details.confused_pairs[:2]
        items.append(
            "Most often confused: "
            + "; ".join(f"{p.first} and {p.second} ({p.total} errors)" for p in top)
            + "."
        )
    else:
        items.append(
            "Shirt, T-shirt/top, Pullover and Coat are often confused (see the confusion matrix)."
        )
    if details.slices and details.slices.worst:
        s = details.slices.worst_slices()[0]
        items.append(f"Weakest image slice: {s.name}, accuracy {s.accuracy:.4f} ({s.gap:+.4f}).")
    robustness = {k: v for k, v in (report.robustness or {}).items() if k != "clean"}
    if robustness:
        name = min(robustness, key=lambda k: robustness[k])
        items.append(f"Largest drop under corruption: {name} (accuracy {robustness[name]:.4f}).")
    if details.behavioural and not details.behavioural.passed:
        items.append("Failed behavioural tests: " + ", ".join(details.behavioural.failed()) + ".")
    items.append(
        "Test-set figures describe Fashion-MNIST's test split only; intervals cover sampling "
        "noise of that split, not a change of domain."
    )
    return Section("Limitations", [Bullets(items)])


def build_model_card(**inputs: Unpack[CardInputs]) -> ModelCard:
    """The card of a trained and evaluated model: every section, in order."""
    name, report = inputs["name"], inputs["report"]
    d = inputs.get("details") or CardDetails()
    quantization = inputs.get("quantization")
    decision = inputs["decision"]
    sections = [
        _model_section(
            name, inputs["run_id"], inputs["snapshot_id"], inputs["config"], inputs["training"]
        ),
        *_use_sections(name, d.real_photos),
        _data_section(inputs["snapshot_id"], report, d),
        _metrics_section(report, d),
        _per_class_section(report, d),
        confusion_section(d),
        slices_section(d),
        robustness_section(report),
        behavioural_section(d),
        calibration_section(report, d),
        explanation_section(d),
    ]
    if quantization:
        sections.append(
            Section(
                "INT8 quantization",
                [Bullets([f"{key}: {value}" for key, value in quantization.items()])],
            )
        )
    verdict = "passed" if decision.passed else "failed"
    sections.append(
        Section("Promotion gates", [f"Gates {verdict}.", Bullets(list(decision.reasons))])
    )
    sections.append(_limitations_section(report, d))
    return ModelCard(f"Model card: {name}", sections)
