"""The HTTP contract of the online service, over real HTTP against the real app."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from app_server import running
from fmnist import CLASS_NAMES
from fmnist.data.snapshot import load_snapshot
from fmnist.platform.storage import FsspecStorage
from fmnist.registry.onnx_runtime import OnnxClassifier

from .conftest import Trained, serving_settings

pytestmark = pytest.mark.network

PREDICTION_KEYS = {
    "class_id",
    "label",
    "probabilities",
    "confidence",
    "energy",
    "reasons",
    "top_class_id",
    "top_label",
}
RESPONSE_KEYS = {"predictions", "model_name", "model_version", "path", "fallback", "request_id"}
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "request_id"}


@pytest.fixture(scope="module")
def test_images(trained: Trained) -> np.ndarray:
    """The first 64 test images of the snapshot the models were trained on."""
    snapshot = load_snapshot(FsspecStorage(trained.settings.resolved_lake_url))
    return snapshot.split("test")[0][:64]


@pytest.fixture(scope="module")
def reference(trained: Trained, base_url: str) -> OnnxClassifier:
    """The champion's ONNX file as the server cached it, run locally for comparison."""
    path = trained.settings.home / "serving/models/fmnist-classifier" / str(trained.first)
    return OnnxClassifier(path / "model.onnx")


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def check_prediction(prediction: dict[str, Any]) -> None:
    assert set(prediction) >= PREDICTION_KEYS
    assert len(prediction["probabilities"]) == len(CLASS_NAMES)
    assert sum(prediction["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    assert prediction["top_label"] == CLASS_NAMES[prediction["top_class_id"]]
    if prediction["class_id"] is None:
        assert prediction["label"] == "unknown" and prediction["reasons"]
    else:
        assert prediction["label"] == CLASS_NAMES[prediction["class_id"]]
        assert prediction["class_id"] == prediction["top_class_id"]
        assert prediction["reasons"] == []


def check_response(response: httpx.Response, count: int, version: int) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == RESPONSE_KEYS
    assert body["model_version"] == version
    assert body["model_name"] == "fmnist-classifier"
    assert body["request_id"] == response.headers["x-request-id"]
    assert len(body["predictions"]) == count
    for prediction in body["predictions"]:
        check_prediction(prediction)
    predictions: list[dict[str, Any]] = body["predictions"]
    return predictions


def test_predict_multipart_real_jpeg(
    client: httpx.Client, jpeg_bytes: bytes, trained: Trained
) -> None:
    response = client.post("/v1/predict", files={"file": ("pants.jpg", jpeg_bytes, "image/jpeg")})
    [prediction] = check_response(response, 1, trained.first)
    assert prediction["preprocessing"]["mode"] == "photo"
    assert prediction["preprocessing"]["bbox"] is not None
    assert "model_input_png" not in prediction


def test_json_nested_flat_and_b64_agree_with_the_model(
    client: httpx.Client, test_images: np.ndarray, reference: OnnxClassifier, trained: Trained
) -> None:
    image = test_images[0]
    expected = reference.predict_proba(image[None])[0]
    bodies = {
        "nested": {"instances": [image.tolist()]},
        "flat": {"instances": [image.ravel().tolist()]},
        "b64": {"instances": [{"b64": base64.b64encode(png(image)).decode()}]},
    }
    for name, body in bodies.items():
        [prediction] = check_response(client.post("/v1/predict", json=body), 1, trained.first)
        np.testing.assert_allclose(prediction["probabilities"], expected, atol=2e-6, err_msg=name)
        assert prediction["top_class_id"] == int(expected.argmax())
        assert ("preprocessing" in prediction) == (name == "b64")
    [b64] = client.post("/v1/predict", json=bodies["b64"]).json()["predictions"]
    assert b64["preprocessing"]["mode"] == "fashion_mnist"


def test_raw_image_body(client: httpx.Client, test_images: np.ndarray, trained: Trained) -> None:
    response = client.post(
        "/v1/predict", content=png(test_images[1]), headers={"content-type": "image/png"}
    )
    check_response(response, 1, trained.first)


def test_return_image_gives_the_model_input(
    client: httpx.Client, test_images: np.ndarray, jpeg_bytes: bytes
) -> None:
    image = test_images[2]
    by_query = client.post(
        "/v1/predict", params={"return_image": "true"}, json={"instances": [image.tolist()]}
    )
    by_field = client.post(
        "/v1/predict", json={"instances": [image.tolist()], "return_image": True}
    )
    for response in (by_query, by_field):
        [prediction] = response.json()["predictions"]
        seen = Image.open(io.BytesIO(base64.b64decode(prediction["model_input_png"])))
        assert seen.size == (28, 28)
        np.testing.assert_array_equal(np.asarray(seen), image)
    photo = client.post(
        "/v1/predict?return_image=1", files={"file": ("p.jpg", jpeg_bytes, "image/jpeg")}
    )
    [prediction] = photo.json()["predictions"]
    seen = Image.open(io.BytesIO(base64.b64decode(prediction["model_input_png"])))
    assert seen.size == (28, 28) and np.asarray(seen).max() > 0


def test_batch_json_keeps_order_and_matches_the_model(
    client: httpx.Client, test_images: np.ndarray, reference: OnnxClassifier, trained: Trained
) -> None:
    body = {"instances": [image.ravel().tolist() for image in test_images[:50]]}
    predictions = check_response(client.post("/v1/predict/batch", json=body), 50, trained.first)
    expected = reference.predict_proba(test_images[:50])
    got = np.array([p["probabilities"] for p in predictions])
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_batch_multipart_with_file_and_files_fields(
    client: httpx.Client, test_images: np.ndarray, jpeg_bytes: bytes, trained: Trained
) -> None:
    files = [
        ("file", ("a.png", png(test_images[0]), "image/png")),
        ("files", ("b.jpg", jpeg_bytes, "image/jpeg")),
        ("files", ("c.png", png(test_images[1]), "image/png")),
    ]
    predictions = check_response(client.post("/v1/predict/batch", files=files), 3, trained.first)
    assert [p["preprocessing"]["mode"] for p in predictions] == [
        "fashion_mnist",
        "photo",
        "fashion_mnist",
    ]


def test_json_predict_accepts_several_instances(
    client: httpx.Client, test_images: np.ndarray, trained: Trained
) -> None:
    body = {"instances": [image.tolist() for image in test_images[:3]]}
    check_response(client.post("/v1/predict", json=body), 3, trained.first)


@pytest.mark.parametrize(
    ("ref", "which"),
    [
        ("1", "first"),
        ("2", "second"),
        ("challenger", "second"),
        ("champion", "first"),
        ("fmnist-classifier", "first"),
        ("fmnist-classifier@2", "second"),
    ],
)
def test_model_query_selects_version_or_alias(
    client: httpx.Client, test_images: np.ndarray, trained: Trained, ref: str, which: str
) -> None:
    body = {"instances": [test_images[0].tolist()]}
    response = client.post("/v1/predict", params={"model": ref}, json=body)
    check_response(response, 1, getattr(trained, which))
    assert response.headers["x-model-version"] == str(getattr(trained, which))


@pytest.mark.parametrize("ref", ["99", "no-such-model", "fmnist-classifier@nope"])
def test_unknown_model_is_a_404_problem(
    client: httpx.Client, test_images: np.ndarray, ref: str
) -> None:
    response = client.post(
        "/v1/predict", params={"model": ref}, json={"instances": [test_images[0].tolist()]}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) == PROBLEM_KEYS
    assert body["type"] == "urn:fmnist:problem:model-not-found"
    assert ref.rpartition("@")[2] in body["detail"]


def test_models_lists_versions_and_the_served_one(client: httpx.Client, trained: Trained) -> None:
    client.post("/v1/predict?model=2", json={"instances": [[0] * 784]})
    response = client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "registered_model",
        "default_ref",
        "served",
        "photo_model",
        "loaded",
        "versions",
    }
    assert body["registered_model"] == "fmnist-classifier"
    assert body["default_ref"] == "champion"
    assert body["served"]["version"] == trained.first
    assert {"name", "version", "loaded_at", "temperature", "energy_threshold"} <= set(
        body["served"]
    )
    versions = {v["version"]: v for v in body["versions"]}
    assert set(versions) >= {trained.first, trained.second}
    assert "champion" in versions[trained.first]["aliases"]
    assert "challenger" in versions[trained.second]["aliases"]
    assert versions[trained.first]["served"] and versions[trained.first]["loaded"]
    assert versions[trained.second]["loaded"] and not versions[trained.second]["served"]
    assert {m["version"] for m in body["loaded"]} >= {trained.first, trained.second}


def test_health_and_readiness(client: httpx.Client, trained: Trained) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "model_name": "fmnist-classifier",
        "model_version": trained.first,
    }


