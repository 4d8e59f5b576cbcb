"""Training-scale check: the ``quick`` recipe adapted to every training photo, measured on the
validation photos (about 10 minutes on 2 cores; ``make test-heavy``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data_paths import require_dir
from fmnist.composition import build_services
from fmnist.data.sources import RawDataset
from fmnist.realworld.adaptation import AdaptOptions
from fmnist.realworld.experiment import HarnessConfig, run_harness
from fmnist.realworld.mapping import ClassMapping
from fmnist.realworld.train_photos import adapt_and_register
from fmnist.training.config import make_config
from tracking_home import prepare_home

from .conftest import TRAIN

VALIDATION = TRAIN.parent / "validation"


@pytest.mark.heavy
def test_quick_adaptation_comes_close_to_the_targets(
    tmp_path: Path,
    raw_dataset: RawDataset,
    mlflow_template_db: Path,
    mapping: ClassMapping,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_dir(VALIDATION)
    for name in list(os.environ):
        if name.startswith("FMNIST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FMNIST_HOME", str(tmp_path / "home"))
    services = build_services(prepare_home(tmp_path / "home", raw_dataset, mlflow_template_db))
    outcome = adapt_and_register(
        services,
        TRAIN,
        mapping,
        make_config("quick", threads=1),
        AdaptOptions(),
        show_progress=False,
    )
    assert outcome.baseline is not None  # fine-tuning trained the Fashion-MNIST-only model first
    assert outcome.accuracy_drop_points is not None and outcome.accuracy_drop_points <= 1.0
    report = run_harness(
        services,
        VALIDATION,
        mapping,
        HarnessConfig(model=str(outcome.adapted.onnx_path)),
        show_progress=False,
    ).report
    summary = report["summary"]
    # The targets are 75%, 60% and 15%; the quick recipe met them with 2-3 points to spare.
    assert summary["mappable_accuracy"] >= 0.70, summary
    assert summary["unmappable_abstention"] >= 0.50, summary
    assert summary["mappable_abstention"] <= 0.20, summary
