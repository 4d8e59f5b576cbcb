"""Write and track an experiment's report: ``experiments/<date>-<name>/``.

The folder holds ``report.json`` (every figure), ``report.md`` (the same as tables),
``confusion.png`` (photo class x answer), ``contact_sheet.png`` (photos, the 28x28 input the
model saw and its answer) and ``errors-<mapping>.png`` for every mapping the predictions were
scored under (its wrong answers only). It is built in a hidden temporary folder and renamed into
place, so a report folder is complete or absent; each file is written atomically. :func:`track`
records the run in MLflow; :func:`list_reports` reads the folders back to compare experiments
over time.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont, ImageOps

from fmnist.atomic import atomic_write_bytes, atomic_write_text
from fmnist.platform.services import Services
from fmnist.realworld.experiment import ExperimentResult
from fmnist.realworld.mapping import ClassMapping
from fmnist.reporting.templates import render

REPORT_JSON = "report.json"
SHEET_PER_CLASS = 4
_TILE = 84  # px of each photo and model-input tile on the contact sheet
_GREEN, _RED, _GREY = (90, 200, 90), (235, 80, 70), (170, 170, 170)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


SUMMARY_KEYS = (
    "mappable_accuracy",
    "mappable_answered_accuracy",
    "mappable_correct_answers",
    "mappable_abstention",
    "mappable_wrong_answers",
    "unmappable_abstention",
    "blank",
)
"""The summary rows of ``report.md``, in order."""


def report_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: setup, summary with targets, per class, confusion."""
    return render("realworld_report.md.j2", report=report, summary_keys=SUMMARY_KEYS)


def confusion_png(report: dict[str, Any], path: Path) -> Path:
    """Photo class x answer counts, coloured by the row share (the right cells outlined)."""
    confusion = report["confusion"]
    counts = np.asarray(confusion["counts"], dtype=np.int64)
    rows, columns = confusion["rows"], confusion["columns"]
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    fig = Figure(figsize=(1.5 + 0.7 * len(columns), 1.2 + 0.5 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(columns)), labels=columns, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), labels=rows)
    ax.set_xlabel("answer")
    ax.set_ylabel("photo class")
    ax.set_title(f"{report['name']} (n={int(counts.sum())})", fontsize=9)
    mapped = report["mapping"]["classes"]
    for i, name in enumerate(rows):
        right = set(mapped.get(name) or ["unknown"])
        for j, column in enumerate(columns):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8, color=colour)
            if column in right:
                ax.add_patch(
                    _rectangle(j - 0.5, i - 0.5, edgecolor="#2e7d32", linewidth=1.6, fill=False)
                )
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _rectangle(x: float, y: float, **style: Any) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), 1.0, 1.0, **style)


