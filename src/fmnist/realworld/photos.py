"""Labelled photo folders: ``ROOT/CLASS/*.jpg`` checked against a class mapping.

Any folder whose subfolders are photo classes works (ImageFolder layout). Every subfolder must be
a class of the mapping, so a typo or a new class is an error, not a silently ignored folder.

The **calibration fold** is a fixed fifth of every folder's photos, chosen by a hash of
``CLASS/FILE`` (so it is the same on every machine and does not depend on the listing order).
Domain adaptation trains only on the other four fifths (:func:`training_photos`), and the
unknown thresholds are calibrated on the fold (:func:`calibration_photos`), so thresholds are
never fitted on photos the model was trained on. Photos under a folder named ``validation``,
``val`` or ``test`` are refused for training: those are held-out measurements.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fmnist.errors import FmnistError
from fmnist.identity import digest_text
from fmnist.realworld.mapping import ClassMapping, MappingError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
HELD_OUT_NAMES = frozenset({"validation", "valid", "val", "test", "testing"})
"""Folder names whose photos are measurements only: never trained or calibrated on."""
CALIBRATION_FOLDS = 5
"""The calibration fold is one of this many hash folds (about 20% of the photos)."""
Fold = Literal["all", "train", "calibration"]


class PhotoFolderError(FmnistError):
    """A photo folder is missing, empty, or laid out differently from its mapping."""


class HeldOutPhotosError(FmnistError):
    """Held-out photos (``validation/``, ``test/``) were passed where training photos go."""


@dataclass(frozen=True)
class LabelledPhoto:
    """One photo and its class (the name of the folder it is in)."""

    path: Path
    photo_class: str

    @property
    def key(self) -> str:
        """``CLASS/FILE``: stable across machines (the hash fold and reports use it)."""
        return f"{self.photo_class}/{self.path.name}"

    @property
    def in_calibration_fold(self) -> bool:
        """Whether the photo is in the calibration fold (see the module docstring)."""
        # The first 4 bytes of the SHA-256, big-endian: its first 8 hex digits.
        return int(digest_text(self.key, length=8), 16) % CALIBRATION_FOLDS == 0


def _split_hint(root: Path, names: list[str], mapping: ClassMapping) -> str:
    splits = [n for n in names if n in HELD_OUT_NAMES | {"train", "training"}]
    if splits and not any(n in mapping.classes for n in names):
        return f" ({root} looks like a dataset with splits {', '.join(splits)}: pass one of them)"
    return ""


def scan_folder(
    root: Path | str, mapping: ClassMapping, *, fold: Fold = "all"
) -> list[LabelledPhoto]:
    """The photos under ``root`` (one subfolder per photo class), sorted by class and name.

    ``fold`` keeps every photo, only the training fold or only the calibration fold. Raises
    :class:`PhotoFolderError` when ``root`` is not a folder or holds no photos, and
    :class:`~fmnist.realworld.mapping.MappingError` when a subfolder is not a class of
    ``mapping`` (naming the folder and the mapping file).
    """
    root = Path(root)
    if not root.is_dir():
        raise PhotoFolderError(f"no photo folder at {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = [f.name for f in folders]
    unknown = [n for n in names if n not in mapping.classes]
    if unknown:
        raise MappingError(
            f"folder {root / unknown[0]} is photo class {unknown[0]!r}, which mapping "
            f"{mapping.path} does not list (it lists: {', '.join(mapping.photo_classes)})"
            + _split_hint(root, names, mapping)
        )
    photos: list[LabelledPhoto] = []
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                photo = LabelledPhoto(path, folder.name)
                if fold == "all" or (fold == "calibration") == photo.in_calibration_fold:
                    photos.append(photo)
    if not photos:
        raise PhotoFolderError(
            f"no photos under {root} (expected {root}/CLASS/*.jpg with classes from {mapping.path})"
        )
    return photos


def refuse_held_out(root: Path | str) -> Path:
    """``root`` resolved, or :class:`HeldOutPhotosError` if it is (in) a held-out split."""
    resolved = Path(root).resolve()
    # The split level is the folder itself or its parent (``.../validation/pants``); folders
    # further up (a checkout under ``~/test/``) say nothing about the photos.
    held = [p.name for p in (resolved, resolved.parent) if p.name.lower() in HELD_OUT_NAMES]
    if held:
        raise HeldOutPhotosError(
            f"{root} is a held-out split ({held[0]!r}): held-out photos are for measuring "
            "only, never for training or calibration; pass the training split (e.g. .../train)"
        )
    return resolved


def training_photos(root: Path | str, mapping: ClassMapping) -> list[LabelledPhoto]:
    """The photos domain adaptation may train on: ``root``'s training fold.

    Refuses held-out folders (:func:`refuse_held_out`) and leaves the calibration fold out.
    """
    return scan_folder(refuse_held_out(root), mapping, fold="train")


def calibration_photos(root: Path | str, mapping: ClassMapping) -> list[LabelledPhoto]:
    """The photos the unknown thresholds are calibrated on: ``root``'s calibration fold.

    Refuses held-out folders like :func:`training_photos`.
    """
    return scan_folder(refuse_held_out(root), mapping, fold="calibration")


def class_counts(photos: list[LabelledPhoto]) -> dict[str, int]:
    """Photos per class, sorted by class."""
    return dict(sorted(Counter(p.photo_class for p in photos).items()))
