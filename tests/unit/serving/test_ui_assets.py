"""The static web UI (fmnist/serving/ui): self-contained files that agree with the package.

Cheap checks that need no browser; tests/browser drives the UI in headless Chromium.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from fmnist import CLASS_NAMES
from fmnist.serving.app import UI_DIR

TEST_IDS = {
    "upload-input",
    "drop-zone",
    "samples",
    "result",
    "result-label",
    "top3",
    "model-input",
    "model-version",
    "verdict-unknown",
    "error",
    "error-detail",
    "link-docs",
    "link-metrics",
    "explain-button",
    "explain-method",
    "explain-heatmap",
}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.test_ids: set[str] = set()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("data-testid"):
            self.test_ids.add(str(values["data-testid"]))
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(str(values[name]))


def test_the_page_has_its_test_ids_and_only_local_assets() -> None:
    """Every stable test id is present; nothing is loaded from another host (no CDN)."""
    page = _Collector()
    page.feed((UI_DIR / "index.html").read_text(encoding="utf-8"))
    assert page.test_ids >= TEST_IDS, TEST_IDS - page.test_ids
    assert {"app.js", "style.css", "docs", "metrics"} <= set(page.urls)
    assert not [u for u in page.urls if re.match(r"(https?:)?//", u)]
    for name in ("app.js", "style.css"):
        text = (UI_DIR / name).read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), name


def test_the_class_names_of_the_ui_are_the_package_ones() -> None:
    """app.js labels the top-3 bars with fmnist.CLASS_NAMES, in class-id order."""
    script = (UI_DIR / "app.js").read_text(encoding="utf-8")
    match = re.search(r"export const CLASS_NAMES = (\[.*?\]);", script, re.DOTALL)
    assert match is not None
    names = json.loads(re.sub(r",\s*\]", "]", match[1]))
    assert tuple(names) == CLASS_NAMES
