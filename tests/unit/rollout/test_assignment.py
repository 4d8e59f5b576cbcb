"""Sticky A/B assignment: the split ratio holds, a client keeps its arm, salts reshuffle."""

from __future__ import annotations

import pytest

from fmnist.rollout.assignment import CHALLENGER, CHAMPION, assign_arm, bucket

CLIENTS = [f"client-{i}" for i in range(10_000)]


@pytest.mark.parametrize("share", [0.05, 0.25, 0.5, 0.9])
def test_the_split_ratio_holds_within_two_points_over_10000_clients(share: float) -> None:
    arms = [assign_arm(c, "exp-1", share) for c in CLIENTS]
    assert abs(arms.count(CHALLENGER) / len(CLIENTS) - share) <= 0.02


def test_a_client_always_gets_the_same_arm() -> None:
    first = [assign_arm(c, "exp-1", 0.5) for c in CLIENTS[:1000]]
    assert [assign_arm(c, "exp-1", 0.5) for c in CLIENTS[:1000]] == first


def test_a_growing_share_only_moves_clients_to_the_challenger() -> None:
    small = {c for c in CLIENTS if assign_arm(c, "exp-1", 0.05) == CHALLENGER}
    large = {c for c in CLIENTS if assign_arm(c, "exp-1", 0.25) == CHALLENGER}
    assert small < large  # a canary step never sends a challenger client back


def test_another_salt_reshuffles_independently() -> None:
    a = [assign_arm(c, "exp-1", 0.5) == CHALLENGER for c in CLIENTS]
    b = [assign_arm(c, "exp-2", 0.5) == CHALLENGER for c in CLIENTS]
    both = sum(x and y for x, y in zip(a, b, strict=True)) / len(CLIENTS)
    assert abs(both - 0.25) <= 0.02


def test_edges() -> None:
    assert assign_arm("x", "s", 0.0) == CHAMPION and assign_arm("x", "s", 1.0) == CHALLENGER
    assert 0.0 <= bucket("x", "s") < 1.0
    with pytest.raises(ValueError, match="challenger_share"):
        assign_arm("x", "s", 1.5)
