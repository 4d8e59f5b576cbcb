"""Hyperparameter search on real data: two tiny trials, one pruned, the best registered.

One study (1,000 training images, 1 epoch per trial, 1 thread) runs once per module with a real
Optuna SQLite study and MLflow store; the tests assert different parts of what it produced.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import torch
from typer.testing import CliRunner

from fmnist.cli import app
from fmnist.composition import build_services
from fmnist.config import Settings
from fmnist.data.snapshot import load_snapshot
from fmnist.data.sources import RawDataset
from fmnist.models import build_model
from fmnist.platform.storage import FsspecStorage
from fmnist.training.config import make_config
from fmnist.training.hpo import HpoOutcome, SearchSpace, run_hpo, suggest_config
from fmnist.training.trainer import EpochRecord, load_checkpoint, train
from tracking_home import LOW_GATES, prepare_home, set_env

STUDY = "test-study"
TINY_SPACE = SearchSpace(epochs=(1, 1), base_width=(32,), depth=(2, 2), blocks=(1, 1))
OVERRIDES = {"train_subset": 1000, "threads": 1}


class PruneTrial(optuna.pruners.BasePruner):
    """Prunes trial ``number`` at its first report and nothing else."""

    def __init__(self, number: int) -> None:
        self.number = number

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number == self.number


@dataclass
class Search:
    settings: Settings
    env: dict[str, str]
    outcome: HpoOutcome


@pytest.fixture(scope="module")
def search(
    tmp_path_factory: pytest.TempPathFactory,
    raw_subset: RawDataset,
    mlflow_template_db: Path,
) -> Iterator[Search]:
    """Two tiny CNN trials (the second pruned), then the best retrained and registered."""
    home = tmp_path_factory.mktemp("hpo")
    env = {"FMNIST_HOME": str(home), **LOW_GATES}
    with pytest.MonkeyPatch.context() as mp:
        set_env(mp, env)
        settings = prepare_home(home, raw_subset, mlflow_template_db)
        outcome = run_hpo(
            build_services(settings),
            family="cnn",
            trials=2,
            budget_minutes=5,
            study_name=STUDY,
            preset_base="tiny",
            overrides=OVERRIDES,
            space=TINY_SPACE,
            pruner=PruneTrial(1),
            quantize=False,
        )
        yield Search(settings, env, outcome)


def test_best_trial_is_registered_as_hpo_cnn(search: Search) -> None:
    outcome = search.outcome
    assert outcome.registered_model == "hpo-cnn"
    assert outcome.evaluation is not None and outcome.trained is not None
    registry = build_services(search.settings).registry("hpo-cnn")
    version = registry.get("1")
    assert version.name == "hpo-cnn"
    assert version.run_id == outcome.trained.run_id
    assert outcome.evaluation.report.accuracy > 0.5  # chance is 0.1
    assert outcome.best_trial == 0 and outcome.best_value > 0.5
    tags = registry.run_tags(outcome.trained.run_id)
    assert tags["fmnist.study"] == STUDY and tags["fmnist.trial"] == "0"
    assert tags["fmnist.config_hash"] == outcome.best_config.config_hash()


def test_study_database_holds_two_trials_one_pruned(search: Search) -> None:
    assert search.outcome.storage == search.settings.resolved_optuna_storage
    assert (search.settings.home / "optuna" / "optuna.db").is_file()
    study = optuna.load_study(study_name=STUDY, storage=search.settings.resolved_optuna_storage)
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "PRUNED"]
    assert search.outcome.states == {"COMPLETE": 1, "PRUNED": 1}
    pruned = study.trials[1]
    assert pruned.intermediate_values == {1: pytest.approx(pruned.intermediate_values[1])}
    assert not list((search.settings.home / "optuna").glob("trial-*"))  # checkpoints removed


def test_each_trial_is_an_mlflow_run_under_the_study_run(search: Search) -> None:
    registry = build_services(search.settings).registry()
    runs = registry.client.search_runs(
        [registry.experiment_id()],
        filter_string=f"tags.`fmnist.step` = 'hpo-trial' and tags.`fmnist.study` = '{STUDY}'",
    )
    assert len(runs) == 2
    by_trial = {r.data.tags["fmnist.trial"]: r for r in runs}
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == search.outcome.parent_run_id
        assert "val_accuracy" in run.data.metrics
    assert by_trial["0"].data.tags["optuna.state"] == "COMPLETE"
    assert by_trial["1"].data.tags["optuna.state"] == "PRUNED"
    parent = registry.client.get_run(search.outcome.parent_run_id)
    assert parent.data.tags["fmnist.step"] == "hpo"
    assert parent.data.metrics["trials_pruned"] == 1


def test_searched_config_stays_in_the_space(search: Search) -> None:
    config = search.outcome.best_config
    assert config.model == "cnn" and config.epochs == 1
    assert all(w % 32 == 0 for w in config.model_options["widths"])
    assert config.train_subset == 1000
    params = search.outcome.best_params
    assert 5e-4 <= params["lr"] <= 1e-2
    assert 0 <= params["augment_strength"] <= 4


def test_resumed_study_runs_only_missing_trials(
    search: Search, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, search.env)
    args = ["hpo", "run", "--family", "cnn", "--trials", "2", "--study", STUDY, "--no-retrain"]
    base = ["--preset-base", "tiny", "--train-subset", "1000"]
    result = CliRunner().invoke(app, [*args, *base])
    assert result.exit_code == 0, result.output
    assert "0 new trial(s)" in result.output
    assert "best trial 0" in result.output

    other = CliRunner().invoke(app, args)  # the default preset is another search
    assert other.exit_code == 2
    assert f"study {STUDY!r} searches cnn from base config" in other.output


def test_budget_stops_the_search(search: Search) -> None:
    outcome = run_hpo(
        build_services(search.settings),
        family="cnn",
        trials=5,
        budget_minutes=0.001,
        study_name="budget-study",
        preset_base="tiny",
        overrides=OVERRIDES,
        space=TINY_SPACE,
        retrain=False,
    )
    assert outcome.new_trials == 1
    assert outcome.stopped_by_budget
    assert outcome.trained is None


def test_unknown_family_is_a_one_line_error(
    search: Search, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, search.env)
    result = CliRunner().invoke(app, ["hpo", "run", "--family", "vgg", "--no-retrain"])
    assert result.exit_code == 2
    assert "unknown family 'vgg'" in result.output


def test_resnet_family_suggests_buildable_configs() -> None:
    trial = optuna.trial.FixedTrial(
        {
            "lr": 1e-3,
            "weight_decay": 1e-3,
            "base_width": 32,
            "depth": 3,
            "blocks": 2,
            "dropout": 0.1,
            "augment_strength": 3,
            "label_smoothing": 0.05,
            "epochs": 7,
        }
    )
    config = suggest_config(trial, "resnet", make_config("default"), SearchSpace())
    assert config.model == "resnet"
    assert config.model_options == {"widths": [32, 64, 128], "dropout": 0.1, "blocks_per_stage": 2}
    assert config.augment.erasing_p == 0.25 and config.epochs == 7
    build_model(config.model, **config.model_options)


def test_widths_must_be_multiples_of_32() -> None:
    with pytest.raises(ValueError, match="multiples of 32"):
        SearchSpace(base_width=(48,))


def test_epoch_callback_exception_propagates_and_leaves_a_whole_checkpoint(
    search: Search, tmp_path: Path
) -> None:
    snapshot = load_snapshot(FsspecStorage(search.settings.resolved_lake_url))
    config = make_config("tiny", epochs=3, train_subset=300)
    seen: list[EpochRecord] = []

    class StopError(Exception):
        pass

    def stop_after_first(record: EpochRecord) -> None:
        seen.append(record)
        raise StopError

    threads = torch.get_num_threads()
    checkpoint = tmp_path / "ckpt.pt"
    with pytest.raises(StopError):
        train(config, snapshot, checkpoint, show_progress=False, on_epoch_end=stop_after_first)
    assert [r.epoch for r in seen] == [1]
    assert load_checkpoint(checkpoint)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary files left
    assert torch.get_num_threads() == threads
