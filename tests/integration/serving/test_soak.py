"""The CI soak: ``benchmarks/bench_soak.py`` for 60 seconds against a real ``fmnist serve``.

The same driver as the 10-minute soak of ``make bench`` (locust in its own process, the
realistic mix of PNG uploads, JSON batches, photos, feedback and explanations), on the serving
tests' tiny champion, at :data:`RPS` requests/s: the rate two cores hold with the server and
locust sharing them (see ``docs/security.md#soak``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from data_paths import PHOTOS_VALIDATION, REPO_ROOT, require_dir

from .conftest import Trained

pytestmark = pytest.mark.network

DRIVER = REPO_ROOT / "benchmarks" / "bench_soak.py"
SECONDS = 60
RPS = 140
"""Requests/s of the CI soak: what two cores without AVX-512 (the slowest CI machine seen, an
AMD EPYC at 2.4 GHz) hold with locust beside the server; the full soak of ``make bench`` runs
at 200."""
P95_BAR_MS = 100.0
EXPLAIN_P95_BAR_MS = 200.0
PHOTO_P95_BAR_MS = 200.0
"""Photos are segmented (GrabCut) before the model: about 60 ms at the median on that
machine."""
BARS_MS = {"explain": EXPLAIN_P95_BAR_MS, "predict photo": PHOTO_P95_BAR_MS}
MAX_MEMORY_GROWTH = 0.10


def soak_home(trained: Trained, target: Path) -> Path:
    """A copy of the trained home (registry and snapshot, no model cache, no log)."""
    shutil.copytree(
        trained.settings.home, target, ignore=shutil.ignore_patterns("serving", "monitoring")
    )
    return target


def test_soak_60_seconds(trained: Trained, tmp_path: Path) -> None:
    photos = require_dir(PHOTOS_VALIDATION)
    results = tmp_path / "soak.json"
    # MLflow exports MLFLOW_TRACKING_URI when a run starts (the session fixture trained here).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FMNIST_", "MLFLOW_"))}
    done = subprocess.run(
        [
            sys.executable,
            str(DRIVER),
            "--home",
            str(soak_home(trained, tmp_path / "home")),
            "--duration",
            str(SECONDS),
            "--rps",
            str(RPS),
            "--photos",
            str(photos),
            "--results",
            str(results),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=SECONDS + 300,
    )
    assert results.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(results.read_text())
    overall = figures["latency"]["overall"]
    summary = done.stdout[-2500:]
    print(summary)  # the figures, in the log of a passing run too (pytest -rP)
    assert overall["failures"] == 0, figures["failures"]
    assert figures["locust"]["failures"] == 0, summary
    assert overall["requests"] == figures["locust"]["requests"], summary  # nothing unrecorded
    assert overall["rps"] >= 0.95 * RPS, summary
    assert set(figures["latency"]) == {
        "predict png",
        "predict batch",
        "predict photo",
        "feedback",
        "explain",
        "overall",
    }, summary
    for name, row in figures["latency"].items():
        assert row["p95_ms"] < BARS_MS.get(name, P95_BAR_MS), (name, summary)
    log = figures["prediction_log"]
    assert log["complete"] and log["missing"] == 0, log
    assert log["acknowledged_ids"] > SECONDS * RPS, log  # batches: several ids per request
    assert figures["memory"]["growth"] < MAX_MEMORY_GROWTH, figures["memory"]
    assert figures["availability"]["met"], figures["availability"]
    assert all(figures["verdict"].values()), figures["verdict"]
    assert done.returncode == 0, summary
