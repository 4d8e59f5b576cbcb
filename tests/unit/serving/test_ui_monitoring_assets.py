"""The monitoring page and feedback assets of the web UI: local, script-file only, no eval.

Cheap checks without a browser (tests/browser/test_ui_monitoring.py drives them in Chromium).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from fmnist.serving.app import UI_DIR

SVG_NAMESPACE = "http://www.w3.org/2000/svg"
MONITORING_IDS = {
    "monitoring",
    "window-hours",
    "refresh",
    "chart-timeline",
    "timeline-legend",
    "chart-confidence",
    "chart-accuracy",
    "chart-accuracy-classes",
    "drift-status",
    "chart-drift",
    "drift-report-link",
    "alerts",
    "link-classifier",
}
FEEDBACK_IDS = {"feedback", "feedback-class", "feedback-send", "feedback-status", "link-monitoring"}


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.test_ids: set[str] = set()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("data-testid"):
            self.test_ids.add(str(values["data-testid"]))
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(str(values[name]))
        self.handlers += [name for name in values if name.startswith("on")]
        self.inline_styles += int(tag == "style" or "style" in values)
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1


def _page(name: str) -> _Page:
    page = _Page()
    page.feed((UI_DIR / name).read_text(encoding="utf-8"))
    return page


@pytest.mark.parametrize("name", ["index.html", "monitoring.html"])
def test_pages_load_scripts_and_styles_from_files_only(name: str) -> None:
    """No inline script, style or event handler (a strict Content-Security-Policy holds)."""
    page = _page(name)
    assert (page.inline_scripts, page.inline_styles, page.handlers) == (0, 0, [])
    assert not [u for u in page.urls if re.match(r"(https?:)?//", u)]


def test_the_pages_have_their_test_ids_and_link_each_other() -> None:
    monitoring = _page("monitoring.html")
    assert monitoring.test_ids >= MONITORING_IDS, MONITORING_IDS - monitoring.test_ids
    assert {"monitoring.js", "style.css", "monitoring.css", "./"} <= set(monitoring.urls)
    index = _page("index.html")
    assert index.test_ids >= FEEDBACK_IDS, FEEDBACK_IDS - index.test_ids
    assert "monitoring.html" in index.urls


@pytest.mark.parametrize(
    "name", ["api.js", "feedback.js", "charts.js", "monitoring.js", "monitoring.css"]
)
def test_scripts_fetch_nothing_remote_and_never_eval(name: str) -> None:
    text = (UI_DIR / name).read_text(encoding="utf-8").replace(SVG_NAMESPACE, "")
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text)
    assert not re.search(r"\beval\(|new Function\(|innerHTML|@import", text)
