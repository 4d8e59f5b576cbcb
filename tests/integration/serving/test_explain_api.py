"""POST /v1/explain over real HTTP: every method, the answer's shape, and every problem.

The server is the real app under uvicorn serving the session's tiny registered models, with
small sample counts (through the ``explain`` settings) so each request takes well under a second.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from app_server import running
from fmnist import CLASS_NAMES
from fmnist.cli import app as cli_app
from fmnist.composition import build_services
from fmnist.config import Settings, settings_json_with_secrets
from fmnist.data.snapshot import load_snapshot
from fmnist.explain import METHODS, load_served_model
from fmnist.platform.storage import FsspecStorage
from fmnist.registry.onnx_runtime import OnnxClassifier, to_model_input

from .conftest import Trained, serving_settings

pytestmark = pytest.mark.network

FAST_EXPLAIN = {
    "max_images": 3,
    "ig_steps": 8,
    "shap_samples": 16,
    "shap_background_size": 16,
    "lime_num_samples": 80,
    "occlusion_stride": 4,
}


def explain_settings(base: Settings, **explain: Any) -> Settings:
    """``base`` with test serving options and small explainer sample counts."""
    settings = serving_settings(base)
    section = settings.explain.model_copy(update={**FAST_EXPLAIN, **explain})
    return settings.model_copy(update={"explain": section})


@pytest.fixture(scope="module")
def explain_url(trained: Trained) -> Iterator[str]:
    """A server with small explainer sample counts."""
    with running(explain_settings(trained.settings)) as url:
        yield url


@pytest.fixture
def api(explain_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for it (no proxies from the environment)."""
    with httpx.Client(base_url=explain_url, trust_env=False, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
def test_images(trained: Trained) -> np.ndarray:
    """The first 8 test images of the snapshot the models were trained on."""
    snapshot = load_snapshot(FsspecStorage(trained.settings.resolved_lake_url))
    return np.ascontiguousarray(snapshot.split("test")[0][:8])


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def check_explanations(response: httpx.Response, count: int, method: str) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {
        "explanations",
        "method",
        "params",
        "seconds",
        "model_name",
        "model_version",
        "request_id",
    }
    assert body["method"] == method and body["params"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert response.headers["x-model-version"] == str(body["model_version"])
    assert len(body["explanations"]) == count
    for item in body["explanations"]:
        assert set(item) == {"class_id", "label", "attributions", "heatmap_png", "request_id"}
        assert item["label"] == CLASS_NAMES[item["class_id"]]
        maps = np.asarray(item["attributions"], dtype=np.float64)
        assert maps.shape == (28, 28) and np.isfinite(maps).all() and np.abs(maps).max() > 0
        heatmap = Image.open(io.BytesIO(base64.b64decode(item["heatmap_png"])))
        assert heatmap.format == "PNG" and heatmap.size == (224, 224)
    explanations: list[dict[str, Any]] = body["explanations"]
    return explanations


def problem(response: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance", "request_id"} <= set(body)
    assert body["status"] == status
    if slug is not None:
        assert body["type"] == f"urn:fmnist:problem:{slug}"
    return body


# --------------------------------------------------------------------------------- answers
def test_default_is_integrated_gradients_of_the_predicted_class(
    api: httpx.Client, test_images: np.ndarray
) -> None:
    """One PNG upload: the explained class is the one /v1/predict answers for the same file."""
    files = {"file": ("shirt.png", png(test_images[0]), "image/png")}
    predicted = api.post("/v1/predict", files=files).json()["predictions"][0]
    response = api.post("/v1/explain", files=files)
    [item] = check_explanations(response, 1, "integrated_gradients")
    assert item["class_id"] == predicted["top_class_id"]


@pytest.mark.parametrize("method", METHODS)
def test_each_method_by_query_json_and_form(
    api: httpx.Client, test_images: np.ndarray, method: str
) -> None:
    """Query parameter, JSON member and form field name the method alike; same maps."""
    pixels = test_images[:2]
    by_query = api.post(
        "/v1/explain", params={"method": method}, json={"instances": pixels.tolist()}
    )
    by_json = api.post("/v1/explain", json={"instances": pixels.tolist(), "method": method})
    first = check_explanations(by_query, 2, method)
    second = check_explanations(by_json, 2, method)
    assert [e["attributions"] for e in first] == [e["attributions"] for e in second]
    by_form = api.post(
        "/v1/explain",
        files={"file": ("x.png", png(pixels[0]), "image/png")},
        data={"method": method},
    )
    [third] = check_explanations(by_form, 1, method)
    alone, batched = np.asarray(third["attributions"]), np.asarray(first[0]["attributions"])
    # one image alone or in a batch of two: the same map up to float rounding
    np.testing.assert_allclose(alone, batched, rtol=1e-3, atol=1e-3 * np.abs(batched).max())


def test_class_id_explains_another_class(api: httpx.Client, test_images: np.ndarray) -> None:
    """``?class_id=`` explains that class instead of the predicted one."""
    body = {"instances": test_images[:1].tolist()}
    predicted = check_explanations(api.post("/v1/explain", json=body), 1, "integrated_gradients")
    other = (predicted[0]["class_id"] + 1) % 10
    response = api.post("/v1/explain", params={"class_id": other}, json=body)
    [item] = check_explanations(response, 1, "integrated_gradients")
    assert item["class_id"] == other
    assert item["attributions"] != predicted[0]["attributions"]


def test_served_pytorch_model_reproduces_the_onnx_file(
    trained: Trained, test_images: np.ndarray, tmp_path: Path
) -> None:
    """load_served_model on a registered version: the same predictions as its ONNX file."""
    folder = build_services(trained.settings).registry().download(str(trained.first), tmp_path)
    model = load_served_model(folder)
    x = to_model_input(test_images)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    onnx_logits, _ = OnnxClassifier(folder / "model.onnx").run(x)
    np.testing.assert_allclose(logits, onnx_logits, atol=1e-3)
    assert model.info["snapshot_id"]


def test_metrics_count_explanations(api: httpx.Client, test_images: np.ndarray) -> None:
    """/metrics counts explanations by method and outcome and times them."""
    api.post("/v1/explain", json={"instances": test_images[:1].tolist()})
    text = api.get("/metrics").text
    assert 'fmnist_explanations_total{method="integrated_gradients",outcome="ok"}' in text
    assert 'fmnist_explanation_seconds_count{method="integrated_gradients"}' in text


# --------------------------------------------------------------------------------- problems
def test_an_unknown_method_is_a_422_naming_the_valid_ones(
    api: httpx.Client, test_images: np.ndarray
) -> None:
    """Query or body: the detail names the bad method and every valid one."""
    body = {"instances": test_images[:1].tolist()}
    for response, where in (
        (api.post("/v1/explain", params={"method": "gradcam"}, json=body), "query.method"),
        (api.post("/v1/explain", json={**body, "method": "gradcam"}), "body.method"),
    ):
        answer = problem(response, 422, "unknown-method")
        assert "'gradcam'" in answer["detail"]
        assert all(m in answer["detail"] for m in METHODS)
        assert answer["errors"][0]["loc"] == where
    conflict = api.post("/v1/explain", params={"method": "lime"}, json={**body, "method": "shap"})
    problem(conflict, 422, "conflicting-method")


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"", {"content-type": "application/json"}),
        (b"{not json", {"content-type": "application/json"}),
        (b'{"instances": [[1, 2, 3]]}', {"content-type": "application/json"}),
        (b'{"instances": "x"}', {"content-type": "application/json"}),
        (b"\xff\xd8\xff\xe0 not really a JPEG", {"content-type": "image/jpeg"}),
        (b"%PDF-1.4 a document", {"content-type": "application/pdf"}),
    ],
    ids=["empty", "malformed-json", "bad-instance", "wrong-shape", "corrupt-image", "pdf"],
)
def test_bad_inputs_get_the_problems_of_predict(
    api: httpx.Client, content: bytes, headers: dict[str, str]
) -> None:
    """The same input parsing as /v1/predict: the same status, type and detail (4xx)."""
    expected = api.post("/v1/predict", content=content, headers=headers)
    response = api.post("/v1/explain", content=content, headers=headers)
    assert 400 <= response.status_code < 500
    answer = problem(response, expected.status_code)
    reference = expected.json()
    assert (answer["type"], answer["detail"]) == (reference["type"], reference["detail"])


