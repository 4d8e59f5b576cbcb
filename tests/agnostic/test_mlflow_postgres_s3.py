"""The ``agnostic`` profile on real servers: the data lake on an S3 API, MLflow's tracking server
with a PostgreSQL backend and its artifacts on S3; the pipeline registers a model there and the
API loads the champion from there.

PostgreSQL (a throwaway ``initdb`` cluster), moto's S3 server and ``mlflow server`` are started
here (``make test-agnostic``); nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from app_server import running
from fmnist.cli import app
from fmnist.composition import build_services, choose_adapters
from fmnist.config import load_settings
from real_servers import S3Api, create_database, mlflow_server, postgres_cluster, s3_api
from synthetic_images import encode, fashion_mnist_image
from tracking_home import LOW_GATES

pytestmark = [pytest.mark.agnostic, pytest.mark.network]


@dataclass(frozen=True)
class Stack:
    """The running servers."""

    postgres_url: str
    s3: S3Api
    mlflow_url: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """PostgreSQL, the S3 API and an MLflow server on both, for this module."""
    logs = tmp_path_factory.mktemp("agnostic-logs")
    with postgres_cluster() as postgres, s3_api(logs) as s3:
        database = create_database(postgres, "mlflow")
        # SQLAlchemy's driver named explicitly: MLflow's server would otherwise ask for psycopg 3.
        backend = database.replace("postgresql://", "postgresql+psycopg2://", 1)
        with mlflow_server(backend, s3, logs) as url:
            yield Stack(database, s3, url)


@pytest.fixture
def agnostic_env(
    stack: Stack,
    tmp_path: Path,
    fmnist_data_dir: Path,
    offline_env: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ``agnostic`` profile pointed at the stack (orchestration in-process: no cluster)."""
    offline_env(fmnist_data_dir)
    env = {
        **stack.s3.env,
        **LOW_GATES,
        "FMNIST_HOME": str(tmp_path / "home"),
        "FMNIST_PROFILE": "agnostic",
        "FMNIST_AGNOSTIC__OBJECT_STORE_URL": f"s3://{stack.s3.bucket}",
        "FMNIST_TRACKING__TRACKING_URI": stack.mlflow_url,
        "FMNIST_PORTS__ORCHESTRATION": "local",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def registered_versions(postgres_url: str) -> list[tuple[str, int]]:
    """(name, version) rows of MLflow's ``model_versions`` table, read with SQL."""
    import psycopg2

    connection = psycopg2.connect(postgres_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, version FROM model_versions ORDER BY version")
            return [(str(name), int(version)) for name, version in cursor.fetchall()]
    finally:
        connection.close()


@pytest.mark.usefixtures("agnostic_env")
def test_pipeline_registers_on_postgres_and_s3_and_the_api_serves_it(stack: Stack) -> None:
    settings = load_settings().settings
    adapters = {c.port: (c.adapter, c.target) for c in choose_adapters(settings)}
    assert adapters["storage"] == ("s3", f"s3://{stack.s3.bucket}/lake")
    assert adapters["registry"] == ("mlflow", stack.mlflow_url)

    result = CliRunner().invoke(app, ["pipeline", "run", "--preset", "tiny", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "registered version 1" in result.output

    # The snapshot is in the lake on S3, the registration in PostgreSQL, the model on S3.
    assert any(key.endswith("manifest.json") for key in stack.s3.keys("lake/snapshots/"))
    assert registered_versions(stack.postgres_url) == [("fmnist-classifier", 1)]
    artifacts = stack.s3.keys("mlflow-artifacts/")
    assert any(key.endswith("model.onnx") for key in artifacts), artifacts
    registry = build_services(settings).registry()
    assert registry.get("champion").version == 1

    # A fresh home: the API downloads the champion from the MLflow server (hence from S3).
    with running(settings) as url, httpx.Client(base_url=url, trust_env=False) as http:
        image = encode(Image.fromarray(fashion_mnist_image()), "PNG")
        answer = http.post("/v1/predict", files={"file": ("item.png", image, "image/png")})
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == 1
        card = http.get("/v1/models/fmnist-classifier/champion/card?format=md")
        assert card.status_code == 200
        assert "fmnist-classifier" in card.text
    cached = settings.home / "serving/models/fmnist-classifier/1/model.onnx"
    assert cached.is_file()
