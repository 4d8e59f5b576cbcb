"""Every served prediction is logged durably; feedback attaches the true label (real HTTP)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from app_server import wait_until_ready
from fmnist.cli import app
from fmnist.composition import build_services
from fmnist.identity import digest_text
from fmnist.monitoring.client_ids import client_id_hasher

from .conftest import Trained

FMNIST = Path(sys.executable).parent / "fmnist"


def instance(value: int) -> list[int]:
    return [value % 256] * 784


def logged(trained: Trained, request_id: str):
    return build_services(trained.settings).prediction_log.get(request_id)


@pytest.mark.network
def test_a_prediction_is_logged_with_its_request_id(client: httpx.Client, trained: Trained) -> None:
    rid = f"test-{uuid.uuid4().hex}"
    response = client.post(
        "/v1/predict",
        json={"instances": [instance(17)]},
        headers={"X-Request-ID": rid, "X-Client-ID": "client-a"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == rid
    body = response.json()
    assert body["request_id"] == rid
    prediction = body["predictions"][0]
    assert prediction["request_id"] == rid
    record = logged(trained, rid)
    assert record is not None
    assert record.model_version == prediction["model_version"]
    assert record.predicted_class == prediction["label"]
    assert record.input_kind == "json"
    assert record.model_alias == "champion"
    assert np.frombuffer(record.pixels, np.uint8).reshape(28, 28).tolist() == [[17] * 28] * 28
    assert list(record.probabilities) == pytest.approx(prediction["probabilities"], abs=1e-6)
    hasher = client_id_hasher(trained.settings)  # salted and keyed, never as sent
    assert record.client_id == hasher("client-a") != digest_text("client-a", length=32)
    assert record.latency_ms > 0


@pytest.mark.network
def test_each_instance_of_a_batch_has_its_own_logged_id(
    client: httpx.Client, trained: Trained
) -> None:
    rid = f"batch-{uuid.uuid4().hex}"
    response = client.post(
        "/v1/predict/batch",
        json={"instances": [instance(i) for i in range(3)]},
        headers={"X-Request-ID": rid},
    )
    assert response.status_code == 200
    ids = [p["request_id"] for p in response.json()["predictions"]]
    assert ids == [f"{rid}:0", f"{rid}:1", f"{rid}:2"]
    assert all(logged(trained, i) is not None for i in ids)


@pytest.mark.network
def test_an_upload_is_logged_as_an_upload(
    client: httpx.Client, trained: Trained, jpeg_bytes: bytes
) -> None:
    response = client.post("/v1/predict", files={"file": ("pants.jpg", jpeg_bytes, "image/jpeg")})
    assert response.status_code == 200
    record = logged(trained, response.json()["predictions"][0]["request_id"])
    assert record is not None
    assert record.input_kind == "photo"
    assert record.photo_flags["mode"] == "photo"


@pytest.mark.network
def test_bad_input_is_counted_not_logged(client: httpx.Client, trained: Trained) -> None:
    rid = f"bad-{uuid.uuid4().hex}"
    response = client.post(
        "/v1/predict", json={"instances": [[1, 2, 3]]}, headers={"X-Request-ID": rid}
    )
    assert response.status_code == 400  # a malformed pixel instance
    assert logged(trained, rid) is None
    kind = response.json()["type"].rsplit(":", 1)[-1]
    metrics = client.get("/metrics").text
    assert f'fmnist_invalid_inputs_total{{kind="{kind}",route="/v1/predict"}}' in metrics


@pytest.mark.network
def test_feedback_contract(client: httpx.Client) -> None:
    rid = client.post("/v1/predict", json={"instances": [instance(3)]}).json()["request_id"]
    first = client.post("/v1/feedback", json={"request_id": rid, "label": 4})
    assert first.status_code == 201, first.text
    assert first.json() == {"request_id": rid, "label": 4, "unknown": False, "status": "created"}
    again = client.post("/v1/feedback", json={"request_id": rid, "label": 4})
    assert (again.status_code, again.json()["status"]) == (200, "unchanged")
    conflict = client.post("/v1/feedback", json={"request_id": rid, "label": 5})
    assert conflict.status_code == 409
    assert conflict.headers["content-type"].startswith("application/problem+json")
    missing = client.post("/v1/feedback", json={"request_id": "no-such-request", "label": 1})
    assert missing.status_code == 404
    for bad in (
        {"request_id": rid, "label": 10},
        {"request_id": rid, "label": -1},
        {"request_id": rid},
        {"request_id": rid, "label": 2, "unknown": True},
        {"label": 2},
        {"request_id": "bad id with spaces", "label": 2},
    ):
        response = client.post("/v1/feedback", json=bad)
        assert response.status_code == 422, (bad, response.text)
    out_of_scope = client.post("/v1/predict", json={"instances": [instance(9)]}).json()
    unknown = client.post(
        "/v1/feedback", json={"request_id": out_of_scope["request_id"], "unknown": True}
    )
    assert unknown.status_code == 201
    metrics = client.get("/metrics").text
    assert "fmnist_live_accuracy{" in metrics
    assert 'fmnist_feedback_total{outcome="conflict"}' in metrics


@pytest.mark.network
def test_acknowledged_predictions_survive_kill_9_of_the_server(
    trained: Trained, tmp_path: Path
) -> None:
    """600 predictions from 4 concurrent clients; SIGKILL of the whole server process group
    right after the last 200; `fmnist monitor export` lists every acknowledged request id."""
    if not FMNIST.is_file():
        pytest.fail(f"console script not installed at {FMNIST}")
    home = tmp_path / "home"
    shutil.copytree(trained.settings.home / "mlflow", home / "mlflow")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FMNIST_", "MLFLOW_"))}
    env["FMNIST_HOME"] = str(home)
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [str(FMNIST), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        stdout=log,
        stderr=log,
        env=env,
        cwd=tmp_path,
        start_new_session=True,  # its own process group: killed whole below
    )
    acknowledged: list[str] = []
    lock = threading.Lock()
    failures: list[str] = []
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, trust_env=False) as http:
            wait_until_ready(http, proc, Path(log.name))

        def client(worker: int) -> None:
            with httpx.Client(base_url=base, trust_env=False, timeout=30) as http:
                for i in range(150):
                    rid = f"durable-{worker}-{i}"
                    response = http.post(
                        "/v1/predict",
                        json={"instances": [instance(i)]},
                        headers={"X-Request-ID": rid},
                    )
                    if response.status_code != 200:
                        failures.append(f"{rid}: {response.status_code}")
                        return
                    with lock:
                        acknowledged.append(rid)

        threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert failures == []
    assert len(acknowledged) == 600
    env_home = {"FMNIST_HOME": str(home)}
    result = CliRunner().invoke(app, ["monitor", "export", "--format", "jsonl"], env=env_home)
    assert result.exit_code == 0, result.output
    exported = {json.loads(line)["request_id"] for line in result.stdout.splitlines() if line}
    assert set(acknowledged) <= exported
