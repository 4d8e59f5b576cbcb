"""The Pareto front and the best model within a budget."""

from __future__ import annotations

import pytest

from fmnist.evaluation.pareto import best_within, pareto_front


def test_a_model_beaten_on_both_counts_is_off_the_front() -> None:
    # accuracy up, cost down: b beats c on both; a is cheapest, d most accurate.
    accuracy = [0.90, 0.94, 0.93, 0.95]
    cost = [0.05, 0.30, 0.40, 3.0]
    assert pareto_front(accuracy, cost) == [True, True, False, True]


def test_equal_points_both_stay_and_a_tie_on_one_count_is_decided_by_the_other() -> None:
    assert pareto_front([0.9, 0.9], [1.0, 1.0]) == [True, True]
    assert pareto_front([0.9, 0.9], [1.0, 2.0]) == [True, False]
    assert pareto_front([0.9, 0.8], [1.0, 1.0]) == [True, False]


def test_front_rejects_mismatched_or_non_finite_inputs() -> None:
    with pytest.raises(ValueError, match="2 accuracies but 1 costs"):
        pareto_front([0.9, 0.8], [1.0])
    with pytest.raises(ValueError, match="finite"):
        pareto_front([0.9], [float("nan")])


def test_best_within_a_budget_prefers_accuracy_then_the_cheaper() -> None:
    accuracy = [0.90, 0.93, 0.93, 0.95]
    cost = [0.02, 0.09, 0.08, 0.5]
    assert best_within(accuracy, cost, 0.1) == 2
    assert best_within(accuracy, cost, 1.0) == 3
    assert best_within(accuracy, cost, 0.01) is None
    with pytest.raises(ValueError):
        best_within([0.9], [], 1.0)
