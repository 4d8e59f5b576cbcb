"""Promotion gates: may a challenger model replace the champion?

:func:`apply_gates` checks a challenger's :class:`~fmnist.evaluation.metrics.EvaluationReport`
against :class:`~fmnist.config.GateSettings` and, given both models' per-sample correctness on
the same test set, requires a significant improvement by an exact one-sided McNemar test
(``superiority``) or, for a retrained candidate, that it is not worse than the champion by more
than a margin (``non_inferiority``: the one-sided lower confidence bound of the paired accuracy
difference). With a held-out drifted window, the challenger must also be significantly better
than the champion on it (McNemar, ``drift_window``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import binomtest, norm

from fmnist.config import GateSettings
from fmnist.evaluation.metrics import EvaluationReport

MAX_TAG_LENGTH = 5000
"""Longest tag value written by :meth:`GateDecision.as_tags` (MLflow's limit)."""


class McNemarResult(BaseModel):
    """Paired comparison of two models on the same samples.

    ``b``: challenger right and champion wrong; ``c``: challenger wrong and champion right.
    ``statistic`` is the continuity-corrected chi-square ``(|b - c| - 1)^2 / (b + c)`` (0 when
    there are no discordant pairs); ``p_value`` is the exact one-sided binomial test of
    "challenger better" (``P(X >= b)`` for ``X ~ Binomial(b + c, 1/2)``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int = Field(ge=0)
    b: int = Field(ge=0)
    c: int = Field(ge=0)
    statistic: float = Field(ge=0.0)
    p_value: float = Field(ge=0.0, le=1.0)

    @property
    def difference(self) -> float:
        """The challenger's accuracy minus the champion's on these samples."""
        return (self.b - self.c) / self.n if self.n else 0.0

    def lower_bound(self, alpha: float) -> float:
        """One-sided ``1 - alpha`` lower confidence bound of :attr:`difference` (Wald, paired)."""
        if not self.n:
            return 0.0
        variance = max(self.b + self.c - (self.b - self.c) ** 2 / self.n, 0.0) / self.n**2
        return self.difference - float(norm.ppf(1 - alpha)) * float(np.sqrt(variance))


def _as_correct(values: npt.ArrayLike, what: str) -> npt.NDArray[np.bool_]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a 1-d array, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.issubdtype(arr.dtype, np.integer) or not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{what} must hold booleans (or 0/1), got dtype {arr.dtype}")
        arr = arr.astype(np.bool_)
    return arr


def mcnemar_test(
    challenger_correct: npt.ArrayLike, champion_correct: npt.ArrayLike
) -> McNemarResult:
    """Exact one-sided McNemar test that the challenger is more often right than the champion."""
    new = _as_correct(challenger_correct, "challenger_correct")
    old = _as_correct(champion_correct, "champion_correct")
    if new.shape != old.shape:
        raise ValueError(
            f"challenger and champion were scored on different sets: {new.size} vs {old.size}"
        )
    b = int(np.count_nonzero(new & ~old))
    c = int(np.count_nonzero(~new & old))
    if b + c == 0:
        return McNemarResult(n=int(new.size), b=0, c=0, statistic=0.0, p_value=1.0)
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    p_value = float(binomtest(b, b + c, 0.5, alternative="greater").pvalue)
    return McNemarResult(
        n=int(new.size), b=b, c=c, statistic=float(statistic), p_value=min(1.0, p_value)
    )


class GateDecision(BaseModel):
    """Outcome of :func:`apply_gates`: ``passed`` is true only when every check passed.

    ``checks`` maps each applied check (``accuracy``, ``class_recall``, ``ece`` and, with a
    champion, ``champion``) to its result; ``reasons`` has one sentence per failed check.
    """

    model_config = ConfigDict(extra="forbid")

    passed: bool
    reasons: list[str]
    checks: dict[str, bool]
    mcnemar: McNemarResult | None = None
    champion_test: str = "superiority"
    window: McNemarResult | None = None
    """The comparison on the held-out drifted window, when there was one."""

    def as_tags(self) -> dict[str, str]:
        """Flat string tags for a model registry, e.g. ``{"gate.passed": "true", ...}``."""
        tags = {
            "gate.passed": str(self.passed).lower(),
            "gate.reasons": "; ".join(self.reasons)[:MAX_TAG_LENGTH],
        }
        for name, ok in self.checks.items():
            tags[f"gate.check.{name}"] = "pass" if ok else "fail"
        if self.mcnemar is not None:
            tags["gate.mcnemar_p"] = f"{self.mcnemar.p_value:.6g}"
            tags["gate.mcnemar_b"] = str(self.mcnemar.b)
            tags["gate.mcnemar_c"] = str(self.mcnemar.c)
            tags["gate.champion_test"] = self.champion_test
        if self.window is not None:
            tags["gate.window_n"] = str(self.window.n)
            tags["gate.window_difference"] = f"{self.window.difference:.4f}"
            tags["gate.window_p"] = f"{self.window.p_value:.6g}"
        return tags


def _digits(value: float, threshold: float) -> int:
    """Decimals needed (3 to 6) so that ``value`` and ``threshold`` print differently."""
    for digits in range(3, 6):
        if f"{value:.{digits}f}" != f"{threshold:.{digits}f}":
            return digits
    return 6


def apply_gates(
    report: EvaluationReport,
    gates: GateSettings,
    challenger_correct: npt.ArrayLike | None = None,
    champion_correct: npt.ArrayLike | None = None,
    *,
    window_correct: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
) -> GateDecision:
    """Check a challenger's report against the promotion gates.

    Checks: accuracy >= ``min_accuracy``; every class's recall >= ``min_class_recall`` (a class
    without test samples fails, since its recall is unmeasured); ``report.ece`` (after
    temperature scaling) <= ``max_ece``; when ``champion_correct`` is given, the champion
    comparison of ``gates.champion_test`` (``challenger_correct`` is then required, and both
    must have ``report.n`` entries): superiority is McNemar ``p < mcnemar_alpha``,
    non-inferiority is a lower bound of the accuracy difference >= ``-non_inferiority_margin``;
    with ``window_correct`` (challenger's, champion's on the held-out drifted window), McNemar
    ``p < mcnemar_alpha`` on that window.
    """
    checks: dict[str, bool] = {}
    reasons: list[str] = []

    checks["accuracy"] = report.accuracy >= gates.min_accuracy
    if not checks["accuracy"]:
        d = _digits(report.accuracy, gates.min_accuracy)
        reasons.append(f"accuracy {report.accuracy:.{d}f} < minimum {gates.min_accuracy:.{d}f}")

    missing = [m.name for m in report.per_class if m.support == 0]
    low = [m for m in report.per_class if m.support > 0 and m.recall < gates.min_class_recall]
    checks["class_recall"] = not missing and not low
    if low:
        d = max(_digits(m.recall, gates.min_class_recall) for m in low)
        listed = ", ".join(
            f"{m.name} {m.recall:.{d}f}" for m in sorted(low, key=lambda m: m.recall)
        )
        reasons.append(f"class recall below minimum {gates.min_class_recall:.{d}f}: {listed}")
    if missing:
        reasons.append(f"class recall not measured (no test samples): {', '.join(missing)}")

    checks["ece"] = report.ece <= gates.max_ece
    if not checks["ece"]:
        d = _digits(report.ece, gates.max_ece)
        reasons.append(f"ECE {report.ece:.{d}f} > maximum {gates.max_ece:.{d}f}")

    mcnemar: McNemarResult | None = None
    if champion_correct is not None:
        if challenger_correct is None:
            raise ValueError("champion_correct needs challenger_correct on the same samples")
        mcnemar = mcnemar_test(challenger_correct, champion_correct)
        if mcnemar.n != report.n:
            raise ValueError(
                f"correctness arrays have {mcnemar.n} entries but the report has n={report.n}"
            )
        if gates.champion_test == "superiority":
            checks["champion"] = mcnemar.p_value < gates.mcnemar_alpha
            if not checks["champion"]:
                reasons.append(
                    "not significantly better than the champion "
                    f"(McNemar p={mcnemar.p_value:.3g} >= {gates.mcnemar_alpha:g}; "
                    f"+{mcnemar.b}/-{mcnemar.c} discordant)"
                )
        else:
            bound = mcnemar.lower_bound(gates.mcnemar_alpha)
            checks["champion"] = bound >= -gates.non_inferiority_margin
            if not checks["champion"]:
                reasons.append(
                    f"possibly worse than the champion by more than "
                    f"{gates.non_inferiority_margin:.2%} (difference {mcnemar.difference:+.2%}, "
                    f"lower bound {bound:+.2%}; +{mcnemar.b}/-{mcnemar.c} discordant)"
                )

    window: McNemarResult | None = None
    if window_correct is not None:
        window = mcnemar_test(*window_correct)
        checks["drift_window"] = window.p_value < gates.mcnemar_alpha
        if not checks["drift_window"]:
            reasons.append(
                "not significantly better than the champion on the drifted window "
                f"({window.n} held out, difference {window.difference:+.2%}, McNemar p="
                f"{window.p_value:.3g} >= {gates.mcnemar_alpha:g})"
            )

    return GateDecision(
        passed=all(checks.values()),
        reasons=reasons,
        checks=checks,
        mcnemar=mcnemar,
        champion_test=gates.champion_test,
        window=window,
    )
