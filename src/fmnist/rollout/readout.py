"""The statistical readout of an A/B experiment from the prediction log and its feedback.

Per arm (the log's ``arm`` column): requests, labelled requests, accuracy with a Wilson
interval, p95 latency and the unknown-answer rate. Between the arms: the accuracy difference
(challenger minus champion), the fixed-horizon z-test, the always-valid p-value (mSPRT, valid
under continuous monitoring), the sample size per arm planned for the minimum detectable
effect, and a decision: ``ship``, ``stop`` or ``continue`` (:mod:`fmnist.rollout.ab_stats`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from fmnist import CLASS_NAMES
from fmnist.monitoring.records import UNKNOWN
from fmnist.rollout.ab_stats import (
    Decision,
    always_valid_p_values,
    decide,
    msprt_lambda,
    sample_size_per_arm,
    simulate,
    two_proportion_z,
)
from fmnist.rollout.assignment import CHALLENGER, CHAMPION, SHADOW_SUFFIX

if TYPE_CHECKING:
    from fmnist.monitoring.feedback import FeedbackStore
    from fmnist.monitoring.prediction_log import PredictionLog


@dataclass(frozen=True)
class ArmReadout:
    """One arm's traffic and quality."""

    arm: str
    requests: int
    labelled: int
    correct: int
    accuracy: float | None
    accuracy_low: float | None
    accuracy_high: float | None
    latency_p95_ms: float | None
    unknown_rate: float | None


@dataclass(frozen=True)
class ABReadout:
    """The readout of one experiment (see the module docstring)."""

    experiment: str
    alpha: float
    minimum_detectable_effect: float
    arms: tuple[ArmReadout, ...]
    difference: float | None
    z: float | None
    p_value_fixed: float | None
    p_value_always_valid: float | None
    planned_n_per_arm: int | None
    """Labelled samples per arm by which the always-valid test reaches ``power`` for the
    minimum detectable effect (simulated at the champion's accuracy); past it without a
    significant difference the decision is ``stop``."""
    decision: Decision | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return asdict(self)


def sequential_sample_size(base_rate: float, effect: float, alpha: float, power: float) -> int:
    """Samples per arm for the always-valid test to reach ``power`` (simulated; at least the
    fixed-horizon size)."""
    fixed = sample_size_per_arm(base_rate, effect, alpha, power)
    found = simulate(
        400, base_rate=base_rate, effect=effect, alpha=alpha, power=power, seed=0
    ).sequential_n_per_arm
    return max(fixed, found if found is not None else 3 * fixed)


def _arm(arm: str, rows: list[tuple[float, str]], labels: list[bool]) -> ArmReadout:
    from fmnist.evaluation.slices import wilson_interval  # scipy: only when asked

    latencies = np.array([latency for latency, _ in rows], dtype=float)
    unknown = sum(1 for _, predicted in rows if predicted == UNKNOWN)
    correct, n = sum(labels), len(labels)
    low = high = None
    if n:
        lo, hi = wilson_interval(correct, n)
        low, high = float(lo), float(hi)
    return ArmReadout(
        arm=arm,
        requests=len(rows),
        labelled=n,
        correct=correct,
        accuracy=correct / n if n else None,
        accuracy_low=low,
        accuracy_high=high,
        latency_p95_ms=float(np.percentile(latencies, 95)) if rows else None,
        unknown_rate=unknown / len(rows) if rows else None,
    )


