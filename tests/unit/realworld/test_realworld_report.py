"""``report.md`` of a real-photo experiment, rendered from a report dict."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fmnist.realworld.report import SUMMARY_KEYS, report_markdown


@pytest.fixture
def report() -> dict[str, Any]:
    """A report as :func:`fmnist.realworld.experiment.run_harness` builds it (figures only)."""
    return {
        "name": "fmnist-classifier-v3-grabcut",
        "created": "2025-01-02T03:04:05+00:00",
        "photos_folder": "/data/photos",
        "mapping": {"name": "clothing-small", "version": 2, "sha256": "0123456789abcdef0123"},
        "model": {"reference": "champion", "name": "fmnist-classifier", "version": 3},
        "preprocessing": "grabcut",
        "abstention": {"min_confidence": 0.5, "energy_threshold": 1.23456, "source": "model"},
        "fashion_mnist_test_accuracy": 0.8765,
        "timing": {"median_ms": 12.345, "p95_ms": 30.1},
        "cpu_timing": {"median_ms": 10.0, "p95_ms": 25.55},
        "summary": {
            "photos": 10,
            "mappable_photos": 6,
            "unmappable_photos": 4,
            "mappable_accuracy": 0.5,
            "mappable_answered_accuracy": None,
            "mappable_correct_answers": 0.25,
            "mappable_abstention": 0.125,
            "mappable_wrong_answers": 0.3,
            "unmappable_abstention": 0.9,
            "blank": 0.0,
        },
        "targets": {
            "mappable_accuracy": {"target": ">= 75%", "value": 0.5, "met": False},
            "unmappable_abstention": {"target": ">= 60%", "value": 0.9, "met": True},
        },
        "per_class": {
            "dress": {
                "n": 6,
                "mapped_to": ["Dress"],
                "abstention": 0.2,
                "answers": {"Dress": 3, "Coat": 1, "unknown": 1, "Bag": 1},
                "accuracy": 0.5,
                "answered_accuracy": 0.75,
            },
            "hat": {"n": 4, "mapped_to": [], "abstention": 1.0, "answers": {"unknown": 4}},
        },
        "confusion": {
            "rows": ["dress", "hat"],
            "columns": ["Dress", "Coat", "unknown"],
            "counts": [[3, 1, 2], [0, 0, 4]],
        },
    }


def _table(markdown: str, heading: str) -> list[list[str]]:
    body = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in body.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def test_setup_lines(report: dict[str, Any]) -> None:
    text = report_markdown(report)
    assert text.startswith("# Real-photo experiment: fmnist-classifier-v3-grabcut\n\n- created: ")
    assert "- photos: `/data/photos` (10: 6 mappable, 4 unmappable)\n" in text
    assert "(sha256 0123456789ab)" in text
    assert "- model: `champion` = fmnist-classifier version 3\n" in text
    assert "min_confidence 0.50, energy threshold 1.235 (model)" in text
    assert "- Fashion-MNIST test accuracy: 87.65%\n" in text
    assert "median 12.3 ms wall, 10.0 ms CPU (p95 30.1 / 25.6 ms)" in text
    assert text.endswith("| hat | 0 | 0 | 4 |\n")


def test_summary_has_every_key_with_its_target(report: dict[str, Any]) -> None:
    rows = _table(report_markdown(report), "Summary")
    assert [r[0] for r in rows] == [k.replace("_", " ") for k in SUMMARY_KEYS]
    by_key = {r[0]: r[1:] for r in rows}
    assert by_key["mappable accuracy"] == ["50.0%", ">= 75% (not met)"]
    assert by_key["unmappable abstention"] == ["90.0%", ">= 60% (met)"]
    assert by_key["mappable answered accuracy"] == ["-", ""]


def test_per_class_and_confusion(report: dict[str, Any]) -> None:
    text = report_markdown(report)
    dress, hat = _table(text, "Per class")
    assert dress == ["dress", "6", "Dress", "50.0%", "75.0%", "20.0%", "Dress 3, Coat 1, unknown 1"]
    assert hat == ["hat", "4", "unknown", "-", "-", "100.0%", "unknown 4"]
    confusion = _table(text, "Confusion (answers, unknown included)")
    assert confusion == [["dress", "3", "1", "2"], ["hat", "0", "0", "4"]]
    assert re.search(r"^\|---\|---\|---\|---\|$", text, flags=re.MULTILINE)


def test_a_model_file_and_missing_figures(report: dict[str, Any]) -> None:
    report["model"] = {"reference": "m.onnx", "name": "run-1", "version": None}
    report["abstention"]["energy_threshold"] = None
    report["fashion_mnist_test_accuracy"] = None
    text = report_markdown(report)
    assert "- model: `m.onnx` = run-1\n" in text
    assert "energy threshold off (model)" in text
    assert "- Fashion-MNIST test accuracy: -\n" in text
