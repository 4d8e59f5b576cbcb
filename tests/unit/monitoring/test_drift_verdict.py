"""The combined drift verdict: false alarms on unshifted windows, detections of real shifts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmnist import CLASS_NAMES
from fmnist.config import DriftSettings
from fmnist.evaluation.drift_reference import Pca, Reference, ReferenceInfo
from fmnist.monitoring.drift import DriftResult, WindowFeatures, detect_drift

DIMS = 8
# Small sizes keep 200 windows fast; 200 permutations let MMD reach p = 1/201 < alpha / 9.
SETTINGS = DriftSettings(mmd_reference_size=300, mmd_permutations=200, min_feedback=30)


def _draw(rng: np.random.Generator, n: int, *, shift: float = 0.0, dim: float = 1.0) -> dict:
    """A synthetic "model": embeddings -> logits -> probabilities, inputs -> statistics."""
    z = rng.normal(size=(n, DIMS))
    z[:, 0] += shift
    weights = np.random.default_rng(123).normal(size=(DIMS, 10))
    logits = 2.0 * z @ weights / np.sqrt(DIMS)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    labels = np.where(rng.random(n) < 0.9, probs.argmax(axis=1), rng.integers(0, 10, n))
    return {
        "probabilities": probs,
        "embeddings": z.astype(np.float32),
        "mean_intensity": (dim * rng.beta(2, 5, n)).astype(np.float32),
        "ink_fraction": (rng.beta(3, 4, n)).astype(np.float32),
        "labels": labels.astype(np.int64),
    }


def _reference(rng: np.random.Generator, n: int = 3000) -> Reference:
    d = _draw(rng, n)
    accuracy = float((d["probabilities"].argmax(axis=1) == d["labels"]).mean())
    info = ReferenceInfo(
        n=n,
        class_names=list(CLASS_NAMES),
        embedding_tensor="synthetic",
        embedding_kind="penultimate",
        embedding_note="synthetic",
        embedding_dim=DIMS,
        pca_dims=DIMS,
        pca_explained_variance=1.0,
        onnx_sha256="0" * 64,
        accuracy=accuracy,
    )
    pca = Pca(np.zeros(DIMS, np.float32), np.eye(DIMS, dtype=np.float32), np.ones(DIMS, np.float32))
    return Reference(
        info,
        d["probabilities"],
        d["embeddings"],
        pca,
        d["mean_intensity"],
        d["ink_fraction"],
        d["labels"],
    )


def _window(
    rng: np.random.Generator, n: int, *, labelled: float = 0.0, **shift: float
) -> WindowFeatures:
    d = _draw(rng, n, **shift)
    labels = np.where(rng.random(n) < labelled, d["labels"], -1)
    return WindowFeatures(
        d["probabilities"],
        d["embeddings"],
        d["mean_intensity"],
        d["ink_fraction"],
        np.zeros(n, dtype=bool),
        labels,
    )


@pytest.fixture(scope="module")
def reference() -> Reference:
    return _reference(np.random.default_rng(0))


def test_false_alarm_rate_on_unshifted_windows_is_at_most_alpha(reference: Reference) -> None:
    rng = np.random.default_rng(1)
    alarms = []
    for seed in range(200):
        settings = SETTINGS.model_copy(update={"seed": seed})
        result = detect_drift(reference, _window(rng, 200, labelled=0.5), settings)
        alarms.append(result.drift_detected)
        assert all(t.p_value is None or 0.0 <= t.p_value <= 1.0 for t in result.tests)
    assert np.mean(alarms) <= 0.08


def test_shifts_are_detected_by_the_right_tests(reference: Reference) -> None:
    rng = np.random.default_rng(2)
    embedded = detect_drift(reference, _window(rng, 500, shift=1.0), SETTINGS)
    assert embedded.drift_detected
    assert embedded.test("mmd").fired and embedded.test("bbsd_ks").fired
    assert not embedded.test("mean_intensity_ks").fired
    dimmer = detect_drift(reference, _window(rng, 500, dim=0.6), SETTINGS)
    assert dimmer.drift_detected
    assert dimmer.test("mean_intensity_ks").fired and not dimmer.test("mmd").fired


def test_live_accuracy_enters_the_verdict_only_with_enough_feedback(reference: Reference) -> None:
    rng = np.random.default_rng(3)
    none = detect_drift(reference, _window(rng, 300), SETTINGS)
    assert not none.test("live_accuracy").in_verdict
    assert none.correction == "Holm over 7 tests"
    window = _window(rng, 300, labelled=1.0)
    assert window.labels is not None
    wrong = window.labels.copy()
    wrong[:90] = (window.probabilities[:90].argmax(axis=1) + 1) % 10  # 30% extra errors
    bad = WindowFeatures(
        window.probabilities,
        window.embeddings,
        window.mean_intensity,
        window.ink_fraction,
        window.photo,
        wrong,
    )
    result = detect_drift(reference, bad, SETTINGS)
    accuracy = result.test("live_accuracy")
    assert accuracy.in_verdict and accuracy.fired and result.drift_detected
    assert accuracy.details["labelled"] == 300
    assert result.correction == "Holm over 8 tests"


def test_photo_share_is_reported_but_not_tested_without_a_reference_share(
    reference: Reference,
) -> None:
    rng = np.random.default_rng(4)
    window = _window(rng, 200)
    photos = WindowFeatures(
        window.probabilities,
        window.embeddings,
        window.mean_intensity,
        window.ink_fraction,
        np.arange(200) % 2 == 0,
        None,
    )
    result = detect_drift(reference, photos, SETTINGS)
    photo = result.test("photo_share")
    assert photo.statistic == pytest.approx(0.5) and not photo.in_verdict


def test_result_is_json_with_the_documented_fields(reference: Reference) -> None:
    result = detect_drift(reference, _window(np.random.default_rng(5), 100), SETTINGS)
    payload = json.loads(result.model_dump_json())
    assert isinstance(payload["drift_detected"], bool)
    assert {"size", "start", "end"} <= set(payload["window"])
    assert {"model_name", "model_version"} <= set(payload["reference"])
    for test in payload["tests"]:
        assert {"name", "statistic", "p_value", "threshold", "fired", "details"} <= set(test)
    assert DriftResult.model_validate(payload) == result


def test_too_small_a_window_is_refused(reference: Reference) -> None:
    with pytest.raises(ValueError, match="min_window"):
        detect_drift(reference, _window(np.random.default_rng(6), 10), SETTINGS)
