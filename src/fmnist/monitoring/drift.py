"""Label-free drift detection: a window of traffic against a model version's reference.

:func:`window_features` runs the window's 28x28 inputs through the reference's own ONNX model
(:class:`~fmnist.registry.onnx_embedding.OnnxEmbedder`) exactly as the reference was computed,
and :func:`detect_drift` applies the tests of :mod:`fmnist.monitoring.drift_tests`:

(a) ``bbsd_ks``: per-class KS on the softmax outputs, Bonferroni over classes;
(b) ``mmd``: MMD on the PCA-reduced penultimate embeddings, permutation p-value;
(c) ``prediction_chi2``: chi-square on predicted-class counts (PSI in its details);
(d) ``confidence_ks`` and ``entropy_ks``;
(e) ``mean_intensity_ks``, ``ink_fraction_ks`` and ``photo_share`` (a proportion test, only
    when the reference records an expected photo share; informational otherwise);
(f) ``live_accuracy``: one-sided binomial test against the reference accuracy, when enough
    labelled feedback is in the window.

The verdict controls the family-wise false-alarm rate: Holm's correction at ``alpha`` over the
tests that ran, so on an unshifted window ``drift_detected`` is true with probability at most
``alpha``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from fmnist.evaluation.drift_reference import Reference, confidence_entropy, input_statistics
from fmnist.monitoring.drift_tests import (
    TestResult,
    accuracy_test,
    bbsd_ks,
    holm,
    ks_test,
    mmd_permutation_test,
    prediction_shift,
    proportion_test,
)

if TYPE_CHECKING:
    from fmnist.config import DriftSettings
    from fmnist.registry.onnx_embedding import OnnxEmbedder

FloatArray = npt.NDArray[np.float32]
PHOTO_KIND = "photo"


@dataclass(frozen=True)
class Window:
    """A window of logged traffic: the model inputs and what is known about them.

    ``pixels`` are the preprocessed uint8 ``(N, 28, 28)`` inputs; ``input_kinds`` how each
    arrived (``photo`` for the photo pipeline); ``timestamps`` ISO 8601 strings; ``labels`` the
    feedback label per row (-1: none).
    """

    pixels: npt.NDArray[np.uint8]
    input_kinds: Sequence[str] | None = None
    timestamps: Sequence[str] | None = None
    labels: npt.NDArray[np.int64] | None = None

    def __len__(self) -> int:
        """Number of predictions in the window."""
        return len(self.pixels)


@dataclass(frozen=True)
class WindowFeatures:
    """What the detectors compare: the window seen through the reference's model."""

    probabilities: FloatArray
    embeddings: FloatArray
    """PCA-reduced, in the reference's basis."""
    mean_intensity: FloatArray
    ink_fraction: FloatArray
    photo: npt.NDArray[np.bool_] | None = None
    labels: npt.NDArray[np.int64] | None = None

    def __len__(self) -> int:
        """Number of rows."""
        return len(self.probabilities)

    def take(self, index: npt.ArrayLike) -> WindowFeatures:
        """The rows at ``index`` (a window drawn from precomputed features)."""
        i = np.asarray(index)
        return WindowFeatures(
            self.probabilities[i],
            self.embeddings[i],
            self.mean_intensity[i],
            self.ink_fraction[i],
            None if self.photo is None else self.photo[i],
            None if self.labels is None else self.labels[i],
        )


def window_features(
    reference: Reference,
    embedder: OnnxEmbedder,
    pixels: npt.NDArray[np.uint8],
    *,
    input_kinds: Sequence[str] | None = None,
    labels: npt.NDArray[np.int64] | None = None,
) -> WindowFeatures:
    """Probabilities, reduced embeddings and input statistics of ``pixels``."""
    if embedder.sha256 != reference.info.onnx_sha256:
        raise ValueError(
            f"{embedder.path} is not the model the reference was computed with "
            f"(sha256 {embedder.sha256[:12]} != {reference.info.onnx_sha256[:12]})"
        )
    probabilities, raw = embedder.features(pixels)
    stats = input_statistics(pixels)
    photo = None if input_kinds is None else np.asarray([k == PHOTO_KIND for k in input_kinds])
    return WindowFeatures(
        probabilities,
        reference.pca.transform(raw),
        stats["mean_intensity"],
        stats["ink_fraction"],
        photo,
        labels,
    )


class WindowInfo(BaseModel):
    """Which traffic was checked."""

    size: int
    start: str | None = None
    end: str | None = None


class ReferenceSummary(BaseModel):
    """Which reference the window was compared with."""

    model_name: str | None
    model_version: int | None
    n: int
    embedding_kind: str
    embedding_note: str


class DriftResult(BaseModel):
    """The verdict on one window, every test, and where its report was written."""

    drift_detected: bool
    alpha: float
    correction: str
    tests: list[TestResult]
    window: WindowInfo
    reference: ReferenceSummary
    report_path: str | None = None
    checked_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())

    def test(self, name: str) -> TestResult:
        """The test called ``name``."""
        for t in self.tests:
            if t.name == name:
                return t
        raise KeyError(name)


