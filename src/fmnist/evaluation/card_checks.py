"""The model card's sections on the responsible-evaluation checks: confused pairs, slices,
robustness, behavioural tests, calibration and explanation examples.

Each takes what was measured and says so where something was not.
"""

from __future__ import annotations

from fmnist.evaluation.bootstrap import Interval
from fmnist.evaluation.card_data import Block, Bullets, CardDetails, Section, Table
from fmnist.evaluation.metrics import EvaluationReport
from fmnist.evaluation.slices import FEATURES


def pct(value: float) -> str:
    """``value`` as a percentage with one decimal."""
    return f"{100 * value:.1f}%"


def interval(iv: Interval | None, digits: int = 4) -> str:
    """``low - high`` of an interval, or ``not measured``."""
    if iv is None:
        return "not measured"
    return f"{iv.low:.{digits}f} - {iv.high:.{digits}f}"


def confusion_section(details: CardDetails) -> Section:
    """The most confused class pairs and the confusion matrix."""
    blocks: list[Block] = []
    if details.confused_pairs:
        rows = [
            [
                f"{p.first} / {p.second}",
                str(p.first_as_second),
                str(p.second_as_first),
                str(p.total),
                pct(p.share),
            ]
            for p in details.confused_pairs
        ]
        blocks += [
            "Unordered class pairs with the most errors between them (both directions counted).",
            Table(
                ["pair (A / B)", "A taken for B", "B taken for A", "total", "share of A + B"],
                rows,
                frozenset({0}),
                frozenset({1, 2, 3, 4}),
            ),
        ]
    else:
        blocks.append("Not measured.")
    if "confusion_matrix" in details.figures:
        blocks.append(details.figures["confusion_matrix"])
    return Section("Most confused pairs", blocks)


def slices_section(details: CardDetails) -> Section:
    """Accuracy on quantile bins of pixel properties; the weakest highlighted."""
    report = details.slices
    if report is None:
        return Section("Slices", ["Not measured."])
    worst = {(s.feature, s.bin) for s in report.worst_slices()}
    rows, highlight = [], set()
    for i, s in enumerate(report.slices):
        rows.append(
            [
                s.feature,
                f"{s.bin + 1}/{s.n_bins}",
                f"{s.low:.3g} - {s.high:.3g}",
                str(s.n),
                f"{s.accuracy:.4f}",
                f"{s.accuracy_low:.4f} - {s.accuracy_high:.4f}",
                f"{s.macro_f1:.4f}",
                f"{s.gap:+.4f}",
            ]
        )
        if (s.feature, s.bin) in worst:
            highlight.add(i)
    described = "; ".join(f"**{k}**: {v}" for k, v in FEATURES.items() if k in report.features)
    weakest = [
        f"{s.name}: accuracy {s.accuracy:.4f} ({s.gap:+.4f} against overall, n = {s.n})"
        + (", interval entirely below the overall accuracy" if s.significantly_below else "")
        for s in report.worst_slices()
    ]
    blocks: list[Block] = [
        f"Test images cut into quantile bins of properties computed from the pixels alone "
        f"(garment pixels: value > {report.threshold}): {described}. Intervals: Wilson, "
        f"{report.confidence:.0%}; macro F1 over the classes present in the slice.",
        Table(
            ["property", "bin", "range", "n", "accuracy", "interval", "macro F1", "gap"],
            rows,
            frozenset(highlight),
            frozenset({3, 4, 5, 6, 7}),
        ),
        "Weakest slices (highlighted):",
        Bullets(weakest or ["none below the overall accuracy"]),
    ]
    if "slices" in details.figures:
        blocks.append(details.figures["slices"])
    return Section("Slices", blocks)


def robustness_section(report: EvaluationReport) -> Section:
    """Accuracy under each corruption."""
    robustness = report.robustness or {}
    if not robustness:
        return Section("Robustness", ["Not measured."])
    clean = robustness.get("clean")
    rows = [
        [k, f"{v:.4f}", "" if clean is None or k == "clean" else f"{v - clean:+.4f}"]
        for k, v in robustness.items()
    ]
    return Section(
        "Robustness (accuracy under corruption)",
        [
            "Accuracy on the test images under each corruption of "
            "`fmnist.evaluation.robustness` at severity 2 of 3 (seed 0).",
            Table(["corruption", "accuracy", "change"], rows, numeric=frozenset({1, 2})),
        ],
    )


