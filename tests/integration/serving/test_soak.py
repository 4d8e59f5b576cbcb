"""The CI soak: ``benchmarks/bench_soak.py`` for 60 seconds against a real ``fmnist serve``.

The same driver as the 10-minute soak of ``make bench`` (locust in its own process, the
realistic mix of PNG uploads, JSON batches, photos, feedback and explanations), on the serving
tests' tiny champion, at :data:`RPS` requests/s (see ``docs/security.md#soak``). It asserts
what must hold on any machine: no failed request, every acknowledged prediction in the log,
bounded memory, availability, the rate held. Latency is printed, not asserted: its bars are
targets of the benchmark on a machine of record (``benchmarks/results/soak.json``), and a
loaded CI machine measured photo and explanation p95s of 450 and 380 ms with every other
check green.
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
RPS = 120
"""Requests/s of the CI soak: the slowest CI machine seen (2 cores of an AMD EPYC at 2.4 GHz
without AVX-512) held 137 of 140 with locust beside the server; the full soak of
``make bench`` runs at 200."""
LATENCY_CHECKS = {"p95_within_serving_bar", "explain_p95_within_bar"}
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
            "--latency-reported-only",
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
    assert all(row["p95_ms"] > 0 for row in figures["latency"].values()), summary
    log = figures["prediction_log"]
    assert log["complete"] and log["missing"] == 0, log
    assert log["acknowledged_ids"] > SECONDS * RPS, log  # batches: several ids per request
    assert figures["memory"]["growth"] < MAX_MEMORY_GROWTH, figures["memory"]
    assert figures["availability"]["met"], figures["availability"]
    checks = {k: v for k, v in figures["verdict"].items() if k not in LATENCY_CHECKS}
    assert len(checks) == len(figures["verdict"]) - len(LATENCY_CHECKS), figures["verdict"]
    assert all(checks.values()), figures["verdict"]
    assert done.returncode == 0, summary
