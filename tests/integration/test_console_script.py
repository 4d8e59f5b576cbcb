"""The installed ``fmnist`` console script, run as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FMNIST = Path(sys.executable).parent / "fmnist"


@pytest.fixture
def script() -> Path:
    if not FMNIST.is_file():
        pytest.skip(f"console script not installed at {FMNIST}")
    return FMNIST


def test_bad_config_file_exits_2_with_one_line(script: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("profile: local\ndata:\n  val_fraction: 0.7\n", encoding="utf-8")

    proc = subprocess.run(
        [str(script), "--config", str(config), "config", "show"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: invalid setting 'data.val_fraction'")
    assert f"[from {config}:3]" in lines[0]


def test_malformed_config_file_names_file_and_line(script: Path, tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("data:\n  mirrors: [a, b\n", encoding="utf-8")

    proc = subprocess.run(
        [str(script), "--config", str(config), "config", "show"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {config}:")
