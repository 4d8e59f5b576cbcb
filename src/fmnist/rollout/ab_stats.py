"""Statistics of an A/B test on accuracy: fixed-horizon and always-valid tests, sample sizes.

Accuracy per arm is a proportion (correct / labelled). Two tests compare the arms:

* the classical **two-proportion z-test** (pooled variance), valid when the sample size is
  fixed in advance and the data are looked at once;
* the **mixture sequential probability ratio test** (mSPRT) of Johari, Pekelis and Walsh
  ("Always valid inference: continuous monitoring of A/B tests", Operations Research 2022)
  with a normal mixture N(0, tau^2) over the difference: its p-value stays valid however often
  the experiment is looked at, which is how dashboards are used. For a difference estimate
  ``d`` with variance ``V``, ``Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))``
  and the always-valid p-value is the running minimum of ``1 / Lambda``.

``simulate`` checks both by Monte Carlo: A/A experiments with a look after every batch (the
share rejected is the false-positive rate under peeking) and A/B experiments with a true
difference (power).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

Decision = Literal["continue", "ship", "stop"]
FloatArray = npt.NDArray[np.float64]

MIN_PER_ARM = 100
"""Labelled samples each arm needs before the sequential test is evaluated (the variance
estimate is too rough before, which would inflate false positives)."""


def two_proportion_z(correct_a: int, n_a: int, correct_b: int, n_b: int) -> tuple[float, float]:
    """The z statistic of ``B - A`` (pooled variance) and its two-sided p-value."""
    if min(n_a, n_b) == 0:
        return 0.0, 1.0
    pooled = (correct_a + correct_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance == 0:
        return 0.0, 1.0
    z = (correct_b / n_b - correct_a / n_a) / math.sqrt(variance)
    return z, 2 * (1 - NormalDist().cdf(abs(z)))


def msprt_lambda(
    correct_a: npt.ArrayLike,
    n_a: npt.ArrayLike,
    correct_b: npt.ArrayLike,
    n_b: npt.ArrayLike,
    tau: float,
) -> FloatArray:
    """The mSPRT likelihood ratio of ``B - A`` (elementwise; 1 where an arm has fewer than
    :data:`MIN_PER_ARM` samples or no variance yet)."""
    ca, na = np.asarray(correct_a, float), np.asarray(n_a, float)
    cb, nb = np.asarray(correct_b, float), np.asarray(n_b, float)
    ready = (na >= MIN_PER_ARM) & (nb >= MIN_PER_ARM)
    na_, nb_ = np.where(ready, na, 1.0), np.where(ready, nb, 1.0)
    pa, pb = ca / na_, cb / nb_
    variance = pa * (1 - pa) / na_ + pb * (1 - pb) / nb_
    ready &= variance > 0
    v = np.where(ready, variance, 1.0)
    t2 = tau * tau
    log_lambda = 0.5 * np.log(v / (v + t2)) + t2 * (pb - pa) ** 2 / (2 * v * (v + t2))
    return np.where(ready, np.exp(np.minimum(log_lambda, 700.0)), 1.0)


def always_valid_p_values(lambdas: npt.ArrayLike) -> FloatArray:
    """Running minimum of ``1 / Lambda`` over the looks (last axis), capped at 1."""
    inverse = np.minimum(1.0, 1.0 / np.asarray(lambdas, float))
    return np.minimum.accumulate(inverse, axis=-1)


def sample_size_per_arm(base_rate: float, effect: float, alpha: float, power: float) -> int:
    """Labelled samples per arm for a two-sided fixed-horizon test to detect ``effect``."""
    if not 0 < base_rate < 1 or not 0 < base_rate + effect < 1 or effect == 0:
        raise ValueError("base_rate and base_rate + effect must be in (0, 1), effect != 0")
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    p2 = base_rate + effect
    variance = base_rate * (1 - base_rate) + p2 * (1 - p2)
    return math.ceil(z * z * variance / (effect * effect))


def decide(p_value: float, difference: float, n_min: int, planned_n: int, alpha: float) -> Decision:
    """``ship`` (B significantly better), ``stop`` (B significantly worse, or the planned
    sample reached without a difference) or ``continue``."""
    if p_value <= alpha:
        return "ship" if difference > 0 else "stop"
    return "stop" if n_min >= planned_n else "continue"


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` measured (rates over ``experiments`` simulated experiments)."""

    experiments: int
    alpha: float
    base_rate: float
    effect: float
    tau: float
    batch_per_arm: int
    planned_n_per_arm: int
    looks: int
    """Looks per experiment: one per batch, up to three times the planned size."""
    false_positive_rate: float
    """A/A experiments the always-valid test rejected at some look (goal <= alpha)."""
    false_positive_rate_peeking_z_test: float
    """A/A experiments a z-test looked at after every batch up to the planned size rejected
    (why peeking needs an always-valid test)."""
    false_positive_rate_fixed_z_test: float
    """A/A experiments the z-test rejected when looked at once, at the planned size."""
    power: float
    """A/B experiments (true difference ``effect``) the always-valid test rejected by the
    planned size."""
    power_fixed_z_test: float
    """The same for the z-test looked at once, at the planned size."""
    sequential_n_per_arm: int | None
    """Samples per arm by which the always-valid test reached the target power (the price of
    looking as often as one likes); None: not within three times the planned size."""
    median_stopping_n_per_arm: float | None
    """Samples per arm when the always-valid test first rejected (detected A/B runs)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return asdict(self)


def _runs(
    rng: np.random.Generator, experiments: int, looks: int, batch: int, rate_a: float, rate_b: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    n = batch * np.arange(1, looks + 1, dtype=float)
    a = rng.binomial(batch, rate_a, size=(experiments, looks)).cumsum(axis=1).astype(float)
    b = rng.binomial(batch, rate_b, size=(experiments, looks)).cumsum(axis=1).astype(float)
    return a, b, np.broadcast_to(n, a.shape)


def _z_p_values(a: FloatArray, b: FloatArray, n: FloatArray) -> FloatArray:
    pooled = (a + b) / (2 * n)
    variance = pooled * (1 - pooled) * (2 / n)
    z = np.where(variance > 0, (b - a) / n / np.sqrt(np.where(variance > 0, variance, 1)), 0.0)
    return np.asarray(np.vectorize(math.erfc)(np.abs(z) / math.sqrt(2)), dtype=float)


def simulate(
    experiments: int = 1000,
    *,
    base_rate: float = 0.9,
    effect: float = 0.02,
    alpha: float = 0.05,
    power: float = 0.8,
    batch: int = 100,
    tau: float | None = None,
    seed: int = 0,
) -> SimulationResult:
    """Monte Carlo check of the tests (see the module docstring); ``tau`` defaults to
    ``effect``. Each experiment looks after every ``batch`` labelled samples per arm, up to
    the planned fixed-horizon size for ``effect`` at ``power``."""
    tau = abs(effect) if tau is None else tau
    planned = sample_size_per_arm(base_rate, effect, alpha, power)
    at_planned = math.ceil(planned / batch)  # looks by the planned size
    looks = 3 * at_planned
    rng = np.random.default_rng(seed)

    a, b, n = _runs(rng, experiments, looks, batch, base_rate, base_rate)
    null_p = always_valid_p_values(msprt_lambda(a, n, b, n, tau))
    null_z = _z_p_values(a, b, n)
    a1, b1, n1 = _runs(rng, experiments, looks, batch, base_rate, base_rate + effect)
    alt_p = always_valid_p_values(msprt_lambda(a1, n1, b1, n1, tau))
    end = at_planned - 1
    alt_z = _z_p_values(a1[:, end : end + 1], b1[:, end : end + 1], n1[:, end : end + 1])
    null_z_fixed = null_z[:, end]

    rejected_by = np.mean(alt_p <= alpha, axis=0)  # share detected by each look
    reached = np.nonzero(rejected_by >= power)[0]
    detected = alt_p[:, -1] <= alpha
    first = np.argmax(alt_p <= alpha, axis=1)
    stopping = (first[detected] + 1) * batch
    return SimulationResult(
        experiments=experiments,
        alpha=alpha,
        base_rate=base_rate,
        effect=effect,
        tau=tau,
        batch_per_arm=batch,
        planned_n_per_arm=planned,
        looks=looks,
        false_positive_rate=float(np.mean(null_p[:, -1] <= alpha)),
        false_positive_rate_peeking_z_test=float(
            np.mean((null_z[:, :at_planned] <= alpha).any(axis=1))
        ),
        false_positive_rate_fixed_z_test=float(np.mean(null_z_fixed <= alpha)),
        power=float(rejected_by[end]),
        power_fixed_z_test=float(np.mean(alt_z[:, 0] <= alpha)),
        sequential_n_per_arm=int((reached[0] + 1) * batch) if reached.size else None,
        median_stopping_n_per_arm=float(np.median(stopping)) if stopping.size else None,
    )