def ab_readout(
    log: PredictionLog,
    feedback: FeedbackStore,
    *,
    experiment: str = "",
    since: datetime | None = None,
    alpha: float = 0.05,
    minimum_detectable_effect: float = 0.02,
    power: float = 0.8,
) -> ABReadout:
    """The readout of the champion and challenger arms logged since ``since``."""
    table = log.window_table(since=since, columns=["arm", "latency_ms", "predicted_class"])
    ids = table.column("request_id").to_pylist()
    arms = table.column("arm").to_pylist()
    latency = table.column("latency_ms").to_pylist()
    predicted = table.column("predicted_class").to_pylist()
    logged = {rid: (arm, answer) for rid, arm, answer in zip(ids, arms, predicted, strict=True)}
    traffic: dict[str, list[tuple[float, str]]] = {CHAMPION: [], CHALLENGER: []}
    for arm, ms, answer in zip(arms, latency, predicted, strict=True):
        if arm in traffic:
            traffic[arm].append((ms, answer))
    outcomes: dict[str, list[bool]] = {CHAMPION: [], CHALLENGER: []}
    for request_id, label, _ in feedback.labels(since):
        if label is None:  # out-of-scope items do not count
            continue
        # In shadow mode the challenger's prediction of the same request has its own id.
        for rid in (request_id, request_id + SHADOW_SUFFIX):
            arm, answer = logged.get(rid, ("", ""))
            if arm in outcomes:
                outcomes[arm].append(answer == CLASS_NAMES[label])
    readouts = tuple(_arm(arm, traffic[arm], outcomes[arm]) for arm in (CHAMPION, CHALLENGER))
    champion, challenger = readouts
    if not champion.labelled or not challenger.labelled:
        return ABReadout(
            experiment,
            alpha,
            minimum_detectable_effect,
            readouts,
            None,
            None,
            None,
            None,
            None,
            None,
        )
    z, p_fixed = two_proportion_z(
        champion.correct, champion.labelled, challenger.correct, challenger.labelled
    )
    lam = msprt_lambda(
        champion.correct,
        champion.labelled,
        challenger.correct,
        challenger.labelled,
        minimum_detectable_effect,
    )
    # The log keeps no history of earlier looks: the p-value of this look (a running minimum
    # over looks is what a monitor keeps when it polls).
    p_valid = float(always_valid_p_values(np.atleast_1d(lam))[-1])
    base = min(max(champion.accuracy or 0.5, 0.01), 0.99 - minimum_detectable_effect)
    planned = sequential_sample_size(base, minimum_detectable_effect, alpha, power)
    difference = (challenger.accuracy or 0.0) - (champion.accuracy or 0.0)
    return ABReadout(
        experiment=experiment,
        alpha=alpha,
        minimum_detectable_effect=minimum_detectable_effect,
        arms=readouts,
        difference=difference,
        z=z,
        p_value_fixed=p_fixed,
        p_value_always_valid=p_valid,
        planned_n_per_arm=planned,
        decision=decide(
            p_valid, difference, min(champion.labelled, challenger.labelled), planned, alpha
        ),
    )


@dataclass(frozen=True)
class PairedReadout:
    """Champion and challenger on the same labelled requests (a shadow): ``b`` challenger
    right where the champion is wrong, ``c`` the reverse; ``p_worse`` is the exact one-sided
    McNemar p-value of "the challenger is worse"."""

    n: int
    b: int
    c: int
    p_worse: float

    @property
    def difference(self) -> float:
        """The challenger's accuracy minus the champion's on these requests."""
        return (self.b - self.c) / self.n if self.n else 0.0


def paired_shadow_readout(
    log: PredictionLog, feedback: FeedbackStore, *, since: datetime | None = None
) -> PairedReadout:
    """The paired comparison of a shadow's labelled requests logged since ``since``."""
    from scipy.stats import binomtest

    table = log.window_table(since=since, columns=["predicted_class"])
    answers = dict(
        zip(
            table.column("request_id").to_pylist(),
            table.column("predicted_class").to_pylist(),
            strict=True,
        )
    )
    b = c = n = 0
    for request_id, label, _ in feedback.labels(since):
        champion, challenger = answers.get(request_id), answers.get(request_id + SHADOW_SUFFIX)
        if label is None or champion is None or challenger is None:
            continue
        truth = CLASS_NAMES[label]
        n += 1
        b += challenger == truth and champion != truth
        c += champion == truth and challenger != truth
    p_worse = float(binomtest(c, b + c, 0.5, alternative="greater").pvalue) if b + c else 1.0
    return PairedReadout(n=n, b=b, c=c, p_worse=p_worse)
