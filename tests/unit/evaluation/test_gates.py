"""Tests of the McNemar test and the promotion gates."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy.stats import binomtest

from fmnist import NUM_CLASSES
from fmnist.config import GateSettings
from fmnist.evaluation.gates import GateDecision, apply_gates, mcnemar_test
from fmnist.evaluation.metrics import EvaluationReport, evaluate_probabilities


def paired(b: int, c: int, both: int = 50, neither: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Correctness arrays with exactly ``b`` challenger-only and ``c`` champion-only wins."""
    challenger = np.array([True] * b + [False] * c + [True] * both + [False] * neither)
    champion = np.array([False] * b + [True] * c + [True] * both + [False] * neither)
    return challenger, champion


def good_report(n_per_class: int = 20) -> tuple[EvaluationReport, npt.NDArray[np.bool_]]:
    """A report of a model that is right on all but one sample per class, with mild confidence."""
    labels = np.arange(NUM_CLASSES).repeat(n_per_class)
    pred = labels.copy()
    pred[::n_per_class] = (labels[::n_per_class] + 1) % NUM_CLASSES
    probs = np.full((labels.size, NUM_CLASSES), 0.05 / (NUM_CLASSES - 1))
    probs[np.arange(labels.size), pred] = 0.95
    return evaluate_probabilities(probs, labels), pred == labels


@pytest.mark.parametrize(("b", "c"), [(12, 9), (20, 5), (0, 7), (30, 0), (1, 1)])
def test_mcnemar_matches_scipy_binomial_test(b: int, c: int) -> None:
    result = mcnemar_test(*paired(b, c))
    assert (result.b, result.c, result.n) == (b, c, b + c + 60)
    expected = binomtest(b, b + c, 0.5, alternative="greater").pvalue
    assert result.p_value == pytest.approx(expected)
    assert result.statistic == pytest.approx((abs(b - c) - 1) ** 2 / (b + c))


def test_mcnemar_without_discordant_pairs() -> None:
    result = mcnemar_test(*paired(0, 0))
    assert result.p_value == 1.0
    assert result.statistic == 0.0


def test_mcnemar_accepts_0_1_integers_and_rejects_mismatches() -> None:
    assert mcnemar_test(np.array([1, 0, 1]), np.array([0, 0, 1])).b == 1
    with pytest.raises(ValueError, match="different sets"):
        mcnemar_test(np.ones(3, dtype=bool), np.ones(4, dtype=bool))
    with pytest.raises(ValueError, match="booleans"):
        mcnemar_test(np.array([0.3, 0.9]), np.array([1, 0]))


def test_good_model_passes() -> None:
    report, _ = good_report()
    decision = apply_gates(report, GateSettings())
    assert decision.passed, decision.reasons
    assert decision.reasons == []
    assert decision.checks == {"accuracy": True, "class_recall": True, "ece": True}
    assert decision.as_tags()["gate.passed"] == "true"


def test_uniform_random_model_is_rejected_with_reasons() -> None:
    rng = np.random.default_rng(0)
    labels = np.arange(NUM_CLASSES).repeat(30)
    probs = rng.dirichlet(np.ones(NUM_CLASSES), size=labels.size)
    report = evaluate_probabilities(probs, labels)
    decision = apply_gates(report, GateSettings())
    assert not decision.passed
    assert decision.checks["accuracy"] is False
    assert decision.checks["class_recall"] is False
    assert decision.reasons[0] == f"accuracy {report.accuracy:.3f} < minimum 0.900"
    recall_reason = decision.reasons[1]
    assert recall_reason.startswith("class recall below minimum 0.600: ")
    assert "T-shirt/top" in recall_reason and "Ankle boot" in recall_reason
    tags = decision.as_tags()
    assert tags["gate.passed"] == "false"
    assert tags["gate.check.accuracy"] == "fail"
    assert "accuracy" in tags["gate.reasons"]


def test_one_weak_class_is_named() -> None:
    labels = np.arange(NUM_CLASSES).repeat(10)
    pred = labels.copy()
    pred[np.flatnonzero(labels == 6)[:5]] = 0  # Shirt recall 0.5
    probs = np.eye(NUM_CLASSES)[pred]
    decision = apply_gates(evaluate_probabilities(probs, labels), GateSettings(max_ece=1.0))
    assert decision.checks == {"accuracy": True, "class_recall": False, "ece": True}
    assert decision.reasons == ["class recall below minimum 0.600: Shirt 0.500"]


