"""The training pipeline, defined once in KFP v2, run end to end by ``kfp.local`` (each
component a subprocess running its ``fmnist`` command) on the quick preset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist import cli
from fmnist.composition import build_services
from fmnist.config import Settings


@pytest.mark.agnostic  # Kubeflow Pipelines, run by kfp.local (about 2 minutes): make test-agnostic
def test_kfp_local_runs_the_quick_pipeline_and_registers_a_model(
    tmp_path: Path, fmnist_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FMNIST_HOME", str(tmp_path))
    monkeypatch.setenv("FMNIST_DATA_DIR", str(fmnist_data_dir))
    out = CliRunner().invoke(
        cli.app, ["pipeline", "run", "--runner", "kfp-local", "--preset", "quick"]
    )
    assert out.exit_code == 0, out.output
    summary = next(
        line for line in out.stdout.splitlines() if line.startswith("training on kfp-local: ")
    )
    assert "SUCCEEDED" in summary
    outputs = json.loads(summary[summary.index("{") :])
    assert outputs["version"] == 1 and outputs["accuracy"] > 0.88
    registry = build_services(Settings(home=tmp_path)).registry()
    version = registry.get("1")
    assert version.run_id == outputs["run_id"]
    assert float(version.tags["test_accuracy"]) == pytest.approx(outputs["accuracy"], abs=1e-4)
    assert (tmp_path / "kfp-local").is_dir()  # kfp.local's outputs of each task