def samples_of(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus exposition text as sample name -> [(labels, value)]."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_metrics_count_requests_predictions_and_the_model(
    client: httpx.Client, test_images: np.ndarray, trained: Trained
) -> None:
    client.post("/v1/predict", json={"instances": [test_images[0].tolist()]})
    client.post("/v1/predict", content=b"x", headers={"content-type": "text/plain"})
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    found = samples_of(response.text)
    requests = {
        (labels["route"], labels["method"], labels["status"]): value
        for labels, value in found["fmnist_http_requests_total"]
    }
    assert requests[("/v1/predict", "POST", "200")] >= 1
    assert requests[("/v1/predict", "POST", "415")] >= 1
    latency = [labels for labels, _ in found["fmnist_http_request_duration_seconds_bucket"]]
    assert {"route": "/v1/predict", "method": "POST", "status": "200", "le": "+Inf"} in latency
    predicted = found["fmnist_predictions_total"]
    assert sum(value for labels, value in predicted if labels["model_version"] == "1") >= 1
    assert found["fmnist_prediction_confidence_count"][0][1] >= 1
    assert found["fmnist_model_version"] == [({"model": "fmnist-classifier"}, trained.first)]
    assert found["fmnist_model_info"] == [
        ({"name": "fmnist-classifier", "version": str(trained.first)}, 1.0)
    ]
    assert found["fmnist_inference_batch_size_count"][0][1] >= 1