def behavioural_section(details: CardDetails) -> Section:
    """The invariance and minimum-functionality tests."""
    b = details.behavioural
    if b is None:
        return Section("Behavioural tests", ["Not measured."])
    rows: list[list[str]] = []
    highlight = set()
    for i, r in enumerate(b.invariance):
        rows.append(
            [
                f"invariance: {r.name}",
                r.description,
                f"{r.n_images} x {r.n_variants}",
                f"{r.change_rate:.4f} class changes",
                f"<= {r.max_change_rate:.4f}",
                "pass" if r.passed else "**fail**",
            ]
        )
        if not r.passed:
            highlight.add(i)
    f = b.functionality
    if f is not None:
        rows.append(
            [
                "minimum functionality: clear examples",
                f.description,
                str(f.n),
                f"{f.pass_rate:.4f} correct",
                f">= {f.min_pass_rate:.4f}",
                "pass" if f.passed else "**fail**",
            ]
        )
        if not f.passed:
            highlight.add(len(rows) - 1)
    blocks: list[Block] = [
        "CheckList-style tests. Invariance: the share of (image, variant) pairs whose predicted "
        f"class changes under a perturbation that keeps the garment, on a seeded sample of "
        f"{b.sample_size:,} test images (seed {b.seed}). Minimum functionality: the share of "
        "clear examples classified correctly.",
        Table(
            ["test", "what", "n", "measured", "threshold", "result"],
            rows,
            frozenset(highlight),
            frozenset({2, 3, 4}),
        ),
        "All behavioural tests passed." if b.passed else "Failed: " + ", ".join(b.failed()) + ".",
    ]
    if f is not None and f.per_class:
        missed = {k: v for k, v in f.per_class.items() if v < 1.0}
        blocks.append(
            "Clear examples missed by class: "
            + (", ".join(f"{k} {1 - v:.0%}" for k, v in missed.items()) if missed else "none")
            + "."
        )
    return Section("Behavioural tests", blocks)


def calibration_section(report: EvaluationReport, details: CardDetails) -> Section:
    """Expected calibration error, overall and per class, with the diagrams."""
    iv = details.intervals
    before = report.ece_before_temperature
    blocks: list[Block] = [
        f"Top-1 expected calibration error (15 bins): {report.ece:.4f} after temperature "
        + (f"scaling (T = {report.temperature:.3f})" if report.temperature else "scaling")
        + (f", {iv.confidence:.0%} interval {interval(iv.ece)}" if iv else "")
        + (f"; {before:.4f} before." if before is not None else "."),
    ]
    if "reliability_diagram" in details.figures:
        blocks.append(details.figures["reliability_diagram"])
    if details.classwise_ece:
        eces = list(details.classwise_ece.items())
        worst = max(range(len(eces)), key=lambda i: eces[i][1])
        blocks += [
            "Per class, one-vs-rest (the probability given to the class against whether it is "
            "the true class; 15 bins); the least calibrated class is highlighted:",
            Table(
                ["class", "ECE (one-vs-rest)"],
                [[k, f"{v:.4f}"] for k, v in eces],
                frozenset({worst}),
                frozenset({1}),
            ),
        ]
    else:
        blocks.append("Per-class calibration: not measured.")
    if "classwise_reliability" in details.figures:
        blocks.append(details.figures["classwise_reliability"])
    return Section("Calibration", blocks)


def explanation_section(details: CardDetails) -> Section:
    """Attributions of a few test images, or why there are none."""
    if not details.explanations:
        note = details.explanations_note or "not available"
        return Section("Explanation examples", [f"Explanation examples: {note}."])
    blocks: list[Block] = [
        "Attributions of the predicted class for a few test images"
        + (f" ({details.explanations_note})" if details.explanations_note else "")
        + "; the heatmap marks the pixels that pushed the prediction."
    ]
    blocks += list(details.explanations)
    return Section("Explanation examples", blocks)
