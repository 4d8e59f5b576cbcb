"""The Pareto front of models that trade accuracy against a cost (latency, training time, size).

A model is on the front when no other model is at least as accurate **and** at most as costly,
with one of the two strictly better: every model off the front is beaten on both counts by one on
it, so only the front is worth serving at some budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def pareto_front(accuracy: Sequence[float], cost: Sequence[float]) -> list[bool]:
    """Whether each model is on the front of higher ``accuracy`` and lower ``cost``.

    Ties (equal accuracy and equal cost) keep both models on the front. Raises
    :class:`ValueError` for sequences of different lengths or values that are not finite.
    """
    if len(accuracy) != len(cost):
        raise ValueError(f"{len(accuracy)} accuracies but {len(cost)} costs")
    if not all(math.isfinite(v) for v in (*accuracy, *cost)):
        raise ValueError("accuracies and costs must be finite numbers")
    points = list(zip(accuracy, cost, strict=True))

    def dominated(a: float, c: float) -> bool:
        return any(
            a2 >= a and c2 <= c and (a2 > a or c2 < c) for a2, c2 in points if (a2, c2) != (a, c)
        )

    return [not dominated(a, c) for a, c in points]


def best_within(accuracy: Sequence[float], cost: Sequence[float], budget: float) -> int | None:
    """Index of the most accurate model whose cost is at most ``budget`` (None: none fits).

    Among equally accurate models the cheaper one wins.
    """
    if len(accuracy) != len(cost):
        raise ValueError(f"{len(accuracy)} accuracies but {len(cost)} costs")
    fitting = [i for i, c in enumerate(cost) if c <= budget]
    if not fitting:
        return None
    return max(fitting, key=lambda i: (accuracy[i], -cost[i]))
