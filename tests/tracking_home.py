"""A fresh fmnist home with a snapshot of the real subset, a copied MLflow store, tiny models."""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from fmnist.composition import build_services
from fmnist.config import Settings, load_settings
from fmnist.data.snapshot import write_snapshot
from fmnist.data.sources import RawDataset
from fmnist.evaluation.run import EvaluationOutcome, evaluate_and_register
from fmnist.platform.storage import FsspecStorage
from fmnist.training.config import make_config
from fmnist.training.run import TrainedRun, train_and_log

LOW_GATES = {
    "FMNIST_GATES__MIN_ACCURACY": "0.5",
    "FMNIST_GATES__MIN_CLASS_RECALL": "0.0",
    "FMNIST_GATES__MAX_ECE": "0.2",
}
"""Gates a tiny model passes."""


def _snapshot_home(home: Path, raw: RawDataset, template_db: Path) -> tuple[Settings, str]:
    """:func:`prepare_home`, also returning the snapshot id."""
    (home / "mlflow").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template_db, home / "mlflow" / "mlflow.db")
    settings = load_settings().settings
    manifest, _ = write_snapshot(
        FsspecStorage(settings.resolved_lake_url), raw, settings.data, settings.validation
    )
    return settings, manifest.snapshot_id


def prepare_home(home: Path, raw: RawDataset, template_db: Path) -> Settings:
    """Copy the empty MLflow store into ``home`` and snapshot ``raw`` there.

    Call with ``FMNIST_HOME`` already pointing at ``home``; returns the effective settings.
    """
    return _snapshot_home(home, raw, template_db)[0]


def set_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    """Set every variable of ``env``."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@dataclass(frozen=True)
class TinyModels:
    """A home with a snapshot and tiny models trained, evaluated and registered in it."""

    settings: Settings
    env: dict[str, str]
    """``FMNIST_HOME`` and the extra variables the models were trained with."""
    snapshot_id: str
    runs: list[TrainedRun]
    outcomes: list[EvaluationOutcome]
    """One per run, in training order; every one has a registered version."""

    @property
    def versions(self) -> list[int]:
        """The registered version numbers, in training order."""
        return [o.version.version for o in self.outcomes if o.version is not None]


def register_tiny_models(
    home: Path,
    raw: RawDataset,
    template_db: Path,
    *,
    seeds: Sequence[int] = (0,),
    quantized_seeds: Collection[int] = (),
    env: Mapping[str, str] = LOW_GATES,
) -> TinyModels:
    """Snapshot ``raw`` in ``home``, then train, evaluate and register the ``tiny`` preset once
    per seed (about 15 s each on one thread).

    Runs with no inherited ``FMNIST_*`` variables, ``FMNIST_HOME`` at ``home`` and ``env`` set
    (default: gates a tiny model passes), all restored afterwards. The MLflow store starts as a
    copy of ``template_db``. Only models whose seed is in ``quantized_seeds`` are quantised; each
    model that passes the gates is promoted, as ``fmnist evaluate`` does.
    """
    full_env = {"FMNIST_HOME": str(home), **env}
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("FMNIST_"):
                mp.delenv(name)
        set_env(mp, full_env)
        settings, snapshot_id = _snapshot_home(home, raw, template_db)
        services = build_services(settings)
        runs, outcomes = [], []
        for seed in seeds:
            run = train_and_log(services, make_config("tiny", seed=seed), show_progress=False)
            quantize = seed in quantized_seeds
            outcome = evaluate_and_register(services, run.run_id, quantize=quantize)
            assert outcome.version is not None, outcome.decision.reasons
            runs.append(run)
            outcomes.append(outcome)
    return TinyModels(settings, full_env, snapshot_id, runs, outcomes)
