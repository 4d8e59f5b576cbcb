"""Two search workers share one Optuna study through its RDB storage (SQLite here; the same
command with a PostgreSQL URL scales across machines)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from fmnist.data.sources import RawDataset
from tracking_home import LOW_GATES, prepare_home, set_env


def test_two_concurrent_workers_fill_one_study(
    tmp_path: Path,
    raw_subset: RawDataset,
    mlflow_template_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {
        "FMNIST_HOME": str(tmp_path),
        "FMNIST_HPO__MIN_EPOCHS": "1",
        "FMNIST_HPO__MAX_EPOCHS": "1",
        **LOW_GATES,
    }
    set_env(monkeypatch, env)
    settings = prepare_home(tmp_path, raw_subset, mlflow_template_db)
    command = [
        sys.executable, "-m", "fmnist", "hpo", "run", "--family", "cnn", "--trials", "4",
        "--study", "shared", "--no-retrain", "--preset-base", "tiny", "--train-subset", "500",
    ]  # fmt: skip
    workers = [
        subprocess.Popen(
            command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=600)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = optuna.load_study(study_name="shared", storage=settings.resolved_optuna_storage)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) >= 4
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert sorted(t.number for t in study.trials) == list(range(len(study.trials)))
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2  # both did some of it
