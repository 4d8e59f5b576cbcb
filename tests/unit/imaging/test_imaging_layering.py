"""fmnist.imaging depends on nothing of fmnist but its top-level modules, and not on torch."""

from __future__ import annotations

import subprocess
import sys

ALLOWED = {"fmnist", "fmnist.errors", "fmnist.atomic"}


def test_imaging_imports_only_top_level_fmnist_modules_and_no_torch() -> None:
    code = (
        "import importlib, pkgutil, sys; import fmnist.imaging as imaging; "
        "[importlib.import_module(f'fmnist.imaging.{m.name}') "
        "for m in pkgutil.iter_modules(imaging.__path__)]; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('fmnist')))); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout.split("\n")
    loaded = {m for m in out[0].split() if not m.startswith("fmnist.imaging")}
    assert loaded <= ALLOWED, loaded - ALLOWED
    assert out[1] == "False"