def contact_sheet_png(
    result: ExperimentResult,
    mapping: ClassMapping,
    path: Path,
    *,
    per_class: int = SHEET_PER_CLASS,
    indices: Sequence[int] | None = None,
) -> Path:
    """Up to ``per_class`` photos per class (of ``indices``, default all): the photo, the 28x28
    input, the answer.

    The answer is green when right under ``mapping`` (a mapped class, or unknown for an
    unmappable photo), red when wrong, grey when the model abstained on a mappable photo.
    """
    by_class: dict[str, list[int]] = {}
    for i in range(len(result.photos)) if indices is None else indices:
        by_class.setdefault(result.photos[i].photo_class, []).append(i)
    classes = [c for c in mapping.photo_classes if c in by_class]
    cell_w, cell_h = 2 * _TILE + 6, _TILE + 26
    sheet = Image.new("RGB", (per_class * cell_w + 90, len(classes) * cell_h), (40, 40, 40))
    pen = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, name in enumerate(classes):
        y = r * cell_h
        pen.text((4, y + _TILE // 2), name, fill=(255, 230, 90), font=font)
        for k, i in enumerate(by_class[name][:per_class]):
            x = 90 + k * cell_w
            with Image.open(result.photos[i].path) as raw:
                thumb = ImageOps.exif_transpose(raw).convert("RGB")
            thumb.thumbnail((_TILE, _TILE))
            sheet.paste(thumb, (x + (_TILE - thumb.width) // 2, y + (_TILE - thumb.height) // 2))
            seen = Image.fromarray(result.prepared[i].pixels).resize(
                (_TILE, _TILE), Image.Resampling.NEAREST
            )
            sheet.paste(seen.convert("RGB"), (x + _TILE + 4, y))
            verdict = result.verdicts[i]
            right = mapping.targets(name)
            if verdict.is_unknown:
                colour = _GREEN if not right else _GREY
            else:
                colour = _GREEN if verdict.class_id in right else _RED
            confidence = verdict.confidence
            text = verdict.label if np.isnan(confidence) else f"{verdict.label} {confidence:.2f}"
            pen.text((x, y + _TILE + 6), text[:28], fill=colour, font=font)
    buffer = io.BytesIO()
    sheet.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(
        buffer, format="PNG", optimize=True
    )
    atomic_write_bytes(path, buffer.getvalue())
    return path


def error_sheet_name(mapping_name: str) -> str:
    """The file name of the contact sheet of a mapping's wrong answers."""
    return f"errors-{mapping_name}.png"


def error_sheets(result: ExperimentResult, folder: Path, *, per_class: int) -> list[Path]:
    """A contact sheet of the wrong answers under each mapping the result was scored under
    (``errors-<mapping>.png``; none for a mapping without errors)."""
    written = []
    for mapping in result.mappings:
        wrong = result.scores[mapping.name].error_indices
        if wrong:
            path = folder / error_sheet_name(mapping.name)
            written.append(
                contact_sheet_png(result, mapping, path, per_class=per_class, indices=wrong)
            )
    return written


def _free_folder(root: Path, name: str) -> Path:
    candidate = root / name
    n = 2
    while candidate.exists():
        candidate = root / f"{name}-{n}"
        n += 1
    return candidate


def write_report(
    result: ExperimentResult,
    mapping: ClassMapping,
    output: Path,
    *,
    per_class: int = SHEET_PER_CLASS,
) -> Path:
    """Write the report folder ``<output>/<YYYY-MM-DD>-<name>`` (never overwriting one)."""
    report = result.report
    output.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=output))
    try:
        atomic_write_text(staging / REPORT_JSON, json.dumps(report, indent=2) + "\n")
        atomic_write_text(staging / "report.md", report_markdown(report))
        confusion_png(report, staging / "confusion.png")
        contact_sheet_png(result, mapping, staging / "contact_sheet.png", per_class=per_class)
        error_sheets(result, staging, per_class=per_class)
        final = _free_folder(output, f"{report['created'][:10]}-{report['name']}")
        mask = os.umask(0)
        os.umask(mask)
        staging.chmod(0o777 & ~mask)  # mkdtemp makes it private; a report folder is not
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def track(services: Services, result: ExperimentResult, folder: Path) -> str:
    """Record the experiment as an MLflow run (experiment ``fmnist-real-world``); its id."""
    from fmnist.realworld.train_photos import EXPERIMENT

    report = result.report
    registry = services.registry(experiment=EXPERIMENT)
    model, abst, mapping = report["model"], report["abstention"], report["mapping"]
    tags = {"fmnist.step": "real-world", "fmnist.report": str(folder)}
    with registry.start_run(report["name"], tags) as run_id:
        registry.log_params(
            run_id,
            {
                "model.reference": model["reference"],
                "model.name": model["name"],
                "model.version": model["version"],
                "preprocessing": report["preprocessing"],
                "abstention.min_confidence": abst["min_confidence"],
                "abstention.energy_threshold": abst["energy_threshold"],
                "abstention.source": abst["source"],
                "mapping.name": mapping["name"],
                "mapping.version": mapping["version"],
                "mapping.sha256": mapping["sha256"],
                "photos.folder": report["photos_folder"],
                "photos.limit_per_class": report["limit_per_class"],
            },
        )
        metrics = {k: v for k, v in report["summary"].items() if v is not None}
        metrics |= {f"preprocess_{k}": v for k, v in report["timing"].items()}
        metrics |= {f"preprocess_cpu_{k}": v for k, v in report["cpu_timing"].items()}
        if report.get("fashion_mnist_test_accuracy") is not None:
            metrics["fashion_mnist_test_accuracy"] = report["fashion_mnist_test_accuracy"]
        for name, block in report.get("mappings", {}).items():
            figures = block["summary"].items()
            metrics |= {f"mapping.{name}.{k}": v for k, v in figures if isinstance(v, float)}
        for name, row in report["per_class"].items():
            metrics[f"class.{name}.abstention"] = row["abstention"]
            if row.get("accuracy") is not None:
                metrics[f"class.{name}.accuracy"] = row["accuracy"]
        registry.log_metrics(run_id, metrics)
        for path in sorted(folder.iterdir()):
            registry.log_artifact(run_id, path, "real-world")
    return run_id


def list_reports(output: Path) -> list[dict[str, Any]]:
    """The reports under ``output`` (oldest first), each as its ``report.json`` dict plus
    ``folder``; unreadable folders are skipped."""
    reports = []
    for folder in sorted(p for p in output.glob("*/") if (p / REPORT_JSON).is_file()):
        try:
            report = json.loads((folder / REPORT_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        reports.append({**report, "folder": str(folder)})
    return sorted(reports, key=lambda r: (r.get("created", ""), r["folder"]))


def comparison_rows(reports: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """One row of headline figures per report, for tables."""
    rows = []
    for r in reports:
        s, abst = r["summary"], r["abstention"]
        model = r["model"]
        version = f"@{model['version']}" if model.get("version") is not None else ""
        fm = r.get("fashion_mnist_test_accuracy")
        energy = abst["energy_threshold"]
        rows.append(
            {
                "report": Path(r["folder"]).name,
                "model": f"{model['name']}{version}",
                "preprocessing": r["preprocessing"],
                "unknown rule": f"conf<{abst['min_confidence']:.2f}, "
                + ("no energy" if energy is None else f"energy>{energy:.2f}"),
                "accuracy (mappable)": _pct(s["mappable_accuracy"]),
                "abstention (unmappable)": _pct(s["unmappable_abstention"]),
                "abstention (mappable)": _pct(s["mappable_abstention"]),
                "Fashion-MNIST test": "-" if fm is None else f"{fm:.2%}",
                "ms/photo": f"{r['timing']['median_ms']:.1f}",
            }
        )
    return rows