def test_too_many_images_is_a_413(api: httpx.Client, test_images: np.ndarray) -> None:
    """More than explain.max_images instances."""
    response = api.post("/v1/explain", json={"instances": test_images[:4].tolist()})
    answer = problem(response, 413, "too-many-instances")
    assert "limit of 3" in answer["detail"]


def test_bad_class_id_and_model_are_problems(api: httpx.Client, test_images: np.ndarray) -> None:
    """class_id outside 0-9 is a 422; an unknown model a 404, as for predict."""
    body = {"instances": test_images[:1].tolist()}
    problem(api.post("/v1/explain", params={"class_id": 10}, json=body), 422)
    problem(api.post("/v1/explain", params={"model": "99"}, json=body), 404, "model-not-found")
    problem(api.get("/v1/explain"), 405)


def test_a_missing_package_is_a_501(
    api: httpx.Client, test_images: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without captum (or shap) importable the method answers 501; others keep working."""
    body = {"instances": test_images[:1].tolist()}
    monkeypatch.setitem(sys.modules, "captum", None)
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    monkeypatch.setitem(sys.modules, "shap", None)
    for method in ("integrated_gradients", "occlusion", "shap"):
        answer = problem(
            api.post("/v1/explain", params={"method": method}, json=body),
            501,
            "explain-unavailable",
        )
        assert "not installed" in answer["detail"]
    check_explanations(api.post("/v1/explain", params={"method": "lime"}, json=body), 1, "lime")


def test_a_slow_method_answers_504_within_its_limit(
    trained: Trained, test_images: np.ndarray
) -> None:
    """LIME with a huge sample count and a tiny limit: a 504 problem, promptly; the server
    still explains afterwards."""
    settings = explain_settings(trained.settings, lime_num_samples=100_000, lime_time_limit_s=0.3)
    body = {"instances": test_images[:1].tolist()}
    with (
        running(settings) as url,
        httpx.Client(base_url=url, trust_env=False, timeout=120) as http,
    ):
        check_explanations(http.post("/v1/explain", json=body), 1, "integrated_gradients")
        response = http.post("/v1/explain", params={"method": "lime"}, json=body)
        answer = problem(response, 504, "explain-timeout")
        assert "0.3 s" in answer["detail"]
        assert response.elapsed.total_seconds() < 5
        check_explanations(http.post("/v1/explain", json=body), 1, "integrated_gradients")


def test_predict_does_not_import_torch(trained: Trained, test_images: np.ndarray) -> None:
    """The app and /v1/predict stay torch-free: only /v1/explain loads PyTorch."""
    code = (
        "import json, os, sys\n"
        "from fastapi.testclient import TestClient\n"
        "from fmnist.composition import build_services\n"
        "from fmnist.config import Settings\n"
        "from fmnist.serving.app import create_app\n"
        "settings = Settings.model_validate_json(os.environ['SETTINGS'])\n"
        "with TestClient(create_app(build_services(settings))) as client:\n"
        "    answer = client.post('/v1/predict', json=json.loads(os.environ['BODY']))\n"
        "    assert answer.status_code == 200, answer.text\n"
        "    assert 'torch' not in sys.modules, 'torch imported by /v1/predict'\n"
        "    answer = client.post('/v1/explain', json=json.loads(os.environ['BODY']))\n"
        "    assert answer.status_code == 200, answer.text\n"
        "    assert 'torch' in sys.modules\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("FMNIST_")},
        "SETTINGS": settings_json_with_secrets(serving_settings(trained.settings)),
        "BODY": json.dumps({"instances": test_images[:1].tolist()}),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


# --------------------------------------------------------------------------------- CLI
def test_cli_explains_images_and_evaluates_faithfulness(
    trained: Trained, test_images: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``fmnist explain image`` writes heatmaps and JSON; ``evaluate`` the report and plots."""
    monkeypatch.setenv("FMNIST_HOME", str(trained.settings.home))
    for key, value in {**FAST_EXPLAIN, "shap_background_size": 8}.items():
        monkeypatch.setenv(f"FMNIST_EXPLAIN__{key.upper()}", str(value))
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = []
        for i in range(2):
            path = folder / f"image{i}.png"
            path.write_bytes(png(test_images[i]))
            paths.append(str(path))
        result = runner.invoke(
            cli_app,
            ["explain", "image", *paths, "--method", "occlusion", "--out", str(folder / "out")],
        )
        assert result.exit_code == 0, result.output
        summary = json.loads((folder / "out/explanations-occlusion.json").read_text())
        assert summary["method"] == "occlusion" and len(summary["explanations"]) == 2
        first = summary["explanations"][0]
        model_input = Image.open(io.BytesIO(base64.b64decode(first["model_input_png"])))
        assert model_input.size == (28, 28)
        assert np.asarray(first["attributions"]).shape == (28, 28)
        assert (folder / "out/image0.occlusion.png").is_file()

        result = runner.invoke(cli_app, ["explain", "image", paths[0], "--method", "nope"])
        assert result.exit_code == 2 and "unknown 'nope'" in result.output

        result = runner.invoke(
            cli_app,
            [
                "explain",
                "evaluate",
                "--samples",
                "6",
                "--steps",
                "7",
                "--methods",
                "integrated_gradients,lime",
                "--randomisation-images",
                "2",
                "--checkpoints",
                "2",
                "--out",
                str(folder / "eval"),
                "--no-progress",
            ],
        )
        assert result.exit_code == 0, result.output
        report = json.loads((folder / "eval/faithfulness.json").read_text())
        assert [m["method"] for m in report["methods"]] == ["integrated_gradients", "lime"]
        assert report["samples"] == 6 and len(report["indices"]) == 6
        assert report["randomisation"] == "cascading"
        for name in ("faithfulness.md", "deletion_insertion.png", "examples.png"):
            assert (folder / "eval" / name).stat().st_size > 0
