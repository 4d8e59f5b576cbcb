"""The per-check drift report: Evidently's HTML and JSON beside the monitor's own verdict.

Each check writes one folder ``<home>/monitoring/reports/<UTC timestamp>/`` holding
``report.html`` and ``evidently.json`` (Evidently's ``DataDriftPreset`` over the softmax
columns, confidence, entropy, input statistics and the predicted class) and ``drift.json`` (the
:class:`~fmnist.monitoring.drift.DriftResult`). The folder is written under a temporary name
and renamed into place, so a reader never sees half a report. Evidently's own column tests are
descriptive; the verdict is the monitor's (see :mod:`fmnist.monitoring.drift`). Evidently is
imported only here, on the first report.
"""

from __future__ import annotations

import os
import shutil
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fmnist.atomic import atomic_write_text
from fmnist.evaluation.drift_reference import confidence_entropy

if TYPE_CHECKING:
    import pandas as pd

    from fmnist.evaluation.drift_reference import Reference
    from fmnist.monitoring.drift import DriftResult, WindowFeatures

REPORTS_DIR = Path("monitoring") / "reports"
"""Where reports go, relative to ``home``."""
MAX_REFERENCE_ROWS = 2000
"""Reference rows put into a report (seeded subsample): keeps the HTML a few MB."""


def reports_root(home: Path) -> Path:
    """``<home>/monitoring/reports``."""
    return home / REPORTS_DIR


def _frame(
    probabilities: np.ndarray[Any, Any],
    mean_intensity: np.ndarray[Any, Any],
    ink_fraction: np.ndarray[Any, Any],
    class_names: list[str],
) -> pd.DataFrame:
    import pandas as pd

    confidence, entropy = confidence_entropy(probabilities)
    columns: dict[str, Any] = {
        f"p_{name}": probabilities[:, i].astype(np.float64) for i, name in enumerate(class_names)
    }
    columns |= {
        "confidence": confidence.astype(np.float64),
        "entropy": entropy.astype(np.float64),
        "mean_intensity": mean_intensity.astype(np.float64),
        "ink_fraction": ink_fraction.astype(np.float64),
        "predicted_class": [class_names[i] for i in probabilities.argmax(axis=1)],
    }
    return pd.DataFrame(columns)


def _evidently(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[str, str]:
    """Evidently's HTML and JSON for the two frames."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # no usage telemetry from a monitor
    with warnings.catch_warnings():  # its dependencies' deprecation notices are not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        numerical = [c for c in reference.columns if c != "predicted_class"]
        definition = DataDefinition(
            numerical_columns=numerical, categorical_columns=["predicted_class"]
        )
        snapshot = Report([DataDriftPreset()]).run(
            current_data=Dataset.from_pandas(current, data_definition=definition),
            reference_data=Dataset.from_pandas(reference, data_definition=definition),
        )
        html: str = snapshot.get_html_str(as_iframe=False)
        text: str = snapshot.json()
    return html, text


def write_report(
    home: Path,
    reference: Reference,
    window: WindowFeatures,
    result: DriftResult,
    *,
    seed: int = 0,
    now: datetime | None = None,
) -> Path:
    """Write the report folder of one check and return it; sets ``result.report_path``."""
    names = reference.info.class_names
    rng = np.random.default_rng(seed)
    n = len(reference.probabilities)
    rows = np.sort(rng.choice(n, min(n, MAX_REFERENCE_ROWS), replace=False))
    ref_frame = _frame(
        reference.probabilities[rows],
        reference.mean_intensity[rows],
        reference.ink_fraction[rows],
        names,
    )
    cur_frame = _frame(window.probabilities, window.mean_intensity, window.ink_fraction, names)
    html, evidently_json = _evidently(ref_frame, cur_frame)

    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    root = reports_root(home)
    final = (root / stamp).absolute()
    staging = root / f".{stamp}.tmp"
    staging.mkdir(parents=True, exist_ok=False)
    try:
        result.report_path = str(final)
        atomic_write_text(staging / "report.html", html)
        atomic_write_text(staging / "evidently.json", evidently_json)
        atomic_write_text(staging / "drift.json", result.model_dump_json(indent=2))
        staging.rename(final)
    except BaseException:
        result.report_path = None
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
