"""Tests of the evaluation report computed from probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist import CLASS_NAMES, NUM_CLASSES
from fmnist.evaluation.metrics import EvaluationReport, evaluate_logits, evaluate_probabilities
from fmnist.evaluation.report import per_class_markdown

from .synthetic import overconfident_logits


def test_perfect_predictions() -> None:
    labels = np.arange(NUM_CLASSES).repeat(3)
    probs = np.full((labels.size, NUM_CLASSES), 0.001)
    probs[np.arange(labels.size), labels] = 1 - 0.009
    report = evaluate_probabilities(probs, labels)
    assert report.n == 30
    assert report.accuracy == 1.0
    assert report.top2_accuracy == 1.0
    assert report.macro_f1 == 1.0
    assert report.recall_disparity == 0.0
    assert report.ece < 0.01
    assert report.nll == pytest.approx(-np.log(0.991))
    assert report.confusion == (np.eye(NUM_CLASSES, dtype=int) * 3).tolist()
    assert [m.name for m in report.per_class] == list(CLASS_NAMES)
    assert all(m.support == 3 and m.precision == 1.0 for m in report.per_class)


def test_known_confusion_and_per_class_metrics() -> None:
    k = 3
    # true:  0 0 0 0 1 1 2 2
    # pred:  0 0 0 1 1 2 2 0   (second choice given in `second`)
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 2, 2, 0])
    second = np.array([1, 1, 1, 0, 0, 1, 0, 2])
    probs = np.full((8, k), 0.1)
    probs[np.arange(8), pred] = 0.6
    probs[np.arange(8), second] = 0.3
    report = evaluate_probabilities(probs, labels, class_names=("a", "b", "c"))
    assert report.confusion == [[3, 1, 0], [0, 1, 1], [1, 0, 1]]
    assert report.accuracy == pytest.approx(5 / 8)
    assert report.top2_accuracy == pytest.approx(8 / 8)
    a, b, c = report.per_class
    assert [a.precision, a.recall, a.support] == pytest.approx([3 / 4, 3 / 4, 4])
    assert [b.precision, b.recall] == pytest.approx([1 / 2, 1 / 2])
    assert c.f1 == pytest.approx(0.5)
    assert report.macro_f1 == pytest.approx((0.75 + 0.5 + 0.5) / 3)
    assert report.recall_disparity == pytest.approx(0.75 - 0.5)
    assert report.ece == pytest.approx(abs(5 / 8 - 0.6))


def test_recall_disparity_ignores_classes_without_samples() -> None:
    labels = np.array([0, 0, 1, 1])
    probs = np.eye(3)[[0, 1, 1, 1]] * 0.8 + 0.2 / 3
    report = evaluate_probabilities(probs, labels, class_names=("a", "b", "c"))
    assert report.per_class[2].support == 0
    assert report.recall_disparity == pytest.approx(0.5)


def test_evaluate_logits_records_temperature() -> None:
    logits, labels = overconfident_logits(500, seed=3)
    raw = evaluate_logits(logits, labels)
    scaled = evaluate_logits(logits, labels, temperature=4.0)
    assert raw.temperature is None and raw.ece_before_temperature is None
    assert scaled.temperature == 4.0
    assert scaled.ece_before_temperature == pytest.approx(raw.ece)
    assert scaled.ece < raw.ece
    assert scaled.accuracy == raw.accuracy


def test_report_round_trips_through_json() -> None:
    logits, labels = overconfident_logits(50, seed=4)
    report = evaluate_logits(logits, labels).model_copy(update={"robustness": {"clean": 0.8}})
    assert EvaluationReport.model_validate_json(report.model_dump_json()) == report


def test_wrong_number_of_class_names() -> None:
    with pytest.raises(ValueError, match="class names"):
        evaluate_probabilities(np.eye(3), np.arange(3))


def test_per_class_markdown() -> None:
    probs = np.eye(2)[[0, 1, 1]]
    report = evaluate_probabilities(probs, np.array([0, 1, 0]), class_names=("T|shirt", "Bag"))
    lines = per_class_markdown(report).splitlines()
    assert lines[0] == "| Class | Precision | Recall | F1 | Support |"
    assert lines[2] == "| T\\|shirt | 1.000 | 0.500 | 0.667 | 2 |"
    assert lines[3] == "| Bag | 0.500 | 1.000 | 0.667 | 1 |"
    assert len(lines) == 4