def _run_tests(
    reference: Reference, window: WindowFeatures, settings: DriftSettings
) -> list[TestResult]:
    names = reference.info.class_names
    ref_conf, ref_entropy = confidence_entropy(reference.probabilities)
    conf, entropy = confidence_entropy(window.probabilities)
    rng = np.random.default_rng(settings.seed)
    n_ref = min(settings.mmd_reference_size, len(reference.embeddings))
    mmd_ref = reference.embeddings[np.sort(rng.choice(len(reference.embeddings), n_ref, False))]
    tests = [
        bbsd_ks(reference.probabilities, window.probabilities, names),
        mmd_permutation_test(
            mmd_ref, window.embeddings, permutations=settings.mmd_permutations, seed=settings.seed
        ),
        prediction_shift(
            reference.predicted, window.probabilities.argmax(axis=1), len(names), names
        ),
        ks_test("confidence_ks", ref_conf, conf),
        ks_test("entropy_ks", ref_entropy, entropy),
        ks_test("mean_intensity_ks", reference.mean_intensity, window.mean_intensity),
        ks_test("ink_fraction_ks", reference.ink_fraction, window.ink_fraction),
    ]
    tests.append(_photo_test(reference, window))
    tests.append(_accuracy(reference, window, settings.min_feedback))
    return tests


def _photo_test(reference: Reference, window: WindowFeatures) -> TestResult:
    observed = None if window.photo is None else int(window.photo.sum())
    expected = reference.info.photo_share
    if observed is not None and expected is not None:
        return proportion_test("photo_share", observed, len(window), expected)
    reason = (
        "the window has no input kinds"
        if observed is None
        else "the reference records no "
        "photo share (its images are Fashion-MNIST), so this share is reported, not tested"
    )
    share = None if observed is None else observed / len(window)
    return TestResult(
        name="photo_share",
        statistic=share,
        p_value=None,
        in_verdict=False,
        details={"observed": share, "expected": expected, "reason": reason},
    )


def _accuracy(reference: Reference, window: WindowFeatures, min_n: int) -> TestResult:
    accuracy = reference.info.accuracy
    labelled = np.zeros(len(window), dtype=bool) if window.labels is None else window.labels >= 0
    if accuracy is None:
        return TestResult(
            name="live_accuracy",
            statistic=None,
            p_value=None,
            in_verdict=False,
            details={"labelled": int(labelled.sum()), "reason": "the reference has no labels"},
        )
    predicted = window.probabilities.argmax(axis=1)
    correct = 0 if window.labels is None else int((predicted == window.labels)[labelled].sum())
    return accuracy_test(correct, int(labelled.sum()), accuracy, min_n)


def detect_drift(
    reference: Reference,
    window: WindowFeatures,
    settings: DriftSettings,
    *,
    info: WindowInfo | None = None,
) -> DriftResult:
    """Run every test on ``window`` and combine them with Holm's correction at ``alpha``."""
    if len(window) < settings.min_window:
        raise ValueError(
            f"the window holds {len(window)} predictions; at least {settings.min_window} are "
            "needed (drift.min_window)"
        )
    tests = _run_tests(reference, window, settings)
    voting = [t for t in tests if t.in_verdict and t.p_value is not None]
    p_values = [t.p_value for t in voting if t.p_value is not None]
    thresholds, fired = holm(p_values, settings.alpha)
    for test, threshold, rejected in zip(voting, thresholds, fired, strict=True):
        test.threshold = threshold
        test.fired = rejected
    return DriftResult(
        drift_detected=any(fired),
        alpha=settings.alpha,
        correction=f"Holm over {len(voting)} tests",
        tests=tests,
        window=info or WindowInfo(size=len(window)),
        reference=ReferenceSummary(
            model_name=reference.info.model_name,
            model_version=reference.info.model_version,
            n=reference.info.n,
            embedding_kind=reference.info.embedding_kind,
            embedding_note=reference.info.embedding_note,
        ),
    )


def check_window(
    reference: Reference,
    embedder: OnnxEmbedder,
    window: Window,
    settings: DriftSettings,
) -> tuple[DriftResult, WindowFeatures]:
    """The monitor's whole path for one window: features, then :func:`detect_drift`."""
    features = window_features(
        reference, embedder, window.pixels, input_kinds=window.input_kinds, labels=window.labels
    )
    stamps = sorted(window.timestamps) if window.timestamps else []
    info = WindowInfo(
        size=len(window), start=stamps[0] if stamps else None, end=stamps[-1] if stamps else None
    )
    return detect_drift(reference, features, settings, info=info), features


def summary_rows(result: DriftResult) -> list[dict[str, Any]]:
    """One flat row per test (for tables and CSV)."""
    return [
        {
            "test": t.name,
            "statistic": t.statistic,
            "p_value": t.p_value,
            "threshold": t.threshold,
            "fired": t.fired,
            "in_verdict": t.in_verdict,
        }
        for t in result.tests
    ]
