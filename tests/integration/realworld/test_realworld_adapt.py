"""``fmnist experiment adapt``: the adapted model, its calibration and its registration."""

from __future__ import annotations

import json

import pytest

from fmnist.realworld.abstention import META_CALIBRATION, META_MIN_CONFIDENCE
from fmnist.realworld.mapping import ClassMapping
from fmnist.realworld.photos import training_photos
from fmnist.realworld.train_photos import EXPERIMENT, META_SEGMENTATION, PHOTO_MODEL_NAME
from fmnist.registry.mlflow_registry import CHAMPION
from fmnist.registry.onnx_runtime import OnnxClassifier

from .conftest import PhotoHome


def test_the_adapted_model_is_registered_under_its_own_name(photo_home: PhotoHome) -> None:
    outcome = photo_home.adaptation
    assert outcome.version is not None and outcome.version.name == PHOTO_MODEL_NAME
    photos = photo_home.services.registry(PHOTO_MODEL_NAME)
    assert photos.get(CHAMPION).version == outcome.version.version
    assert outcome.version.tags["mapping"] == "clothing-small@1"
    # The Fashion-MNIST champion is untouched.
    default = photo_home.services.registry().get(CHAMPION)
    assert default.version == photo_home.tiny.versions[0]


def test_the_calibrated_thresholds_travel_in_the_model(photo_home: PhotoHome) -> None:
    adapted = photo_home.adaptation.adapted
    assert adapted.calibration is not None
    metadata = OnnxClassifier(adapted.onnx_path).metadata
    assert float(metadata[META_MIN_CONFIDENCE]) == adapted.calibration.min_confidence
    if adapted.calibration.energy_threshold is not None:
        threshold = float(metadata["ood.energy_threshold"])
        assert threshold == pytest.approx(adapted.calibration.energy_threshold, rel=1e-5)
    calibration = json.loads(metadata[META_CALIBRATION])
    assert calibration["fold"] == "calibration"
    assert calibration["mappable"] + calibration["unmappable"] == 20  # 2 per class
    assert metadata[META_SEGMENTATION] == "grabcut"
    assert metadata["photos.mapping"].startswith("clothing-small@1 sha256:")


def test_only_the_training_fold_is_trained_on(photo_home: PhotoHome, mapping: ClassMapping) -> None:
    result = photo_home.adaptation.adapted.result
    fold = training_photos(photo_home.folder, mapping)
    assert len(fold) == 30 and not any(p.in_calibration_fold for p in fold)
    # Two variants per photo, less those in which no garment was found (blank inputs).
    assert 0.8 * 2 * len(fold) <= result.photos + result.outliers <= 2 * len(fold)
    assert 0 < result.outliers <= 2 * 3 * 3  # hat, shorts, skirt


def test_the_run_is_tracked_with_the_mapping(photo_home: PhotoHome, mapping: ClassMapping) -> None:
    registry = photo_home.services.registry(experiment=EXPERIMENT)
    run_id = photo_home.adaptation.adapted.run_id
    params = registry.run_params(run_id)
    assert params["mapping.sha256"] == mapping.sha256
    assert params["adapt.photo_batch"] == "16"
    assert registry.experiment_name == EXPERIMENT
    assert registry.run_tags(run_id)["fmnist.step"] == "adapt"
