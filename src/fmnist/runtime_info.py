"""Facts about the code and machine that every tracked run records."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

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


def package_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of fmnist, Python and ``packages`` (default: those that shape results)."""
    versions = {"fmnist": __version__, "python": platform.python_version()}
    for name in packages:
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


def cores_usable() -> int:
    """Logical cores this process may run on (its CPU affinity, where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 0


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded to 2 decimals."""
    return [round(x, 2) for x in os.getloadavg()]


def hardware() -> dict[str, str]:
    """CPU model, logical cores and architecture."""
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count() or 0),
        "machine": platform.machine(),
    }


def benchmark_machine(*packages: str) -> dict[str, Any]:
    """What a benchmark ran on: CPU, cores online and usable, platform, load average now, and
    the versions of fmnist, Python and ``packages``."""
    return {
        "cpu": cpu_model(),
        "cores_online": os.cpu_count() or 0,
        "cores_usable": cores_usable(),
        "platform": platform.platform(),
        "load_average": load_average(),
        **package_versions(packages),
    }
