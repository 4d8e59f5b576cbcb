"""config/example.yaml documents every setting and loads without errors."""

from __future__ import annotations

from pathlib import Path

import yaml

from fmnist.config import Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
# Left out on purpose: its default depends on $XDG_CACHE_HOME / the user's home folder.
NOT_IN_EXAMPLE = {"cache_dir"}


def _keys(tree: dict[str, object], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            keys |= _keys(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


def test_example_lists_every_setting() -> None:
    documented = _keys(yaml.safe_load(EXAMPLE.read_text()))
    expected = _keys(Settings().model_dump(mode="json")) - NOT_IN_EXAMPLE
    assert expected - documented == set(), "settings missing from config/example.yaml"


def test_example_loads_and_changes_nothing() -> None:
    from_file = load_settings(EXAMPLE).settings.model_dump(mode="json")
    defaults = load_settings().settings.model_dump(mode="json")
    assert from_file == defaults
