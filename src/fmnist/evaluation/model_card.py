"""The model card: one page per model version, generated from measured results.

The card is built once as a list of sections (paragraphs, bullet lists, tables, figures) and
rendered twice: as Markdown (figures referenced by file name, next to the card) and as a
self-contained HTML page (inline CSS, figures embedded as base64 ``data:`` URIs, no scripts, no
external assets). Every number in it comes from the evaluation passed in; sections whose
measurements are missing say so.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fmnist.atomic import atomic_write_text
from fmnist.evaluation.behavioural import BehaviouralReport
from fmnist.evaluation.bootstrap import BootstrapIntervals, Interval
from fmnist.evaluation.disparity import ClassDisparity, ConfusedPair
from fmnist.evaluation.gates import GateDecision
from fmnist.evaluation.metrics import EvaluationReport
from fmnist.evaluation.slices import FEATURES, SliceReport

MARKDOWN_FILE = "model_card.md"
HTML_FILE = "model_card.html"

DOMAIN_GAP = (
    "Measured with `benchmarks/bench_photos.py` on 341 real clothing photos for a model of the "
    "`quick` preset (not this version; see docs/real-photos.md): of the 290 photos whose "
    "garment has a Fashion-MNIST class, the top class was plausible for 4.5% when a photo is "
    "simply shrunk to 28x28 and for 51.7% after the project's photo preprocessing; with the "
    "unknown rule the service answered a wrong class for 10.0% and declined 62.1%."
)
"""What is known about real photos, with the command that measured it."""


# ----------------------------------------------------------------------------- card content
@dataclass(frozen=True)
class CardImage:
    """A PNG shown in the card, with its caption (also its alt text)."""

    caption: str
    png: bytes
    file_name: str = ""
    """Where the PNG lies next to the Markdown card (relative), when it was written."""
    thumbnail: bool = False
    """Shown small, side by side with other thumbnails (explanation examples)."""


@dataclass(frozen=True)
class CardDetails:
    """The responsible-evaluation results shown in the card (every field optional)."""

    intervals: BootstrapIntervals | None = None
    disparity: ClassDisparity | None = None
    confused_pairs: Sequence[ConfusedPair] = ()
    slices: SliceReport | None = None
    behavioural: BehaviouralReport | None = None
    classwise_ece: Mapping[str, float] | None = None
    figures: Mapping[str, CardImage] = field(default_factory=dict)
    """Keys: ``confusion_matrix``, ``reliability_diagram``, ``classwise_reliability``,
    ``slices``."""
    explanations: Sequence[CardImage] = ()
    explanations_note: str | None = None
    data_counts: Mapping[str, int] | None = None
    """Images per split of the snapshot (train, val, test)."""
    data_source: str | None = None


@dataclass(frozen=True)
class Table:
    """A table; ``highlight`` holds the indices of rows to emphasise."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    highlight: frozenset[int] = frozenset()
    numeric: frozenset[int] = frozenset()
    """Indices of right-aligned columns."""


@dataclass(frozen=True)
class Bullets:
    """A bullet list."""

    items: Sequence[str]


Block = str | Bullets | Table | CardImage
"""A paragraph (inline Markdown: ``code`` and **bold**), a list, a table or a figure."""


@dataclass(frozen=True)
class Section:
    """A titled part of the card."""

    title: str
    blocks: Sequence[Block]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _interval(iv: Interval | None, digits: int = 4) -> str:
    if iv is None:
        return "not measured"
    return f"{iv.low:.{digits}f} - {iv.high:.{digits}f}"


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


def _use_sections() -> list[Section]:
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
                    "figures. " + DOMAIN_GAP,
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
        ["accuracy", f"{report.accuracy:.4f}", _interval(iv.accuracy if iv else None)],
        ["macro F1", f"{report.macro_f1:.4f}", _interval(iv.macro_f1 if iv else None)],
        ["ECE (after temperature scaling)", f"{report.ece:.4f}", _interval(iv.ece if iv else None)],
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


