"""Data-parallel training: two processes under torchrun (DDP, gloo on CPU) against one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist.composition import build_services
from fmnist.data.sources import RawDataset
from tracking_home import prepare_home, set_env

COMMON = ["train", "--preset", "tiny", "--epochs", "1", "--train-subset", "2000", "--no-progress"]


def train_runs(home: Path) -> list[tuple[str, dict[str, str], dict[str, float]]]:
    from fmnist.config import Settings

    registry = build_services(Settings(home=home)).registry()
    runs = registry.client.search_runs(
        [registry.experiment_id()], filter_string="tags.`fmnist.step` = 'train'"
    )
    return [(r.info.run_id, r.data.params, r.data.metrics) for r in runs]


def test_two_processes_train_like_one_and_only_rank_0_records(
    tmp_path: Path,
    raw_subset: RawDataset,
    mlflow_template_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_env(monkeypatch, {"FMNIST_HOME": str(tmp_path)})
    prepare_home(tmp_path, raw_subset, mlflow_template_db)
    env = {**os.environ, "FMNIST_HOME": str(tmp_path)}
    fmnist = [sys.executable, "-m", "fmnist"]
    # One process, batch 64; two processes of batch 32: the same steps and effective batch.
    single = subprocess.run([*fmnist, *COMMON], env=env, capture_output=True, text=True)
    assert single.returncode == 0, single.stdout + single.stderr
    ddp_args = [*COMMON, "--batch-size", "32", "--nproc", "2"]
    ddp = subprocess.run([*fmnist, *ddp_args], env=env, capture_output=True, text=True)
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr

    runs = train_runs(tmp_path)
    assert len(runs) == 2  # rank 1 recorded nothing
    by_world = {params["world_size"]: metrics for _, params, metrics in runs}
    assert set(by_world) == {"1", "2"}
    one, two = by_world["1"]["best_val_accuracy"], by_world["2"]["best_val_accuracy"]
    assert one > 0.6 and two > 0.6
    assert abs(one - two) <= 0.05
    assert len(list((tmp_path / "runs").glob("*/model.onnx"))) == 2  # one export per run
