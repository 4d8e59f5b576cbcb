"""Markdown renderings of evaluation reports."""

from __future__ import annotations

from fmnist.evaluation.metrics import EvaluationReport


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def per_class_markdown(report: EvaluationReport) -> str:
    """A markdown table with one row per class: precision, recall, F1 and support."""
    lines = [
        "| Class | Precision | Recall | F1 | Support |",
        "|:--|--:|--:|--:|--:|",
    ]
    lines.extend(
        f"| {_cell(m.name)} | {m.precision:.3f} | {m.recall:.3f} | {m.f1:.3f} | {m.support} |"
        for m in report.per_class
    )
    return "\n".join(lines) + "\n"
