"""The ``gcp`` profile end to end on the emulators: the pipeline keeps its data and artifacts on
GCS, the API serves the champion, predictions and feedback travel as Pub/Sub events into
BigQuery, and the KPI query reads them back.

Only the model registry stays MLflow (on a SQLite store, its artifacts on GCS): no emulator
exists for the Vertex AI Model Registry, whose calls are checked against autospecs of the SDK
(tests/unit/test_vertex_endpoints.py). Orchestration runs in-process for the same reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs
from typer.testing import CliRunner

from app_server import running
from fmnist.cli import app
from fmnist.composition import choose_adapters
from fmnist.config import load_settings
from tracking_home import LOW_GATES

from .emulators import BigQueryEmulator

pytestmark = [pytest.mark.gcp, pytest.mark.network]


@pytest.fixture
def gcp_env(
    gcs_emulator: str,
    pubsub_emulator: str,
    bigquery_emulator: BigQueryEmulator,
    tmp_path: Path,
    fmnist_data_dir: Path,
    offline_env: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """The ``gcp`` profile pointed at the three emulators; the bucket's name."""
    offline_env(fmnist_data_dir)
    project = bigquery_emulator.project
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pubsub_emulator)
    bucket = f"fmnist-{uuid.uuid4().hex[:12]}"
    gcs.Client(project=project, credentials=AnonymousCredentials()).create_bucket(bucket)
    dataset = f"fmnist_{uuid.uuid4().hex[:8]}"
    bigquery_emulator.create_dataset(dataset)
    env = {
        **LOW_GATES,
        "FMNIST_HOME": str(tmp_path / "home"),
        "FMNIST_PROFILE": "gcp",
        "FMNIST_GCP__PROJECT": project,
        "FMNIST_GCP__BUCKET": bucket,
        "FMNIST_GCP__BIGQUERY_DATASET": dataset,
        "FMNIST_GCP__BIGQUERY_EMULATOR_URL": bigquery_emulator.rest_url,
        "FMNIST_GCP__PUBSUB_TOPIC_PREFIX": f"fmnist-{uuid.uuid4().hex[:6]}",
        "FMNIST_PORTS__REGISTRY": "mlflow",
        "FMNIST_PORTS__ORCHESTRATION": "local",
        "FMNIST_TRACKING__ARTIFACT_ROOT": f"gs://{bucket}/mlflow",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return bucket


def test_the_gcp_profile_runs_on_gcs_pubsub_and_bigquery(gcp_env: str) -> None:
    bucket = gcp_env
    settings = load_settings().settings
    adapters = {c.port: c.adapter for c in choose_adapters(settings)}
    assert adapters == {
        "storage": "gcs",
        "registry": "mlflow",
        "analytics": "bigquery",
        "events": "pubsub",
        "orchestration": "local",
    }
    runner = CliRunner()

    result = runner.invoke(app, ["pipeline", "run", "--preset", "tiny", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "registered version 1" in result.output
    names = [
        blob.name for blob in gcs.Client(credentials=AnonymousCredentials()).list_blobs(bucket)
    ]
    assert any(n.startswith("lake/snapshots/") and n.endswith("manifest.json") for n in names)
    assert any(n.startswith("mlflow/") and n.endswith("model.onnx") for n in names), names

    sent = 12
    with running(settings) as url, httpx.Client(base_url=url, trust_env=False) as http:
        instances = np.zeros((sent, 28, 28), dtype=np.uint8).tolist()
        answer = http.post("/v1/predict/batch", json={"instances": instances})
        assert answer.status_code == 200, answer.text
        ids = [p["request_id"] for p in answer.json()["predictions"]]
        for request_id in ids[:5]:
            stored = http.post("/v1/feedback", json={"request_id": request_id, "label": 0})
            assert stored.status_code == 201, stored.text

    result = runner.invoke(app, ["events", "consume", "--once", "--relay"])
    assert result.exit_code == 0, result.output

    result = runner.invoke(app, ["analytics", "kpis", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert sum(int(row["predictions"]) for row in rows) == sent
    assert sum(int(row["labelled"]) for row in rows) == 5
