"""Vertex AI online and batch prediction: upload an export, deploy it, run a batch job.

The model Vertex AI serves is the API image itself, run as a custom prediction container on a
model export (``fmnist models export``, copied to ``gs://``): Vertex AI passes the export's URI
as ``AIP_STORAGE_URI`` and the routes below as ``AIP_PREDICT_ROUTE``/``AIP_HEALTH_ROUTE``,
which the server honours (:mod:`fmnist.serving.platform_env`). Each function turns the settings
into the keyword arguments of one SDK call (``*_arguments``, printed by ``--dry-run``) and a
second one makes the call, so the arguments are tested against autospecs of the real SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fmnist.errors import ConfigError

if TYPE_CHECKING:
    from fmnist.config import GcpSettings

PREDICT_ROUTE = "/v1/vertex/predict"
"""Where the container answers ``{"instances": [...]}`` (Vertex AI sets AIP_PREDICT_ROUTE)."""
HEALTH_ROUTE = "/readyz"
CONTAINER_PORT = 8080
CONTAINER_ENV = {
    # The endpoint authenticates callers with IAM; the container's own keys would refuse them.
    "FMNIST_SECURITY__AUTH": "off",
    "FMNIST_SERVING__RELOAD_INTERVAL_S": "0",  # a deployed version never changes
}


@dataclass(frozen=True)
class Deployment:
    """How one model version is served on an endpoint."""

    machine_type: str = "n1-standard-2"
    min_replicas: int = 1
    max_replicas: int = 2
    traffic_percentage: int = 100
    """Share of the endpoint's traffic; below 100 is a canary beside the deployed versions."""

    def __post_init__(self) -> None:
        """Refuse impossible values before any call is made."""
        if not 0 <= self.traffic_percentage <= 100:
            raise ConfigError(f"traffic percentage must be 0-100, got {self.traffic_percentage}")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ConfigError("replicas need 1 <= min <= max")


def _project(gcp: GcpSettings) -> str:
    if not gcp.project:
        raise ConfigError("Vertex AI needs gcp.project")
    return gcp.project


def _gcs(uri: str, what: str) -> str:
    if not uri.startswith("gs://"):
        raise ConfigError(f"Vertex AI reads {what} from Cloud Storage only: got {uri!r}")
    return uri


def upload_arguments(
    gcp: GcpSettings, export_uri: str, image: str, *, display_name: str = "fmnist-classifier"
) -> dict[str, Any]:
    """The keyword arguments of ``aiplatform.Model.upload`` for the export at ``export_uri``."""
    return {
        "display_name": display_name,
        "artifact_uri": _gcs(export_uri, "the model export"),
        "serving_container_image_uri": image,
        "serving_container_predict_route": PREDICT_ROUTE,
        "serving_container_health_route": HEALTH_ROUTE,
        "serving_container_ports": [CONTAINER_PORT],
        "serving_container_environment_variables": dict(CONTAINER_ENV),
        "labels": dict(gcp.labels),
        "encryption_spec_key_name": gcp.kms_key,
        "project": _project(gcp),
        "location": gcp.region,
    }


def deploy_arguments(gcp: GcpSettings, deployment: Deployment) -> dict[str, Any]:
    """The keyword arguments of ``Model.deploy`` (the endpoint is passed beside them)."""
    return {
        "deployed_model_display_name": "fmnist-api",
        "machine_type": deployment.machine_type,
        "min_replica_count": deployment.min_replicas,
        "max_replica_count": deployment.max_replicas,
        "traffic_percentage": deployment.traffic_percentage,
        "service_account": gcp.service_account,
        "encryption_spec_key_name": gcp.kms_key,
        "sync": True,
    }


def batch_prediction_arguments(
    gcp: GcpSettings, source: str, destination: str, deployment: Deployment
) -> dict[str, Any]:
    """The keyword arguments of ``Model.batch_predict``: JSON Lines of ``{"instances"}`` rows
    in, JSON Lines of predictions out."""
    return {
        "job_display_name": "fmnist-batch-prediction",
        "gcs_source": _gcs(source, "batch inputs"),
        "gcs_destination_prefix": _gcs(destination, "batch outputs"),
        "instances_format": "jsonl",
        "predictions_format": "jsonl",
        "machine_type": deployment.machine_type,
        "starting_replica_count": deployment.min_replicas,
        "max_replica_count": deployment.max_replicas,
        "service_account": gcp.service_account,
        "encryption_spec_key_name": gcp.kms_key,
        "labels": dict(gcp.labels),
        "sync": False,
    }


def upload(gcp: GcpSettings, export_uri: str, image: str) -> str:
    """Upload the export as a Vertex AI model; its resource name."""
    from google.cloud import aiplatform

    model = aiplatform.Model.upload(**upload_arguments(gcp, export_uri, image))
    return str(model.resource_name)


def deploy(gcp: GcpSettings, model_name: str, endpoint_name: str, deployment: Deployment) -> str:
    """Deploy ``model_name`` to ``endpoint_name`` with its share of traffic (the rest stays on
    the versions deployed there: a canary below 100); the endpoint's resource name."""
    from google.cloud import aiplatform

    project = _project(gcp)
    model = aiplatform.Model(model_name, project=project, location=gcp.region)
    endpoint = aiplatform.Endpoint(endpoint_name, project=project, location=gcp.region)
    model.deploy(endpoint=endpoint, **deploy_arguments(gcp, deployment))
    return str(endpoint.resource_name)


def batch_predict(
    gcp: GcpSettings, model_name: str, source: str, destination: str, deployment: Deployment
) -> str:
    """Start a batch prediction job of ``model_name``; its resource name."""
    from google.cloud import aiplatform

    model = aiplatform.Model(model_name, project=_project(gcp), location=gcp.region)
    job = model.batch_predict(**batch_prediction_arguments(gcp, source, destination, deployment))
    return str(job.resource_name)
