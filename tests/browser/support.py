"""Paths and browser settings shared by the browser tests and their fixtures."""

from __future__ import annotations

from pathlib import Path

from data_paths import PHOTOS_ROOT

# The browser the product films with (fmnist video), re-exported for the tests.
from fmnist.video.record import CHROMIUM as CHROMIUM
from fmnist.video.record import CHROMIUM_ARGS as CHROMIUM_ARGS

REPO_ROOT = Path(__file__).resolve().parents[2]
PHOTOS = PHOTOS_ROOT
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
"""Screenshots of every run (not committed)."""
DOCS_SCREENSHOT = REPO_ROOT / "docs/images/ui.png"