def test_request_id_is_echoed_or_generated(client: httpx.Client) -> None:
    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    unsafe = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"
    problem = client.post("/v1/predict", headers={"X-Request-ID": "req-7"}, content=b"")
    assert problem.json()["request_id"] == "req-7"


def test_samples_are_reproducible_test_images(client: httpx.Client) -> None:
    first = client.get("/v1/samples", params={"n": 5, "seed": 3})
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"snapshot_id", "samples"}
    assert len(body["samples"]) == 5
    for sample in body["samples"]:
        assert set(sample) == {"index", "label", "class_id", "png_b64"}
        assert sample["label"] == CLASS_NAMES[sample["class_id"]]
        image = Image.open(io.BytesIO(base64.b64decode(sample["png_b64"])))
        assert image.size == (28, 28)
    assert client.get("/v1/samples", params={"n": 5, "seed": 3}).json() == body
    assert len(client.get("/v1/samples").json()["samples"]) == 12


def test_samples_without_snapshot_is_a_404_problem(trained: Trained, tmp_path: Path) -> None:
    settings = serving_settings(trained.settings).model_copy(
        update={"lake_url": str(tmp_path / "empty-lake")}
    )
    with running(settings) as url:
        response = httpx.get(f"{url}/v1/samples", trust_env=False)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "no snapshot" in response.json()["detail"]


def test_openapi_documents_the_answers_of_the_security_and_body_layers(
    client: httpx.Client,
) -> None:
    """Found by the fuzzer: statuses the middleware answers were missing from the document."""
    paths = client.get("/openapi.json").json()["paths"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            responses = operation["responses"]
            assert "401" in responses, (method, path)  # an invalid key, on every route
            if path.startswith("/v1/") and path != "/v1/samples":
                assert {"403", "429"} <= set(responses), (method, path)
            if "requestBody" in operation:
                assert "413" in responses, (method, path)
            problem = responses["401"]["content"]["application/problem+json"]["schema"]
            assert problem == {"$ref": "#/components/schemas/Problem"}
    for path, method in (("/v1/feedback", "post"), ("/v1/admin/rollout", "put")):
        assert {"400", "413"} <= set(paths[path][method]["responses"])  # malformed JSON
    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(metrics) == {"text/plain"}
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_openapi_docs_and_ui(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/v1/predict",
        "/v1/predict/batch",
        "/v1/models",
        "/v1/admin/reload",
        "/v1/samples",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in spec["paths"], path
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json", "image/*"} <= set(body)
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    ui = client.get("/")
    assert ui.status_code == 200 and ui.headers["content-type"].startswith("text/html")
