"""Drift verdicts on traffic that went through the API: clean test images, then shifted ones."""

from __future__ import annotations

import json
import shutil

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from fmnist.cli import app
from fmnist.data.snapshot import load_snapshot
from fmnist.platform.storage import FsspecStorage

from .conftest import Trained


def post_all(client: httpx.Client, images: np.ndarray) -> None:
    """All ``images`` through /v1/predict/batch, in requests that fit the test body limit."""
    for start in range(0, len(images), 250):
        chunk = images[start : start + 250]
        response = client.post("/v1/predict/batch", json={"instances": chunk.tolist()})
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == len(chunk)


def drift(trained: Trained) -> dict:  # type: ignore[type-arg]
    env = {"FMNIST_HOME": str(trained.settings.home)}
    try:
        result = CliRunner().invoke(app, ["monitor", "drift", "--last", "1000", "--json"], env=env)
    finally:  # the reports folder is the shared home's: other tests expect it empty
        shutil.rmtree(trained.settings.home / "monitoring" / "reports", ignore_errors=True)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.network
def test_monitor_drift_after_clean_then_shifted_traffic(
    client: httpx.Client, trained: Trained
) -> None:
    snapshot = load_snapshot(FsspecStorage(trained.settings.resolved_lake_url))
    images, _ = snapshot.split("test")
    assert len(images) == 1000

    post_all(client, images)
    clean = drift(trained)
    assert clean["drift_detected"] is False, clean["tests"]
    assert clean["window"]["size"] == 1000

    dimmed = (images.astype(np.float32) * 0.6).astype(np.uint8)
    shifted = np.roll(dimmed, shift=(3, 3), axis=(1, 2))
    post_all(client, shifted)
    drifted = drift(trained)
    assert drifted["drift_detected"] is True
    fired = {t["name"] for t in drifted["tests"] if t["fired"]}
    assert fired, drifted["tests"]
    assert {"mean_intensity_ks", "ink_fraction_ks"} & fired
