"""The lifecycle commands as a user runs them: pipeline run, train, evaluate (tiny preset)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist.cli import app
from fmnist.composition import build_services
from fmnist.config import load_settings


def test_pipeline_then_train_and_strict_evaluate(
    fmnist_data_dir: Path, offline_env: Callable[..., dict[str, str]]
) -> None:
    offline_env(fmnist_data_dir)
    runner = CliRunner()

    result = runner.invoke(app, ["pipeline", "run", "--preset", "tiny", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "main job finished" in result.output
    assert "test accuracy" in result.output
    assert "registered version 1" in result.output
    # Default gates (90% accuracy) reject a 2-epoch tiny model, with reasons printed.
    assert "gates failed" in result.output and "< minimum 0.900" in result.output

    result = runner.invoke(
        app, ["train", "--preset", "tiny", "--epochs", "1", "--seed", "3", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "trained cnn" in result.output and "ONNX parity" in result.output
    teacher_run = result.output.split("run ")[-1].split(";")[0].strip()

    # Distillation: the run above as the teacher (by run id), recorded with the student's run.
    student = ["train", "--preset", "tiny", "--epochs", "1", "--no-progress", "--teacher"]
    result = runner.invoke(app, [*student, "no-such-run"])
    assert result.exit_code == 2
    assert "teacher 'no-such-run': no weights.pt found" in result.output
    result = runner.invoke(app, [*student, teacher_run, "--distill-alpha", "0.5"])
    assert result.exit_code == 0, result.output
    runs = build_services(load_settings().settings).registry()
    params = runs.run_params(result.output.split("run ")[-1].split(";")[0].strip())
    assert params["distill.teachers"] == str([teacher_run])
    assert params["distill.alpha"] == "0.5"

    result = runner.invoke(app, ["evaluate", "--no-quantize", "--strict"])
    assert result.exit_code == 1, result.output
    assert "gates failed" in result.output

    versions = build_services(load_settings().settings).registry().list_versions()
    assert [v.version for v in versions] == [2, 1]
    assert all(v.tags["gate.passed"] == "false" for v in versions)
    assert versions[0].aliases == ("challenger",)


def test_unknown_preset_is_a_clear_error(offline_env: Callable[..., dict[str, str]]) -> None:
    offline_env()
    result = CliRunner().invoke(app, ["train", "--preset", "huge"])
    assert result.exit_code == 2
    assert "unknown preset 'huge'" in result.output


def test_evaluate_without_runs_is_a_clear_error(
    offline_env: Callable[..., dict[str, str]],
) -> None:
    offline_env()
    result = CliRunner().invoke(app, ["evaluate"])
    assert result.exit_code == 2
    assert "no finished 'train' run" in result.output


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_every_architecture_builds_and_runs(name: str) -> None:
    import torch

    from fmnist.models import build_model

    model = build_model(name).eval()
    with torch.inference_mode():
        assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_unknown_architecture_lists_valid_ones() -> None:
    from fmnist.errors import ConfigError
    from fmnist.models import build_model

    with pytest.raises(ConfigError, match="choose one of: cnn, mlp"):
        build_model("transformer-xl")
