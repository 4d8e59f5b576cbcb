"""Fixtures for the real-photo tests: a small folder of real photos and a home in which a tiny
Fashion-MNIST model is the champion and a tiny photo-adapted model is ``fmnist-photos@champion``.

The photos are copies of real training photos (``../shared/data/clothing-photos/train``): per
class, three of the training fold and two of the calibration fold, so that adaptation and
calibration both have photos of every class. Training uses the ``tiny`` preset on the real
Fashion-MNIST subset (about 15 s per model on one thread).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from data_paths import PHOTOS_TRAIN, require_dir
from fmnist.composition import build_services
from fmnist.config import Settings
from fmnist.data.sources import RawDataset
from fmnist.platform.services import Services
from fmnist.realworld.adaptation import AdaptOptions
from fmnist.realworld.mapping import ClassMapping, load_mapping
from fmnist.realworld.photos import scan_folder
from fmnist.realworld.train_photos import AdaptationOutcome, adapt_and_register
from fmnist.training.config import make_config
from tracking_home import TinyModels, register_tiny_models, set_env

REPO = Path(__file__).resolve().parents[3]
MAPPING = REPO / "config/real-world/clothing-small.yaml"
TRAIN = PHOTOS_TRAIN
TRAINING_FOLD_PER_CLASS = 3
CALIBRATION_FOLD_PER_CLASS = 2


@pytest.fixture(scope="session")
def mapping() -> ClassMapping:
    """The repository's mapping of the clothing photos."""
    return load_mapping(MAPPING)


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory: pytest.TempPathFactory, mapping: ClassMapping) -> Path:
    """A small labelled folder of real photos (see the module docstring)."""
    require_dir(TRAIN)
    root = tmp_path_factory.mktemp("photos") / "train"
    counts: dict[tuple[str, bool], int] = {}
    for photo in scan_folder(TRAIN, mapping):
        key = (photo.photo_class, photo.in_calibration_fold)
        limit = CALIBRATION_FOLD_PER_CLASS if key[1] else TRAINING_FOLD_PER_CLASS
        if counts.get(key, 0) < limit:
            (root / photo.photo_class).mkdir(parents=True, exist_ok=True)
            shutil.copy(photo.path, root / photo.photo_class / photo.path.name)
            counts[key] = counts.get(key, 0) + 1
    return root


@dataclass(frozen=True)
class PhotoHome:
    """A home with the tiny champion, the tiny adapted photo model and the photo folder."""

    settings: Settings
    services: Services
    env: dict[str, str]
    tiny: TinyModels
    adaptation: AdaptationOutcome
    folder: Path


@pytest.fixture(scope="session")
def photo_home(
    tmp_path_factory: pytest.TempPathFactory,
    raw_subset: RawDataset,
    mlflow_template_db: Path,
    photo_folder: Path,
    mapping: ClassMapping,
) -> PhotoHome:
    """Register a tiny Fashion-MNIST champion, then adapt a tiny model to the photo folder and
    register it as ``fmnist-photos`` (promoted: the accuracy limit is lifted for tiny models)."""
    home = tmp_path_factory.mktemp("photo-home")
    tiny = register_tiny_models(home, raw_subset, mlflow_template_db)
    services = build_services(tiny.settings)
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("FMNIST_"):
                mp.delenv(name)
        set_env(mp, tiny.env)
        outcome = adapt_and_register(
            services,
            photo_folder,
            mapping,
            make_config("tiny"),
            AdaptOptions(variants=2, photo_batch=16, outlier_batch=4),
            max_drop_points=100.0,
            max_mappable_abstention=0.3,
            show_progress=False,
        )
    assert outcome.promoted, outcome.reason
    return PhotoHome(tiny.settings, services, tiny.env, tiny, outcome, photo_folder)


@pytest.fixture
def photo_env(photo_home: PhotoHome, monkeypatch: pytest.MonkeyPatch) -> PhotoHome:
    """``photo_home`` with its environment set for the test (for CLI calls)."""
    set_env(monkeypatch, photo_home.env)
    return photo_home
