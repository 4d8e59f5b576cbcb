"""Where the tests find their real data, and what happens when it is missing.

Fashion-MNIST comes from ``$FMNIST_DATA_DIR``, Debian's ``dataset-fashion-mnist`` or
``../shared/data/fashion-mnist`` (see ``conftest.py``); the clothing photos from
``$FMNIST_PHOTOS_DIR`` or ``../shared/data/clothing-photos``. Both variables are read when this
module is imported, before the per-test isolation clears ``FMNIST_*``.

With ``CI=true`` a missing prerequisite fails the test (:func:`require`); elsewhere it skips
with the reason, and pytest's summary (``-ra``) lists every skip and why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
PHOTOS_ROOT = Path(
    os.environ.get("FMNIST_PHOTOS_DIR") or REPO_ROOT.parent / "shared/data/clothing-photos"
)
"""The clothing photo set (``train/`` and ``validation/``, one folder per class)."""
PHOTOS_TRAIN = PHOTOS_ROOT / "train"
PHOTOS_VALIDATION = PHOTOS_ROOT / "validation"


def missing(reason: str) -> None:
    """Fail under ``CI=true``, skip elsewhere, with ``reason``."""
    if IN_CI:
        pytest.fail(f"missing prerequisite under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def require_dir(path: Path, what: str = "clothing photos") -> Path:
    """``path`` if it is a folder, else :func:`missing` naming it and how to provide it."""
    if not path.is_dir():
        missing(
            f"{what} not found at {path} (set FMNIST_PHOTOS_DIR or provide ../shared; "
            "see ../shared/README.md)"
        )
    return path
