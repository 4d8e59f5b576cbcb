"""The template environment of the generated documents (fmnist.reporting)."""

from __future__ import annotations

import fnmatch
import tomllib
from importlib.resources import files
from pathlib import Path

import jinja2
import pytest

from fmnist.reporting.templates import environment, fmt, inline_html, md_cell, render, slug

ROOT = Path(__file__).resolve().parents[2]


def test_filters() -> None:
    assert fmt(0.12345, ".1%") == "12.3%" and fmt(None, ".1%") == "–" and fmt(None, "f", "-") == "-"
    assert md_cell("a|b\nc") == "a\\|b c"
    assert inline_html('use `x<y` and **this** & "that"') == (
        "use <code>x&lt;y</code> and <strong>this</strong> &amp; &#34;that&#34;"
    )
    assert slug("Robustness (accuracy under corruption)") == "robustness-accuracy-under-corruption"


def test_html_templates_are_escaped_and_markdown_is_not() -> None:
    env = environment()
    assert env.autoescape("model_card.html.j2")  # type: ignore[operator]
    assert not env.autoescape("model_card.md.j2")  # type: ignore[operator]


def test_an_undefined_name_is_an_error() -> None:
    with pytest.raises(jinja2.UndefinedError):
        environment().from_string("{{ missing }}").render()
    with pytest.raises(jinja2.UndefinedError):
        render("leaderboard_targets.md.j2")


def test_every_template_is_package_data() -> None:
    """The wheel ships every template: each matches a package-data pattern of pyproject."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["fmnist"]
    templates = [p.name for p in (files("fmnist.reporting") / "templates").iterdir()]
    assert {"model_card.md.j2", "model_card.html.j2", "leaderboard.md.j2"} <= set(templates)
    for name in templates:
        path = f"reporting/templates/{name}"
        assert any(fnmatch.fnmatch(path, p) for p in patterns), path
