"""docs/architecture.md's package diagram is generated from the code and must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_package_diagram_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "architecture.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_top_level_folder_has_a_readme() -> None:
    for folder in ("infrastructure", "pipelines", "services", "monitoring", "dashboards"):
        readme = REPO / folder / "README.md"
        assert readme.is_file(), folder
        assert "checked" in readme.read_text().lower(), f"{folder}/README.md: say how it is checked"
