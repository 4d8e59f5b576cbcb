"""Paths and browser settings shared by the browser tests and their fixtures."""

from __future__ import annotations

from pathlib import Path

from data_paths import PHOTOS_ROOT

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium (``apt-get install chromium``); Playwright's own download is not used."""
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
PHOTOS = PHOTOS_ROOT
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
"""Screenshots of every run (not committed)."""
DOCS_SCREENSHOT = REPO_ROOT / "docs/images/ui.png"
