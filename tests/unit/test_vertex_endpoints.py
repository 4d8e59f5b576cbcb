"""Vertex AI model upload, endpoint deployment and batch prediction, against autospecs of the
real ``google-cloud-aiplatform`` classes (a wrong argument name fails), and the CLI's dry run."""

from __future__ import annotations

import json
from unittest.mock import create_autospec

import pytest
from google.cloud import aiplatform
from typer.testing import CliRunner

from fmnist.cli import app
from fmnist.config import GcpSettings
from fmnist.errors import ConfigError
from fmnist.registry import vertex_endpoints as vertex

GCP = GcpSettings(
    project="fmnist-prod",
    region="europe-west4",
    service_account="serving@fmnist-prod.iam.gserviceaccount.com",
    kms_key="projects/fmnist-prod/locations/europe-west4/keyRings/fmnist/cryptoKeys/vertex",
    labels={"system": "fmnist"},
)
IMAGE = "europe-west4-docker.pkg.dev/fmnist-prod/fmnist/api:abc123"
EXPORT = "gs://fmnist-prod-artifacts/exports/7"


def test_upload_makes_the_container_contract_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    model = create_autospec(aiplatform.Model, instance=True)
    model.resource_name = "projects/1/locations/europe-west4/models/9"
    upload = create_autospec(aiplatform.Model.upload, return_value=model)
    monkeypatch.setattr(aiplatform.Model, "upload", upload)

    assert vertex.upload(GCP, EXPORT, IMAGE) == model.resource_name

    arguments = upload.call_args.kwargs
    assert arguments["artifact_uri"] == EXPORT  # becomes AIP_STORAGE_URI in the container
    assert arguments["serving_container_image_uri"] == IMAGE
    assert arguments["serving_container_predict_route"] == vertex.PREDICT_ROUTE
    assert arguments["serving_container_health_route"] == "/readyz"
    assert arguments["serving_container_ports"] == [8080]
    assert arguments["serving_container_environment_variables"]["FMNIST_SECURITY__AUTH"] == "off"
    assert arguments["encryption_spec_key_name"] == GCP.kms_key
    assert (arguments["project"], arguments["location"]) == ("fmnist-prod", "europe-west4")


def test_deploy_sends_a_canary_share(monkeypatch: pytest.MonkeyPatch) -> None:
    model = create_autospec(aiplatform.Model, instance=True)
    endpoint = create_autospec(aiplatform.Endpoint, instance=True)
    endpoint.resource_name = "projects/1/locations/europe-west4/endpoints/5"
    monkeypatch.setattr(aiplatform, "Model", create_autospec(aiplatform.Model, return_value=model))
    monkeypatch.setattr(
        aiplatform, "Endpoint", create_autospec(aiplatform.Endpoint, return_value=endpoint)
    )
    canary = vertex.Deployment(min_replicas=1, max_replicas=3, traffic_percentage=10)

    assert vertex.deploy(GCP, "9", "5", canary) == endpoint.resource_name

    aiplatform.Model.assert_called_once_with("9", project="fmnist-prod", location="europe-west4")
    model.deploy.assert_called_once()
    arguments = model.deploy.call_args.kwargs
    assert arguments["endpoint"] is endpoint
    assert arguments["traffic_percentage"] == 10  # 90% stays on the deployed versions
    assert (arguments["min_replica_count"], arguments["max_replica_count"]) == (1, 3)
    assert arguments["service_account"] == GCP.service_account


def test_batch_prediction_reads_and_writes_json_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    model = create_autospec(aiplatform.Model, instance=True)
    job = create_autospec(aiplatform.BatchPredictionJob, instance=True)
    job.resource_name = "projects/1/locations/europe-west4/batchPredictionJobs/3"
    model.batch_predict.return_value = job
    monkeypatch.setattr(aiplatform, "Model", create_autospec(aiplatform.Model, return_value=model))

    name = vertex.batch_predict(
        GCP, "9", "gs://in/instances.jsonl", "gs://out/predictions", vertex.Deployment()
    )

    assert name == job.resource_name
    arguments = model.batch_predict.call_args.kwargs
    assert arguments["instances_format"] == arguments["predictions_format"] == "jsonl"
    assert arguments["gcs_destination_prefix"] == "gs://out/predictions"
    assert arguments["sync"] is False


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: vertex.upload_arguments(GCP, "/local/export", IMAGE), "Cloud Storage only"),
        (lambda: vertex.upload_arguments(GcpSettings(), EXPORT, IMAGE), "needs gcp.project"),
        (lambda: vertex.Deployment(traffic_percentage=101), "traffic percentage must be"),
        (lambda: vertex.Deployment(min_replicas=3, max_replicas=2), "min <= max"),
    ],
)
def test_bad_arguments_are_refused_before_any_call(call: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()  # type: ignore[operator]


def test_cli_dry_run_prints_the_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_GCP__PROJECT", "fmnist-prod")
    result = CliRunner().invoke(
        app, ["vertex", "deploy", "9", "--endpoint", "5", "--traffic", "10", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["call"] == "aiplatform.Model.deploy"
    assert shown["arguments"]["traffic_percentage"] == 10
    assert shown["arguments"]["endpoint"] == "5"
