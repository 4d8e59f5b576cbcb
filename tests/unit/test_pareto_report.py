"""The Pareto section of docs/benchmarks.md: table, front, targets, the served model's choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_docs_figures import figures

report = figures.load("pareto_report.py")


def _row(name: str, arch: str, acc: float, fp32_ms: float, int8_ms: float) -> dict[str, Any]:
    serving = {
        p: {"batch1_ms": ms, "images_per_s_256": 1000.0, "onnx_mb": 1.0, "test_accuracy": acc}
        for p, ms in (("fp32", fp32_ms), ("int8", int8_ms))
    }
    return {
        "model": name,
        "architecture": arch,
        "test_accuracy": acc,
        "test_accuracy_ci95": [acc - 0.005, acc + 0.005],
        "ece": 0.01,
        "train_cpu_minutes": 10.0,
        "serving": serving,
        "photo_accuracy": {"clothing-small": 0.7, "clothing-small-strict": 0.6},
    }


def _result() -> dict[str, Any]:
    return {
        "measured_at": "2026-12-07T18:00:00+00:00",
        "machine": {"cpu": "Test CPU", "cores_usable": 2},
        "command": "python benchmarks/bench_pareto.py --run ...",
        "snapshot_id": "abc",
        "seconds": 12.0,
        "served": "student-distilled",
        "photos": {"count": 341, "preprocessing": "grabcut"},
        "rows": [
            _row("cnn", "cnn", 0.940, 0.43, 0.16),
            _row("slow-cnn", "cnn", 0.935, 0.60, 0.20),
            _row("student-distilled", "cnn", 0.930, 0.08, 0.05) | {"teachers": ["cnn"]},
            _row("student-alone", "cnn", 0.925, 0.08, 0.05),
            _row("vit-distilled", "vit", 0.915, 0.40, 0.30),
            _row("ensemble", "ensemble", 0.945, 1.2, 0.6),
        ],
    }


def test_the_table_marks_the_front_and_the_served_row() -> None:
    text = report.render(_result())
    lines = {
        line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| **")
    }
    assert lines["**ensemble**"].endswith("| **yes** |")
    assert lines["**slow-cnn**"].endswith("| no |")  # cnn is more accurate and faster
    assert lines["**student-alone**"].endswith("| no |")
    assert "**student-distilled** (served)" in text
    assert "70.00% / 60.00%" in text


def test_targets_take_the_best_row_they_concern_and_the_serving_budget() -> None:
    text = report.render(_result())
    assert "| best single model | 94.5% | cnn 94.00%" in text
    assert "| ensemble | 95.5% | ensemble 94.50%" in text and "(1.00 points short)" in text
    assert "| vit | 92.0% | vit-distilled 91.50%" in text
    assert "| served model within 0.1 ms at batch 1 | 94.8% | student-distilled 93.00%" in text


def test_the_choice_and_what_distillation_bought_are_stated() -> None:
    text = report.render(_result())
    assert "**Served** (`make demo`): **student-distilled**, 93.00%" in text
    assert "on the front." in text
    assert "**Most accurate**: ensemble, 94.50%" in text
    assert "the goal 94.8% is 1.80 points away" in text
    assert (
        "**Distillation**: student-distilled (teachers: cnn 94.00%) against student-alone" in text
    )
    assert "+0.50 points" in text
    assert "every model measured above student-distilled takes at least 0.160 ms" in text
    assert "(cnn, 1.6x the budget); none reaches 94.8%" in text


def test_the_chart_is_a_png() -> None:
    assert report.chart(_result()).startswith(b"\x89PNG")


plan = figures.load("pareto_plan.py")


def test_the_plan_names_teachers_before_their_students(tmp_path: Path) -> None:
    runs: dict[str, str] = {}
    for name, template in plan.PLAN:
        args = plan.arguments(template, tmp_path, runs)
        assert "{" not in " ".join(args)
        runs[name] = f"id-{name}"
    assert plan.arguments("--preset student --teacher {cnn}", tmp_path, runs) == [
        "--preset",
        "student",
        "--teacher",
        str(tmp_path / "runs" / "id-cnn"),
    ]
    assert set(plan.ENSEMBLE[1]) <= set(runs) and plan.SERVED in runs


def test_a_teacher_missing_from_the_plan_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="teacher 'cnn' before training it"):
        plan.arguments("--teacher {cnn}", tmp_path, {})
    assert plan.recorded(tmp_path) == {}
