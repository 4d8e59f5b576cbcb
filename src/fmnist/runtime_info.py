"""Facts about the code and machine that every tracked run records."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fmnist import __version__

TRACKED_PACKAGES = (
    "torch",
    "numpy",
    "onnx",
    "onnxruntime",
    "mlflow",
    "scikit-learn",
    "pydantic",
)


def git_commit() -> str:
    """The current git commit of the source tree (``unknown`` outside a checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape results."""
    versions = {"fmnist": __version__, "python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "absent"
    return versions


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def hardware() -> dict[str, str]:
    """CPU model, logical cores and architecture."""
    import os

    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count() or 0),
        "machine": platform.machine(),
    }
