"""The runtime contracts of Vertex AI custom prediction containers and of Cloud Run, checked by
starting the real entry point (``python -m fmnist serve``) with the platforms' variables
(``make test-gcp``; the mapping and trace parsing run in the main suite)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from app_server import GRACEFUL, start_serve, stop_serve, wait_until_ready
from fmnist.config import load_settings
from fmnist.monitoring.prediction_log import open_prediction_log
from fmnist.serving.cloud_logging import parse_trace
from fmnist.serving.platform_env import platform_overrides
from helpers import closed_port
from synthetic_images import encode, garment

pytestmark = pytest.mark.network

ENDPOINT = "/v1/endpoints/4242/deployedModels/77"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_platform_variables_map_to_serving_settings() -> None:
    assert platform_overrides({}) == {}
    vertex = platform_overrides(
        {"AIP_HTTP_PORT": "8080", "AIP_HEALTH_ROUTE": ENDPOINT, "AIP_PREDICT_ROUTE": ENDPOINT}
    )
    assert vertex == {
        "port": 8080,
        "host": "0.0.0.0",
        "platform_health_route": ENDPOINT,
        "platform_predict_route": ENDPOINT,
        "log_format": "json",
    }
    cloud_run = platform_overrides({"PORT": "9000", "K_SERVICE": "fmnist-api"})
    assert cloud_run == {"port": 9000, "host": "0.0.0.0", "log_format": "json"}
    explicit = {"PORT": "9000", "K_SERVICE": "x", "FMNIST_SERVING__LOG_FORMAT": "text"}
    assert "log_format" not in platform_overrides(explicit)


@pytest.mark.parametrize(
    ("cloud", "traceparent", "expected"),
    [
        (f"{TRACE_ID}/1;o=1", None, (TRACE_ID, "0000000000000001", True)),
        (f"{TRACE_ID}/255", None, (TRACE_ID, "00000000000000ff", False)),
        (None, f"00-{TRACE_ID}-00f067aa0ba902b7-01", (TRACE_ID, "00f067aa0ba902b7", True)),
        ("garbage", f"00-{TRACE_ID}-00f067aa0ba902b7-00", (TRACE_ID, "00f067aa0ba902b7", False)),
        (None, f"00-{'0' * 32}-00f067aa0ba902b7-01", None),
        (None, None, None),
    ],
)
def test_trace_headers_are_parsed(
    cloud: str | None, traceparent: str | None, expected: tuple[str, str, bool] | None
) -> None:
    assert parse_trace(cloud, traceparent) == expected


def json_lines(log: Path) -> list[dict[str, object]]:
    """Every line of ``log`` parsed as JSON (a line that is not fails the test)."""
    entries = []
    for line in log.read_text().splitlines():
        if line.strip():
            assert line.startswith("{"), f"not a JSON log line: {line!r}"
            entries.append(json.loads(line))
    return entries


@pytest.fixture
def vertex_server(exported: Path, tmp_path: Path) -> Iterator[tuple[httpx.Client, Path, Path]]:
    """The server as Vertex AI starts it: AIP_* variables, the export at AIP_STORAGE_URI."""
    port = closed_port()
    env = {
        "AIP_HTTP_PORT": str(port),
        "AIP_HEALTH_ROUTE": ENDPOINT,
        "AIP_PREDICT_ROUTE": f"{ENDPOINT}:predict",
        "AIP_STORAGE_URI": exported.as_uri(),  # gs:// on Vertex AI: the same storage port
        "FMNIST_SECURITY__AUTH": "off",  # the endpoint authenticates callers (IAM)
    }
    home, log = tmp_path / "home", tmp_path / "serve.log"
    proc = start_serve(env, home, log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            wait_until_ready(http, proc, log)
            yield http, home, log
    finally:
        assert stop_serve(proc) == GRACEFUL


@pytest.mark.gcp  # the platforms' runtime contracts: make test-gcp
def test_vertex_ai_container_contract(
    vertex_server: tuple[httpx.Client, Path, Path], exported: Path
) -> None:
    http, home, log = vertex_server
    health = http.get(ENDPOINT)
    assert health.status_code == 200 and health.json()["status"] == "ready"
    instances = np.zeros((3, 28, 28), dtype=np.uint8).tolist()
    answer = http.post(f"{ENDPOINT}:predict", json={"instances": instances})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == ["predictions"]
    assert len(body["predictions"]) == 3
    assert {"label", "probabilities", "request_id"} <= set(body["predictions"][0])
    bad = http.post(f"{ENDPOINT}:predict", json={"instances": [[1, 2, 3]]})
    assert bad.status_code == 400  # a malformed instance, as on /v1/predict
    assert bad.headers["content-type"] == "application/problem+json"
    # The model came from AIP_STORAGE_URI, copied once under the home through the storage port.
    copies = list((home / "serving" / "exports").iterdir())
    assert len(copies) == 1 and (copies[0] / "registry.json").is_file()
    assert (copies[0] / "registry.json").read_bytes() == (exported / "registry.json").read_bytes()
    entries = json_lines(log)
    assert any(e.get("severity") == "INFO" and "serving" in str(e.get("logger")) for e in entries)


@pytest.mark.gcp  # the platforms' runtime contracts: make test-gcp
def test_a_storage_uri_without_an_export_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "model.onnx").write_bytes(b"not an export")
    env = {"AIP_HTTP_PORT": str(closed_port()), "AIP_STORAGE_URI": empty.as_uri()}
    proc = start_serve(env, tmp_path / "home", tmp_path / "serve.log")
    assert proc.wait(timeout=60) == 2
    assert "holds no model export (registry.json)" in (tmp_path / "serve.log").read_text()


CloudRun = tuple[httpx.Client, Path, subprocess.Popen[bytes]]


@pytest.fixture
def cloud_run_server(exported: Path, tmp_path: Path) -> Iterator[CloudRun]:
    """The server as Cloud Run starts it: PORT and K_SERVICE; JSON logs."""
    port = closed_port()
    env = {
        "PORT": str(port),
        "K_SERVICE": "fmnist-api",
        "GOOGLE_CLOUD_PROJECT": "fmnist-test",
        "FMNIST_SERVING__MODEL_EXPORT": str(exported),
        "FMNIST_SECURITY__AUTH": "off",
    }
    log = tmp_path / "serve.log"
    proc = start_serve(env, tmp_path / "home", log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            wait_until_ready(http, proc, log)
            yield http, log, proc
    finally:
        if proc.poll() is None:
            stop_serve(proc)


@pytest.mark.gcp  # the platforms' runtime contracts: make test-gcp
def test_cloud_run_logs_are_structured_with_the_trace(cloud_run_server: CloudRun) -> None:
    http, log, _ = cloud_run_server
    headers = {"X-Cloud-Trace-Context": f"{TRACE_ID}/1;o=1", "User-Agent": "contract-test"}
    answer = http.post("/v1/predict", json={"instances": [[0] * 784]}, headers=headers)
    assert answer.status_code == 200
    request_id = answer.headers["x-request-id"]
    http.get("/healthz")
    access = [e for e in json_lines(log) if e.get("request_id") == request_id]
    assert len(access) == 1, json_lines(log)
    entry = access[0]
    assert entry["severity"] == "INFO"
    assert entry["logging.googleapis.com/trace"] == f"projects/fmnist-test/traces/{TRACE_ID}"
    assert entry["logging.googleapis.com/spanId"] == "0000000000000001"
    assert entry["logging.googleapis.com/trace_sampled"] is True
    http_request = entry["httpRequest"]
    assert isinstance(http_request, dict)
    assert http_request["requestMethod"] == "POST" and http_request["status"] == 200
    assert http_request["requestUrl"] == "/v1/predict"
    assert http_request["userAgent"] == "contract-test"
    assert str(http_request["latency"]).endswith("s")


@pytest.mark.gcp  # the platforms' runtime contracts: make test-gcp
def test_sigterm_finishes_in_flight_requests_and_keeps_their_records(
    cloud_run_server: CloudRun, tmp_path: Path
) -> None:
    http, server_log, proc = cloud_run_server
    photos = [
        ("files", (f"p{i}.jpg", encode(garment(seed=i), "JPEG"), "image/jpeg")) for i in range(40)
    ]
    answered: list[tuple[httpx.Response, float]] = []
    go = threading.Barrier(5)

    def send() -> None:
        go.wait()
        response = http.post("/v1/predict/batch", files=photos, timeout=60)
        answered.append((response, time.monotonic()))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    go.wait()
    time.sleep(0.5)  # the four batches (about 160 photo pipelines) are being answered
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=60)
    assert proc.wait(timeout=30) == GRACEFUL
    assert [response.status_code for response, _ in answered] == [200] * 4
    assert max(done for _, done in answered) > signalled  # some were still in flight
    messages = [str(e["message"]) for e in json_lines(server_log)]
    assert "Waiting for application shutdown." in messages  # the app's shutdown ran
    os.environ["FMNIST_HOME"] = str(tmp_path / "home")
    log = open_prediction_log(load_settings().settings, create=False)
    ids = {p["request_id"] for response, _ in answered for p in response.json()["predictions"]}
    assert len(ids) == 160
    assert all(log.get(request_id) is not None for request_id in ids)
