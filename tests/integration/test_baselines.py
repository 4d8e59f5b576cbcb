"""The classical baselines on real data with a tiny budget: far above chance, tracked, reusable."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from fmnist.cli import app
from fmnist.composition import build_services
from fmnist.config import Settings
from fmnist.data.sources import RawDataset
from fmnist.training import baselines
from fmnist.training.baselines import (
    BASELINES,
    BaselineResult,
    BaselineSpec,
    run_baselines,
    summary_line,
)
from tracking_home import prepare_home, set_env

SUBSET = 2000
MINUTES = 0.3


@dataclass
class Sweep:
    settings: Settings
    env: dict[str, str]
    results: list[BaselineResult]
    out: Path


@pytest.fixture(scope="module")
def sweep(
    tmp_path_factory: pytest.TempPathFactory, raw_subset: RawDataset, mlflow_template_db: Path
) -> Iterator[Sweep]:
    """All four classical models on at most 2,000 images within 18 seconds."""
    home = tmp_path_factory.mktemp("baselines")
    env = {"FMNIST_HOME": str(home)}
    with pytest.MonkeyPatch.context() as mp:
        set_env(mp, env)
        settings = prepare_home(home, raw_subset, mlflow_template_db)
        out = home / "baselines.json"
        results = run_baselines(
            build_services(settings), max_minutes=MINUTES, train_subset=SUBSET, out=out
        )
        yield Sweep(settings, env, results, out)


def _runs(settings: Settings) -> list[Any]:
    registry = build_services(settings).registry()
    return list(
        registry.client.search_runs(
            [registry.experiment_id()], filter_string="tags.`fmnist.step` = 'baseline'"
        )
    )


def test_every_classical_model_is_far_above_chance(sweep: Sweep) -> None:
    assert [r.model for r in sweep.results] == list(BASELINES)
    for result in sweep.results:
        assert result.test_accuracy > 0.5, result  # chance is 0.1
        assert 0 < result.macro_f1 <= 1
        assert 0 < result.n_train <= SUBSET
        assert result.n_train_available == SUBSET
        assert 0 < result.effort <= 1
        assert result.fit_seconds > 0 and not result.reused


def test_results_are_written_as_json(sweep: Sweep) -> None:
    rows = json.loads(sweep.out.read_text())
    assert [r["model"] for r in rows] == list(BASELINES)
    for row in rows:
        for key in ("test_accuracy", "macro_f1", "fit_seconds", "n_train", "run_id", "precision"):
            assert key in row


def test_each_model_is_an_mlflow_run_and_nothing_is_registered(sweep: Sweep) -> None:
    runs = _runs(sweep.settings)
    assert sorted(r.data.tags["fmnist.baseline"] for r in runs) == sorted(BASELINES)
    assert all("test_accuracy" in r.data.metrics for r in runs)
    assert build_services(sweep.settings).registry().client.search_registered_models() == []


def test_reuse_reads_finished_runs_back(sweep: Sweep) -> None:
    before = len(_runs(sweep.settings))
    again = run_baselines(
        build_services(sweep.settings), max_minutes=MINUTES, train_subset=SUBSET, reuse=True
    )
    assert len(_runs(sweep.settings)) == before
    assert all(r.reused for r in again)
    assert [r.test_accuracy for r in again] == [r.test_accuracy for r in sweep.results]
    assert [r.run_id for r in again] == [r.run_id for r in sweep.results]


def test_summary_compares_with_the_published_benchmark(sweep: Sweep) -> None:
    line = summary_line(sweep.results)
    assert "89.7%" in line and "points below" in line


def test_budget_limits_training_images() -> None:
    class SlowModel:
        """Fit time grows linearly with the number of rows."""

        def fit(self, x: np.ndarray, y: np.ndarray) -> SlowModel:
            time.sleep(len(x) * 2e-5)
            return self

    spec = BaselineSpec("slow", "sleeps", lambda s, t, e: SlowModel(), 1.0, "fp32", probe=500)
    x, y = np.zeros((100_000, 2), np.float32), np.zeros(100_000, np.uint8)
    _, n, _, total_s, effort = baselines._fit_within(spec, x, y, 0.5, 0, 1)
    assert 500 <= n < 100_000  # 100,000 rows would take 2 s
    assert effort == 1.0 and total_s < 1.0


def test_cli_runs_a_single_model(
    sweep: Sweep, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    set_env(monkeypatch, sweep.env)
    out = tmp_path / "b.json"
    args = ["baselines", "run", "--models", "logreg", "--train-subset", "500"]
    result = CliRunner().invoke(app, [*args, "--max-minutes", "0.1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "logreg: test accuracy" in result.output and "89.7%" in result.output
    assert [r["model"] for r in json.loads(out.read_text())] == ["logreg"]


def test_unknown_baseline_is_rejected(sweep: Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, sweep.env)
    result = CliRunner().invoke(app, ["baselines", "run", "--models", "knn"])
    assert result.exit_code == 2
    assert "unknown baseline(s) knn" in result.output