def _confusion_section(details: CardDetails) -> Section:
    blocks: list[Block] = []
    if details.confused_pairs:
        rows = [
            [
                f"{p.first} / {p.second}",
                str(p.first_as_second),
                str(p.second_as_first),
                str(p.total),
                _pct(p.share),
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


def _slices_section(details: CardDetails) -> Section:
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


def _robustness_section(report: EvaluationReport) -> Section:
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


def _behavioural_section(details: CardDetails) -> Section:
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


def _calibration_section(report: EvaluationReport, details: CardDetails) -> Section:
    iv = details.intervals
    before = report.ece_before_temperature
    blocks: list[Block] = [
        f"Top-1 expected calibration error (15 bins): {report.ece:.4f} after temperature "
        + (f"scaling (T = {report.temperature:.3f})" if report.temperature else "scaling")
        + (f", {iv.confidence:.0%} interval {_interval(iv.ece)}" if iv else "")
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


def _explanation_section(details: CardDetails) -> Section:
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


def model_card_sections(
    *,
    name: str,
    run_id: str,
    snapshot_id: str,
    config: Mapping[str, object],
    training: Mapping[str, object],
    report: EvaluationReport,
    decision: GateDecision,
    quantization: Mapping[str, object] | None = None,
    details: CardDetails | None = None,
) -> list[Section]:
    """Every section of the card, in order, from the measured results."""
    d = details or CardDetails()
    sections = [
        _model_section(name, run_id, snapshot_id, config, training),
        *_use_sections(),
        _data_section(snapshot_id, report, d),
        _metrics_section(report, d),
        _per_class_section(report, d),
        _confusion_section(d),
        _slices_section(d),
        _robustness_section(report),
        _behavioural_section(d),
        _calibration_section(report, d),
        _explanation_section(d),
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
    return sections


# ----------------------------------------------------------------------------- Markdown
def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_block(block: Block) -> str:
    if isinstance(block, str):
        return block + "\n"
    if isinstance(block, Bullets):
        return "".join(f"- {item}\n" for item in block.items)  # empty list: nothing
    if isinstance(block, CardImage):
        target = block.file_name or "(not written)"
        return f"![{_md_cell(block.caption)}]({target})\n\n*{block.caption}*\n"
    align = ["--:" if i in block.numeric else ":--" for i in range(len(block.header))]
    lines = [
        "| " + " | ".join(_md_cell(h) for h in block.header) + " |",
        "|" + "|".join(align) + "|",
    ]
    for i, row in enumerate(block.rows):
        cells = [_md_cell(c) for c in row]
        if i in block.highlight:
            cells = [f"**{c}**" if c and not c.startswith("**") else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(title: str, sections: Sequence[Section]) -> str:
    """The card as Markdown; figures are referenced by their ``file_name``."""
    parts = [f"# {title}\n"]
    for section in sections:
        parts.append(f"## {section.title}\n")
        parts.extend(text for text in map(_markdown_block, section.blocks) if text)
    return "\n".join(parts)


# ----------------------------------------------------------------------------- HTML
_CSS = """
:root { color-scheme: light dark; --fg: #1d232a; --muted: #5b6670; --line: #d8dee4;
  --bg: #ffffff; --head: #f3f5f7; --hi: #fff3cd; --hi-line: #e0a800; --accent: #3b5bdb; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ec; --muted: #9aa5b1; --line: #3a424a;
  --bg: #15191d; --head: #20262c; --hi: #4a3b0a; --hi-line: #e0a800; --accent: #91a7ff; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
main { max-width: 1060px; margin: 0 auto; padding: 24px 20px 60px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 32px 0 10px; padding-bottom: 4px;
  border-bottom: 2px solid var(--line); }
nav.toc { font-size: 0.85rem; color: var(--muted); margin: 8px 0 16px; }
nav.toc a { color: var(--accent); margin-right: 10px; text-decoration: none; white-space: nowrap; }
code { font: 0.88em ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--head);
  padding: 1px 4px; border-radius: 4px; }
.table-wrap { overflow-x: auto; margin: 8px 0 14px; }
table { border-collapse: collapse; font-size: 0.88rem; min-width: 50%; }
th, td { border: 1px solid var(--line); padding: 4px 9px; text-align: left;
  vertical-align: top; }
th { background: var(--head); }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.highlight td { background: var(--hi); }
tr.highlight td:first-child { box-shadow: inset 4px 0 0 var(--hi-line); }
figure { margin: 12px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px;
  background: #fff; }
figure.example { display: inline-block; width: 300px; vertical-align: top; margin-right: 12px; }
figure.example img { width: 100%; image-rendering: pixelated; }
figcaption { font-size: 0.82rem; color: var(--muted); }
footer { margin-top: 40px; font-size: 0.8rem; color: var(--muted); }
"""

_INLINE_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline(text: str) -> str:
    """HTML-escape ``text`` and render its inline Markdown (``code`` and **bold**)."""
    escaped = html.escape(text, quote=True)
    escaped = _INLINE_CODE.sub(r"<code>\1</code>", escaped)
    return _BOLD.sub(r"<strong>\1</strong>", escaped)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _html_block(block: Block) -> str:
    if isinstance(block, str):
        return f"<p>{_inline(block)}</p>"
    if isinstance(block, Bullets):
        if not block.items:
            return ""
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, CardImage):
        data = base64.b64encode(block.png).decode("ascii")
        kind = ' class="example"' if block.thumbnail else ""
        caption = _inline(block.caption)
        alt = html.escape(block.caption, quote=True)
        return (
            f'<figure{kind}><img src="data:image/png;base64,{data}" alt="{alt}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    head = "".join(f"<th>{_inline(h)}</th>" for h in block.header)
    body = []
    for i, row in enumerate(block.rows):
        cells = "".join(
            f'<td class="num">{_inline(c)}</td>' if j in block.numeric else f"<td>{_inline(c)}</td>"
            for j, c in enumerate(row)
        )
        attr = ' class="highlight"' if i in block.highlight else ""
        body.append(f"<tr{attr}>{cells}</tr>")
    return (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def render_html(title: str, sections: Sequence[Section]) -> str:
    """The card as one self-contained HTML page (inline CSS, embedded images, no scripts)."""
    # Whitespace between the links lets the line wrap.
    toc = "\n".join(f'<a href="#{_slug(s.title)}">{html.escape(s.title)}</a>' for s in sections)
    body = []
    for section in sections:
        body.append(f'<section id="{_slug(section.title)}"><h2>{html.escape(section.title)}</h2>')
        body.extend(_html_block(b) for b in section.blocks)
        body.append("</section>")
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>"
        f'<nav class="toc" aria-label="Sections">{toc}</nav>'
        + "\n".join(body)
        + "<footer>Generated by fmnist from the evaluation run that produced these numbers."
        "</footer></main></body></html>\n"
    )


# ----------------------------------------------------------------------------- entry points
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
    details: CardDetails | None = None,
) -> str:
    """Render the model card of a trained and evaluated model as Markdown."""
    sections = model_card_sections(
        name=name,
        run_id=run_id,
        snapshot_id=snapshot_id,
        config=config,
        training=training,
        report=report,
        decision=decision,
        quantization=quantization,
        details=details,
    )
    return render_markdown(f"Model card: {name}", sections)


def model_card_html(
    *,
    name: str,
    run_id: str,
    snapshot_id: str,
    config: Mapping[str, object],
    training: Mapping[str, object],
    report: EvaluationReport,
    decision: GateDecision,
    quantization: Mapping[str, object] | None = None,
    details: CardDetails | None = None,
) -> str:
    """Render the model card of a trained and evaluated model as a self-contained HTML page."""
    sections = model_card_sections(
        name=name,
        run_id=run_id,
        snapshot_id=snapshot_id,
        config=config,
        training=training,
        report=report,
        decision=decision,
        quantization=quantization,
        details=details,
    )
    return render_html(f"Model card: {name}", sections)


def write_model_cards(
    folder: Path,
    *,
    name: str,
    run_id: str,
    snapshot_id: str,
    config: Mapping[str, object],
    training: Mapping[str, object],
    report: EvaluationReport,
    decision: GateDecision,
    quantization: Mapping[str, object] | None = None,
    details: CardDetails | None = None,
) -> dict[str, Path]:
    """Write the Markdown and HTML cards into ``folder`` (atomically); returns their paths.

    Figures with a ``file_name`` must already lie in ``folder`` for the Markdown links to work.
    Keys: ``model_card`` (Markdown) and ``model_card_html``.
    """
    sections = model_card_sections(
        name=name,
        run_id=run_id,
        snapshot_id=snapshot_id,
        config=config,
        training=training,
        report=report,
        decision=decision,
        quantization=quantization,
        details=details,
    )
    title = f"Model card: {name}"
    markdown, page = folder / MARKDOWN_FILE, folder / HTML_FILE
    atomic_write_text(markdown, render_markdown(title, sections))
    atomic_write_text(page, render_html(title, sections))
    return {"model_card": markdown, "model_card_html": page}
