"""Classical baselines with scikit-learn: the floor of the leaderboard.

Four models on ``pixel / 255`` features: logistic regression, histogram gradient boosting, a
random forest, and an RBF support vector machine on 50 PCA components. The sweep has a
wall-clock budget shared among the models: each model is first fitted on a small probe
subset (boosting and forest with a tenth of their iterations or trees), its fit time is
extrapolated (linear, or quadratic for the SVM), and it is refitted on as many training images
as fit its share of the budget; when even the probe's images do not fit, boosting and forest
use fewer iterations or trees. The training-set size (and that share, ``effort``) is recorded
with the results.

For reference, the best classical result of the published Fashion-MNIST benchmark (Zalando
Research) is an SVC with C=10 and an RBF kernel at 89.7% on the full 60,000 images.

Classical models are tracked in MLflow but not registered for serving: they have no ONNX export
(``fmnist serve`` runs ONNX models only).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fmnist.atomic import atomic_write_text
from fmnist.errors import ConfigError
from fmnist.identity import digest_json

if TYPE_CHECKING:
    from fmnist.platform.registry import ModelRegistry, RunRecord
    from fmnist.platform.services import Services

PUBLISHED_BEST_CLASSICAL_ACCURACY = 0.897
"""SVC (C=10, RBF) in the Fashion-MNIST benchmark of Zalando Research, trained on 60,000."""
PUBLISHED_BEST_CLASSICAL = "SVC (C=10, RBF kernel)"
STEP = "baseline"
FIT_SHARE = 0.7
"""Share of a model's time budget its final fit may use (extrapolation is rough)."""

Estimator = Any


@dataclass(frozen=True)
class BaselineSpec:
    """One classical model: how to build it and how its fit time grows with the data."""

    name: str
    description: str
    build: Callable[[int, int, float], Estimator]
    """``(seed, threads, effort) -> unfitted estimator``; ``effort`` in (0, 1] scales the
    boosting iterations or forest trees (models without such a knob ignore it)."""
    exponent: float
    """Fit time grows about as ``n ** exponent``."""
    precision: str
    """The floating-point precision scikit-learn computes in for this model."""
    scalable: bool = False
    """Whether ``effort`` changes the work (then the probe fits a tenth of it)."""
    probe: int = 1_000


def _scaled(count: int, effort: float) -> int:
    return max(1, round(count * effort))


def _logreg(seed: int, threads: int, effort: float) -> Estimator:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=300, random_state=seed)


def _hgb(seed: int, threads: int, effort: float) -> Estimator:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=_scaled(100, effort), learning_rate=0.1, early_stopping=False, random_state=seed
    )


def _rf(seed: int, threads: int, effort: float) -> Estimator:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=_scaled(200, effort), n_jobs=threads, random_state=seed
    )


def _svc(seed: int, threads: int, effort: float) -> Estimator:
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC

    return make_pipeline(PCA(n_components=50, random_state=seed), SVC(C=10.0, kernel="rbf"))


BASELINES: dict[str, BaselineSpec] = {
    spec.name: spec
    for spec in (
        BaselineSpec("logreg", "logistic regression (C=1, lbfgs)", _logreg, 1.0, "fp32"),
        BaselineSpec(
            "hgb", "histogram gradient boosting (100 iterations)", _hgb, 1.0, "fp32", True
        ),
        BaselineSpec("rf", "random forest (200 trees)", _rf, 1.1, "fp32", True),
        BaselineSpec("svc", "SVC (C=10, RBF) on 50 PCA components", _svc, 2.0, "fp64"),
    )
}
"""The classical sweep, in the order it runs."""
PROBE_EFFORT = 0.1
MIN_EFFORT = 0.05


@dataclass(frozen=True)
class BaselineResult:
    """One fitted classical model and what it measured."""

    model: str
    description: str
    precision: str
    n_train: int
    n_train_available: int
    limited_by_budget: bool
    fit_seconds: float
    total_seconds: float
    predict_seconds: float
    effort: float
    """Share of the boosting iterations or forest trees used (1.0 = all)."""
    test_accuracy: float
    macro_f1: float
    val_accuracy: float
    threads: int
    run_id: str
    config_hash: str
    snapshot_id: str
    measured_at: str
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return asdict(self)


