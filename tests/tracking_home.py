"""A fresh fmnist home with a snapshot of the real subset and a copied MLflow store."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from fmnist.config import Settings, load_settings
from fmnist.data.snapshot import write_snapshot
from fmnist.data.sources import RawDataset
from fmnist.platform.storage import open_storage

LOW_GATES = {
    "FMNIST_GATES__MIN_ACCURACY": "0.5",
    "FMNIST_GATES__MIN_CLASS_RECALL": "0.0",
    "FMNIST_GATES__MAX_ECE": "0.2",
}
"""Gates a tiny model passes."""


def prepare_home(home: Path, raw: RawDataset, template_db: Path) -> Settings:
    """Copy the empty MLflow store into ``home`` and snapshot ``raw`` there.

    Call with ``FMNIST_HOME`` already pointing at ``home``; returns the effective settings.
    """
    (home / "mlflow").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template_db, home / "mlflow" / "mlflow.db")
    settings = load_settings().settings
    write_snapshot(
        open_storage(settings.resolved_lake_url), raw, settings.data, settings.validation
    )
    return settings


def set_env(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    """Set every variable of ``env``."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
