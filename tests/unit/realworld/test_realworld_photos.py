"""Labelled photo folders: layout checks, the calibration fold, and refusing held-out photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from data_paths import PHOTOS_ROOT, require_dir
from fmnist import cli
from fmnist.realworld.mapping import load_mapping
from fmnist.realworld.photos import (
    HeldOutPhotosError,
    PhotoFolderError,
    calibration_photos,
    refuse_held_out,
    scan_folder,
    training_photos,
)

REPO = Path(__file__).resolve().parents[3]
MAPPING = REPO / "config/real-world/clothing-small.yaml"
PHOTOS = PHOTOS_ROOT


@pytest.fixture(scope="module")
def train_dir() -> Path:
    """The real training photos (../shared, see ../shared/README.md)."""
    return require_dir(PHOTOS / "train")


def test_the_real_training_folder_scans_with_the_mapping(train_dir: Path) -> None:
    mapping = load_mapping(MAPPING)
    photos = scan_folder(train_dir, mapping)
    assert len(photos) == 3068  # the counts of ../shared/README.md
    assert {p.photo_class for p in photos} == set(mapping.photo_classes)
    assert photos == sorted(photos, key=lambda p: (p.photo_class, p.path.name))


def test_the_calibration_fold_is_a_stable_fifth_of_every_class(train_dir: Path) -> None:
    mapping = load_mapping(MAPPING)
    train, held = training_photos(train_dir, mapping), calibration_photos(train_dir, mapping)
    everything = scan_folder(train_dir, mapping)
    assert {p.key for p in train}.isdisjoint({p.key for p in held})
    assert len(train) + len(held) == len(everything)
    for name in mapping.photo_classes:
        total = sum(p.photo_class == name for p in everything)
        share = sum(p.photo_class == name for p in held) / total
        assert 0.1 <= share <= 0.3, (name, share)
    # The fold depends on CLASS/FILE only, not on where the folder is.
    assert held[0].in_calibration_fold and not train[0].in_calibration_fold


def test_validation_photos_are_never_training_photos() -> None:
    """The loaders of domain adaptation and calibration refuse the held-out split."""
    mapping = load_mapping(MAPPING)
    validation = PHOTOS / "validation"
    for load in (training_photos, calibration_photos):
        with pytest.raises(HeldOutPhotosError, match="'validation'"):
            load(validation, mapping)
    with pytest.raises(HeldOutPhotosError):
        refuse_held_out(validation / "pants")
    refuse_held_out(PHOTOS / "train")  # no error


def test_a_copied_validation_folder_is_refused_too(tmp_path: Path) -> None:
    mapping = load_mapping(MAPPING)
    for split in ("validation", "test", "val"):
        (tmp_path / split / "pants").mkdir(parents=True)
        with pytest.raises(HeldOutPhotosError):
            training_photos(tmp_path / split, mapping)


def test_the_adapt_command_refuses_validation_before_training() -> None:
    result = CliRunner().invoke(
        cli.app,
        ["experiment", "adapt", str(PHOTOS / "validation"), "--mapping", str(MAPPING)],
    )
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("error: ") and "held-out split ('validation')" in line, line


def test_non_images_and_hidden_folders_are_skipped(tmp_path: Path, train_dir: Path) -> None:
    mapping = load_mapping(MAPPING)
    (tmp_path / "pants").mkdir()
    (tmp_path / ".cache").mkdir()
    source = sorted((train_dir / "pants").glob("*.jpg"))[0]
    shutil.copy(source, tmp_path / "pants" / "a.JPG")
    (tmp_path / "pants" / "notes.txt").write_text("not a photo", encoding="utf-8")
    photos = scan_folder(tmp_path, mapping)
    assert [p.key for p in photos] == ["pants/a.JPG"]


def test_empty_and_missing_folders_are_errors(tmp_path: Path) -> None:
    mapping = load_mapping(MAPPING)
    with pytest.raises(PhotoFolderError, match="no photo folder"):
        scan_folder(tmp_path / "absent", mapping)
    (tmp_path / "pants").mkdir()
    with pytest.raises(PhotoFolderError, match="no photos under"):
        scan_folder(tmp_path, mapping)


def test_a_dataset_root_gets_a_hint_to_pick_a_split() -> None:
    mapping = load_mapping(MAPPING)
    require_dir(PHOTOS)
    with pytest.raises(Exception, match="looks like a dataset with splits train, validation"):
        scan_folder(PHOTOS, mapping)