def features(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Flattened ``pixel / 255`` features ``(N, 784)``."""
    flat = images.reshape(len(images), -1).astype(np.float32)
    return flat / np.float32(255.0)


def config_hash(
    name: str, max_minutes: float, train_subset: int | None, seed: int, n_models: int
) -> str:
    """What determines a baseline result (the estimator's parameters and its budget)."""
    estimator = BASELINES[name].build(seed, 1, 1.0)
    params = {k: repr(v) for k, v in sorted(estimator.get_params(deep=True).items())}
    params.pop("n_jobs", None)
    identity = {
        "model": name,
        "params": params,
        "max_minutes": max_minutes,
        "train_subset": train_subset,
        "seed": seed,
        "models": n_models,
    }
    return digest_json(identity, length=12)


def _fit_within(
    spec: BaselineSpec,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.uint8],
    budget_s: float,
    seed: int,
    threads: int,
) -> tuple[Estimator, int, float, float, float]:
    """Fit on as many rows of ``x`` as fit ``budget_s``.

    A probe fit on ``spec.probe`` rows (with a tenth of the iterations or trees for scalable
    models) gives the time per row; the final fit uses the rows that fit the rest of the
    budget, and for scalable models fewer iterations or trees when even the probe's rows do
    not fit. Returns ``(model, rows, fit seconds, total seconds, effort)``.
    """
    start = time.perf_counter()
    n_max = len(y)
    n_probe = min(spec.probe, n_max)
    probe_effort = PROBE_EFFORT if spec.scalable else 1.0
    probe = spec.build(seed, threads, probe_effort).fit(x[:n_probe], y[:n_probe])
    probe_s = time.perf_counter() - start
    full_at_probe = max(probe_s / probe_effort, 1e-3)

    left = max(budget_s * FIT_SHARE - probe_s, 0.0)
    n = int(n_probe * (left / full_at_probe) ** (1.0 / spec.exponent))
    n = min(max(n, n_probe), n_max)
    effort = 1.0
    if spec.scalable:
        expected = full_at_probe * (n / n_probe) ** spec.exponent
        if expected > left:
            effort = max(left / expected, MIN_EFFORT)
    if n == n_probe and effort == probe_effort:  # the probe is the model
        return probe, n, probe_s, probe_s, effort
    model = spec.build(seed, threads, effort)
    fit_start = time.perf_counter()
    model.fit(x[:n], y[:n])
    fit_s = time.perf_counter() - fit_start
    return model, n, fit_s, time.perf_counter() - start, effort


def _find_run(registry: ModelRegistry, config_hash_: str, snapshot_id: str) -> RunRecord | None:
    runs = registry.find_runs(
        {
            "fmnist.step": STEP,
            "fmnist.config_hash": config_hash_,
            "fmnist.snapshot_id": snapshot_id,
        },
        max_results=10,
    )
    return next((run for run in runs if "result" in run.params), None)


def _from_run(run: RunRecord) -> BaselineResult:
    stored = json.loads(run.params["result"])
    return BaselineResult(**(stored | {"run_id": run.run_id, "reused": True}))


def run_baselines(
    services: Services,
    *,
    models: Sequence[str] | None = None,
    max_minutes: float | None = None,
    train_subset: int | None = None,
    threads: int = 1,
    seed: int = 0,
    snapshot_id: str | None = None,
    reuse: bool = False,
    out: Path | None = None,
    on_result: Callable[[BaselineResult], None] | None = None,
) -> list[BaselineResult]:
    """Fit the classical models within ``max_minutes`` in all and log each to MLflow.

    ``train_subset`` caps the training images; the budget may lower it further (the size used
    is in each result). With ``reuse`` a finished run with the same configuration and snapshot
    is read back instead of fitting again. Results are written to ``out`` as JSON.
    """
    from sklearn.metrics import accuracy_score, f1_score
    from threadpoolctl import threadpool_limits

    from fmnist.data.snapshot import load_snapshot
    from fmnist.registry.runs import flatten_params

    settings = services.settings
    names = list(models or BASELINES)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ConfigError(
            f"unknown baseline(s) {', '.join(unknown)}; choose from: {', '.join(BASELINES)}"
        )
    budget_minutes = max_minutes or settings.benchmark.baseline_minutes
    snapshot = load_snapshot(services.storage, snapshot_id)
    train_images, train_labels = snapshot.split("train")
    if train_subset is not None:
        train_images, train_labels = train_images[:train_subset], train_labels[:train_subset]
    x_train = features(train_images)
    val_images, val_labels = snapshot.split("val")
    test_images, test_labels = snapshot.split("test")
    x_val, x_test = features(val_images), features(test_images)

    registry = services.registry()
    deadline = time.monotonic() + budget_minutes * 60
    results: list[BaselineResult] = []
    for index, name in enumerate(names):
        spec = BASELINES[name]
        digest = config_hash(name, budget_minutes, train_subset, seed, len(names))
        found = _find_run(registry, digest, snapshot.snapshot_id) if reuse else None
        if found is not None:
            result = _from_run(found)
        else:
            share = max(deadline - time.monotonic(), 1.0) / (len(names) - index)
            tags = {
                "fmnist.step": STEP,
                "fmnist.baseline": name,
                "fmnist.config_hash": digest,
                "fmnist.snapshot_id": snapshot.snapshot_id,
            }
            with registry.open_run(f"baseline-{name}-{digest}", tags) as run_id:
                with threadpool_limits(limits=threads):
                    model, n, fit_s, total_s, effort = _fit_within(
                        spec, x_train, train_labels, share, seed, threads
                    )
                    predict_start = time.perf_counter()
                    test_pred = model.predict(x_test)
                    predict_s = time.perf_counter() - predict_start
                    val_pred = model.predict(x_val)
                result = BaselineResult(
                    model=name,
                    description=spec.description,
                    precision=spec.precision,
                    n_train=n,
                    n_train_available=len(train_labels),
                    limited_by_budget=n < len(train_labels) or effort < 1.0,
                    fit_seconds=fit_s,
                    total_seconds=total_s,
                    predict_seconds=predict_s,
                    effort=round(effort, 4),
                    test_accuracy=float(accuracy_score(test_labels, test_pred)),
                    macro_f1=float(f1_score(test_labels, test_pred, average="macro")),
                    val_accuracy=float(accuracy_score(val_labels, val_pred)),
                    threads=threads,
                    run_id=run_id,
                    config_hash=digest,
                    snapshot_id=snapshot.snapshot_id,
                    measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
                )
                params = flatten_params(
                    {k: repr(v) for k, v in model.get_params(deep=False).items()}, "estimator"
                )
                stored = result.to_dict()
                for key in ("run_id", "reused"):
                    stored.pop(key)
                params |= {
                    "model": name,
                    "n_train": n,
                    "budget_seconds": round(share, 1),
                    "max_minutes": budget_minutes,
                    "train_subset": train_subset,
                    "threads": threads,
                    "result": json.dumps(stored),
                }
                registry.log_params(run_id, params)
                registry.log_metrics(
                    run_id,
                    {
                        "test_accuracy": result.test_accuracy,
                        "test_macro_f1": result.macro_f1,
                        "val_accuracy": result.val_accuracy,
                        "fit_seconds": fit_s,
                        "total_seconds": total_s,
                        "predict_seconds": predict_s,
                        "n_train": n,
                    },
                )
        results.append(result)
        if on_result is not None:
            on_result(result)
    if out is not None:
        write_results(out, results)
    return results


def write_results(path: Path, results: Sequence[BaselineResult]) -> Path:
    """Write the results as a JSON list (atomically)."""
    atomic_write_text(path, json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    return path


def summary_line(results: Sequence[BaselineResult]) -> str:
    """Where the best classical model lands against the published classical benchmark."""
    if not results:
        return "no classical baseline was run"
    best = max(results, key=lambda r: r.test_accuracy)
    gap = (best.test_accuracy - PUBLISHED_BEST_CLASSICAL_ACCURACY) * 100
    return (
        f"best classical baseline: {best.model} at {best.test_accuracy:.2%} test accuracy "
        f"(trained on {best.n_train:,} images in {best.fit_seconds:.0f} s), "
        f"{abs(gap):.1f} points {'above' if gap >= 0 else 'below'} the published "
        f"{PUBLISHED_BEST_CLASSICAL_ACCURACY:.1%} of {PUBLISHED_BEST_CLASSICAL} on 60,000 images"
    )