def test_values_close_to_the_threshold_get_more_decimals() -> None:
    report, _ = good_report()
    close = report.model_copy(update={"accuracy": 0.8996})
    decision = apply_gates(close, GateSettings())
    assert decision.reasons == ["accuracy 0.8996 < minimum 0.9000"]


def test_ece_gate() -> None:
    report, _ = good_report()
    decision = apply_gates(report.model_copy(update={"ece": 0.12}), GateSettings())
    assert decision.checks["ece"] is False
    assert decision.reasons == ["ECE 0.120 > maximum 0.050"]


def test_missing_class_fails_the_recall_gate() -> None:
    report, _ = good_report()
    per_class = [
        m.model_copy(update={"support": 0}) if m.name == "Bag" else m for m in report.per_class
    ]
    decision = apply_gates(report.model_copy(update={"per_class": per_class}), GateSettings())
    assert decision.checks["class_recall"] is False
    assert decision.reasons == ["class recall not measured (no test samples): Bag"]


def test_challenger_not_significantly_better_is_rejected() -> None:
    report, challenger = good_report(n_per_class=21)
    assert report.n == 210
    champion = challenger.copy()
    # Make the champion wrong on 12 of the challenger's right answers and right on its 9 misses.
    right = np.flatnonzero(challenger)[:12]
    champion[right] = False
    champion[np.flatnonzero(~challenger)[:9]] = True
    decision = apply_gates(report, GateSettings(), challenger, champion)
    assert not decision.passed
    assert decision.checks["champion"] is False
    assert decision.mcnemar is not None
    p = decision.mcnemar.p_value
    assert decision.reasons == [
        f"not significantly better than the champion (McNemar p={p:.3g} >= 0.05; +12/-9 discordant)"
    ]
    assert decision.as_tags()["gate.mcnemar_p"] == f"{p:.6g}"
    assert decision.as_tags()["gate.mcnemar_b"] == "12"


def test_significantly_better_challenger_passes() -> None:
    report, challenger = good_report()
    champion = challenger.copy()
    champion[np.flatnonzero(challenger)[:30]] = False
    decision = apply_gates(report, GateSettings(), challenger, champion)
    assert decision.passed, decision.reasons
    assert decision.checks["champion"] is True
    assert decision.mcnemar is not None and decision.mcnemar.p_value < 1e-8


def test_champion_needs_challenger_of_the_same_size() -> None:
    report, challenger = good_report()
    with pytest.raises(ValueError, match="challenger_correct"):
        apply_gates(report, GateSettings(), champion_correct=challenger)
    with pytest.raises(ValueError, match="n=200"):
        apply_gates(report, GateSettings(), challenger[:10], challenger[:10])


def test_decision_round_trips_through_json() -> None:
    report, challenger = good_report()
    decision = apply_gates(report, GateSettings(), challenger, ~challenger)
    assert GateDecision.model_validate_json(decision.model_dump_json()) == decision


def test_non_inferiority_accepts_a_small_loss_and_rejects_a_likely_larger_one() -> None:
    report, _ = good_report()
    gates = GateSettings(
        min_accuracy=0.5, champion_test="non_inferiority", non_inferiority_margin=0.02
    )
    # 1,037 samples; the challenger loses 3 more than it wins: -0.3 points, bound above -2.
    close = paired(12, 15, both=1000)
    same = apply_gates(report.model_copy(update={"n": close[0].size}), gates, *close)
    assert same.checks["champion"] and same.champion_test == "non_inferiority"
    assert same.as_tags()["gate.champion_test"] == "non_inferiority"
    # It loses 60 more than it wins: -5.7 points, the bound is far below -2 points.
    far = paired(0, 60, both=1000)
    worse = apply_gates(report.model_copy(update={"n": far[0].size}), gates, *far)
    assert not worse.checks["champion"]
    assert "possibly worse than the champion by more than 2.00%" in worse.reasons[0]


def test_the_drifted_window_gate_needs_a_significant_win_on_the_window() -> None:
    report, _ = good_report()
    gates = GateSettings(min_accuracy=0.5)
    better = apply_gates(report, gates, window_correct=paired(25, 3))
    assert better.checks["drift_window"] and better.window is not None
    assert better.as_tags()["gate.window_difference"] == f"{22 / 88:.4f}"
    same = apply_gates(report, gates, window_correct=paired(5, 4))
    assert not same.passed and "on the drifted window" in same.reasons[0]
