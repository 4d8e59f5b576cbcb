"""``fmnist models export`` and serving from the export without the training stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from app_server import wait_until_ready
from fmnist.cli import app
from fmnist.composition import build_services
from fmnist.platform.registry import RegistryError
from fmnist.registry.exported import INDEX_FILE, ExportedRegistry
from fmnist.registry.model_cards import ARTIFACT_FOLDER, CARD_FILES
from helpers import closed_port
from synthetic_images import encode, fashion_mnist_image, garment
from tracking_home import set_env
from without_training_stack import BLOCKED

from .conftest import Trained, export_models, restore_registry

BLOCKER = Path(__file__).parents[2] / "without_training_stack.py"


def test_export_holds_the_aliased_versions_with_their_cards(
    trained: Trained, exported: Path
) -> None:
    registry = ExportedRegistry(exported, trained.settings.tracking.registered_model)
    versions = {v.version: v.aliases for v in registry.list_versions()}
    assert versions == {trained.first: ("champion",), trained.second: ("challenger",)}
    assert registry.get("champion").version == trained.first
    source = build_services(trained.settings).registry().get("champion")
    assert registry.get("champion").tags == source.tags  # gate results travel with the model
    for version in versions:
        assert (exported / "models" / "fmnist-classifier" / str(version) / "model.onnx").is_file()
    run_id = registry.get("champion").run_id
    assert run_id is not None
    assert registry.list_run_artifacts(run_id, ARTIFACT_FOLDER) == sorted(CARD_FILES.values())


def test_the_export_is_read_only_with_a_clear_error(trained: Trained, exported: Path) -> None:
    registry = ExportedRegistry(exported, "fmnist-classifier")
    with pytest.raises(RegistryError, match="promotion needs the MLflow registry"):
        registry.promote("2")
    with pytest.raises(RegistryError, match="no exported version or alias 'nope'"):
        registry.get("nope")
    with pytest.raises(RegistryError, match="no exported models at"):
        ExportedRegistry(exported / "missing", "fmnist-classifier").list_versions()


def test_export_again_follows_the_registry_and_drops_old_versions(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "export"
    export_models(trained, target, monkeypatch)
    registry = build_services(trained.settings).registry()
    try:
        registry.promote(str(trained.second), reason="export test")
        summary = export_models(trained, target, monkeypatch, "champion")
    finally:
        restore_registry(trained)
    assert summary["versions"] == [f"fmnist-classifier/{trained.second}"]
    exported = ExportedRegistry(target, "fmnist-classifier")
    assert [v.version for v in exported.list_versions()] == [trained.second]
    assert not (target / "models" / "fmnist-classifier" / str(trained.first)).exists()
    assert json.loads((target / INDEX_FILE).read_text())["format"] == "fmnist-model-export/1"


def test_export_without_a_champion_is_a_clear_error(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, {"FMNIST_HOME": str(trained.settings.home)})
    result = CliRunner().invoke(
        app, ["models", "export", "--to", str(tmp_path / "x"), "--model", "no-such-model"]
    )
    assert result.exit_code == 2  # fmnist's exit code for a refused operation
    assert "error: model 'no-such-model' has no champion to export" in result.output


def serving_command(runtime: str) -> list[str]:
    """How to start ``fmnist`` without the training stack: blocked in this interpreter, or the
    serving-only install (``make test-serve-only`` sets ``SERVE_ONLY_PYTHON``)."""
    if runtime == "blocked":
        return [sys.executable, str(BLOCKER)]
    python = os.environ.get("SERVE_ONLY_PYTHON")
    if not python or not Path(python).is_file():
        pytest.fail("SERVE_ONLY_PYTHON names no interpreter: run `make test-serve-only`")
    return [python, "-m", "fmnist"]


RUNTIMES = [
    pytest.param("blocked", id="training-stack-blocked"),
    pytest.param("serve-only", id="serve-only-install", marks=pytest.mark.serve_only),
]


@pytest.mark.serve_only
def test_the_serving_only_install_has_no_training_stack() -> None:
    probe = (
        "import importlib.util as u, sys; print(sorted(m for m in sys.argv[1:] if u.find_spec(m)))"
    )
    found = subprocess.run(
        [serving_command("serve-only")[0], "-c", probe, *sorted(BLOCKED)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "[]"


@pytest.fixture(params=RUNTIMES)
def served_export(
    request: pytest.FixtureRequest, exported: Path, tmp_path: Path
) -> Iterator[httpx.Client]:
    """``fmnist serve`` on the export in a process where the training stack cannot import."""
    command = serving_command(request.param)
    port = closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FMNIST_", "MLFLOW_"))}
    env |= {
        "FMNIST_HOME": str(tmp_path / "serve-home"),
        "FMNIST_SERVING__MODEL_EXPORT": str(exported),
    }
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*command, "serve", "--port", str(port), "--reload-interval", "0"],
            stdout=err,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            wait_until_ready(http, proc, log)
            yield http
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.mark.network
def test_serving_from_the_export_needs_no_training_stack(
    served_export: httpx.Client, trained: Trained
) -> None:
    http = served_export
    image = encode(Image.fromarray(fashion_mnist_image()), "PNG")
    answer = http.post("/v1/predict", files={"file": ("item.png", image, "image/png")})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == trained.first
    feedback = {"request_id": answer.json()["request_id"], "label": 0}
    stored = http.post("/v1/feedback", json=feedback)  # the log's write path needs no pyarrow
    assert stored.status_code == 201, stored.text
    photo = encode(garment(), "JPEG")  # the photo pipeline (OpenCV) is part of serving
    answer = http.post("/v1/predict", files={"file": ("shirt.jpg", photo, "image/jpeg")})
    assert answer.status_code == 200, answer.text
    challenger = http.post(f"/v1/predict?model={trained.second}", json={"instances": [[0] * 784]})
    assert challenger.status_code == 200, challenger.text
    assert challenger.json()["model_version"] == trained.second
    card = http.get("/v1/models/fmnist-classifier/champion/card")
    assert card.status_code == 200
    assert card.headers["content-type"].startswith("text/html")
    summary = http.get("/v1/monitoring/summary")
    assert summary.status_code == 501
    assert summary.headers["content-type"] == "application/problem+json"
    assert "need the `monitor` extra (pyarrow is not installed)" in summary.json()["detail"]
