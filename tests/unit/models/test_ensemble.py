"""Soft voting: probability averaging, weights, temperatures, TTA, validation weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from fmnist.data.loaders import PIXEL_MEAN, PIXEL_STD
from fmnist.models import (
    SoftVotingEnsemble,
    build_ensemble,
    mixture_weights,
    weights_from_validation,
)
from fmnist.registry.onnx_export import InferenceModel


class Corners(nn.Module):
    """Logits ``left * x[0, 0] + right * x[0, 27]``: a mirror swaps ``left`` and ``right``."""

    def __init__(self, left: list[float], right: list[float]) -> None:
        super().__init__()
        self.left = nn.Parameter(torch.tensor(left))
        self.right = nn.Parameter(torch.tensor(right))

    def forward(self, x: Tensor) -> Tensor:
        return x[:, 0, 0, 0:1] * self.left + x[:, 0, 0, 27:28] * self.right


class Exploding(nn.Module):
    """A member that must never be called."""

    def forward(self, x: Tensor) -> Tensor:
        raise AssertionError("a zero-weight member was evaluated")


def log(p: list[float]) -> list[float]:
    return [math.log(v) for v in p]


# Member A: p = (.5, .3, .2) on the image, (.2, .2, .6) on its mirror.
# Member B: p = (.1, .8, .1) on the image, (.3, .4, .3) on its mirror.
A = ([0.5, 0.3, 0.2], [0.2, 0.2, 0.6])
B = ([0.1, 0.8, 0.1], [0.3, 0.4, 0.3])


def members() -> list[nn.Module]:
    return [Corners(log(A[0]), log(A[1])), Corners(log(B[0]), log(B[1]))]


def image() -> Tensor:
    """One image whose top-left pixel is 1 and top-right pixel 0."""
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 0, 0] = 1.0
    return x


@pytest.mark.parametrize(
    ("weights", "tta", "expected"),
    [
        (None, False, [0.3, 0.55, 0.15]),  # (A + B) / 2
        ([3.0, 1.0], False, [0.4, 0.425, 0.175]),  # .75 A + .25 B
        (None, True, [0.275, 0.425, 0.3]),  # A_tta = (.35, .25, .4), B_tta = (.2, .6, .2)
        ([3.0, 1.0], True, [0.3125, 0.3375, 0.35]),  # .75 A_tta + .25 B_tta
        ([6.0, 2.0], True, [0.3125, 0.3375, 0.35]),  # weights are normalised
    ],
)
def test_averages_member_probabilities(
    weights: list[float] | None, tta: bool, expected: list[float]
) -> None:
    ensemble = build_ensemble(members(), weights, tta=tta)
    with torch.no_grad():
        out = ensemble(image())
    torch.testing.assert_close(out.exp(), torch.tensor([expected]), rtol=0, atol=1e-6)
    # InferenceModel at T=1 serves exactly the ensemble average.
    with torch.no_grad():
        _, served = InferenceModel(ensemble, 1.0)(image() * PIXEL_STD + PIXEL_MEAN)
    torch.testing.assert_close(served, torch.tensor([expected]), rtol=0, atol=1e-5)


def test_member_temperatures_soften_each_member() -> None:
    # B at T=2: softmax(log p / 2) = sqrt(p) / sum(sqrt(p)).
    root = np.sqrt(B[0])
    b_soft = root / root.sum()
    expected = (np.array(A[0]) + b_soft) / 2
    ensemble = build_ensemble(members(), temperatures=[1.0, 2.0])
    with torch.no_grad():
        out = ensemble(image())
    np.testing.assert_allclose(out.exp().numpy()[0], expected, atol=1e-6)


def test_zero_weight_members_are_skipped() -> None:
    ensemble = build_ensemble([*members(), Exploding()], [1.0, 1.0, 0.0])
    assert ensemble.weights == (0.5, 0.5, 0.0)
    with torch.no_grad():
        out = ensemble(image())
    torch.testing.assert_close(out.exp(), torch.tensor([[0.3, 0.55, 0.15]]), rtol=0, atol=1e-6)


def test_output_stays_finite_when_probabilities_underflow() -> None:
    member = Corners([200.0, 0.0, -200.0], [0.0, 0.0, 0.0])
    with torch.no_grad():
        out = build_ensemble([member, member])(image())
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 2], torch.tensor(-400.0))


def test_build_ensemble_is_in_eval_mode_and_accepts_numpy_weights() -> None:
    ensemble = build_ensemble(members(), np.array([0.25, 0.75]))
    assert isinstance(ensemble, SoftVotingEnsemble)
    assert not ensemble.training and not any(m.training for m in ensemble.members)
    assert ensemble.weights == (0.25, 0.75)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"members": []}, "at least one member"),
        ({"weights": [1.0]}, "weights must be 2"),
        ({"weights": [1.0, -1.0]}, "non-negative"),
        ({"weights": [0.0, 0.0]}, "positive sum"),
        ({"weights": [1.0, float("nan")]}, "finite"),
        ({"temperatures": [1.0]}, "2 members but 1 temperatures"),
        ({"temperatures": [1.0, 0.0]}, "finite and positive"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"members": members(), **kwargs}
    with pytest.raises(ValueError, match=match):
        SoftVotingEnsemble(**args)  # type: ignore[arg-type]


def test_weights_from_validation_on_a_constructed_case() -> None:
    labels = np.array([0, 1])
    # Member 1 gives the true classes p = .8 and .5: NLL = -(ln .8 + ln .5) / 2.
    # Member 2 is uniform: NLL = ln 2. Weights are proportional to exp(-NLL), i.e. to the
    # geometric mean of the true-class probabilities: sqrt(.8 * .5) and .5.
    first = np.log(np.array([[0.8, 0.2], [0.5, 0.5]]))
    second = np.zeros((2, 2))
    weights = weights_from_validation([first, second], labels)
    g = math.sqrt(0.8 * 0.5)
    np.testing.assert_allclose(weights, [g / (g + 0.5), 0.5 / (g + 0.5)], rtol=1e-12)
    # The same as a softmax over negative NLL; invariant to shifting logits.
    nll = np.array([-(math.log(0.8) + math.log(0.5)) / 2, math.log(2)])
    softmax = np.exp(-nll) / np.exp(-nll).sum()
    np.testing.assert_allclose(weights_from_validation([first + 7, second - 3], labels), softmax)


def test_weights_from_validation_sharpness_and_temperatures() -> None:
    labels = np.array([0, 1])
    first = np.log(np.array([[0.8, 0.2], [0.5, 0.5]]))
    second = np.zeros((2, 2))
    np.testing.assert_allclose(weights_from_validation([first, second], labels, sharpness=0), 0.5)
    sharp = weights_from_validation([first, second], labels, sharpness=200)
    assert sharp[0] > 0.999 and sharp.dtype == np.float64
    # A huge temperature makes member 1 uniform too: equal NLL, equal weights.
    flat = weights_from_validation([first, second], labels, temperatures=[1e9, 1.0])
    np.testing.assert_allclose(flat, 0.5, atol=1e-8)


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        ([], [0], "no member logits"),
        ([np.zeros((3, 2))], [0, 1], "do not match"),
        ([np.zeros(2)], [0, 1], "do not match"),
        ([np.zeros((2, 2))], [0, 2], r"labels must be in \[0, 2\)"),
    ],
)
def test_weights_from_validation_rejects_bad_input(
    logits: list[np.ndarray], labels: list[int], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        weights_from_validation(logits, labels)


def _two_class_log_probs(p_true: list[list[float]]) -> np.ndarray:
    """(K, N, 2) log-probabilities where class 0 (the label) has probability ``p_true``."""
    p = np.asarray(p_true, dtype=np.float64)
    return np.log(np.stack([p, 1 - p], axis=-1))


def test_mixture_weights_reach_the_hand_computed_optimum() -> None:
    # Mean log-likelihood 2 log(0.1 + 0.8w) + log(0.9 - 0.8w) peaks at w = 1.7 / 2.4.
    log_probs = _two_class_log_probs([[0.9, 0.9, 0.1], [0.1, 0.1, 0.9]])
    weights, nll = mixture_weights(log_probs, [0, 0, 0])
    np.testing.assert_allclose(weights, [1.7 / 2.4, 0.7 / 2.4], atol=1e-4)
    w = 1.7 / 2.4
    expected = -(2 * np.log(0.1 + 0.8 * w) + np.log(0.9 - 0.8 * w)) / 3
    assert nll == pytest.approx(expected, abs=1e-7)


def test_mixture_weights_drop_a_useless_member_and_never_lose_to_equal_weights() -> None:
    rng = np.random.default_rng(0)
    good = rng.uniform(0.6, 0.99, size=200)
    log_probs = _two_class_log_probs([good.tolist(), [0.5] * 200])
    weights, nll = mixture_weights(log_probs, np.zeros(200, dtype=int))
    assert weights[1] < 0.05 and weights.sum() == pytest.approx(1.0)
    equal = -np.log(0.5 * good + 0.25).mean()
    assert nll <= equal
    with pytest.raises(ValueError, match="do not match 3 labels"):
        mixture_weights(log_probs, [0, 0, 0])
