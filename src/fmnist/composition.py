"""The composition root: the one place that turns settings into adapters.

:func:`build_services` reads ``profile`` (``local`` | ``gcp`` | ``agnostic``) and the per-port
overrides under ``ports``, decides one adapter per port and returns a
:class:`~fmnist.platform.services.Services` that builds each adapter on first use. CLI commands,
the API app, pipelines and jobs receive that object (or the port they need from it); no other
module constructs an adapter.

| port | local | gcp | agnostic |
|---|---|---|---|
| storage | local folder (fsspec) | GCS (gcsfs) | S3 (s3fs) |
| registry | MLflow on SQLite | Vertex AI Model Registry | MLflow server |
| analytics | DuckDB | BigQuery | DuckDB |
| events | local durable queue | Pub/Sub | local durable queue |
| orchestration | local runner | Vertex AI Pipelines | Kubeflow Pipelines |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fmnist.config import Profile, Settings, mask_secrets
from fmnist.errors import ConfigError
from fmnist.platform.errors import AdapterUnavailableError, require_module
from fmnist.platform.services import PORTS, AdapterChoice, PortName, Services

if TYPE_CHECKING:
    from fmnist.monitoring.feedback import FeedbackStore
    from fmnist.monitoring.prediction_log import PredictionLog
    from fmnist.platform.analytics import Analytics
    from fmnist.platform.events import EventBus
    from fmnist.platform.orchestration import Orchestrator, PipelineRun
    from fmnist.platform.registry import ModelRegistry
    from fmnist.platform.storage import Storage

PROFILE_ADAPTERS: Mapping[Profile, Mapping[PortName, str]] = {
    "local": {
        "storage": "local",
        "registry": "mlflow",
        "analytics": "duckdb",
        "events": "local-queue",
        "orchestration": "local",
    },
    "gcp": {
        "storage": "gcs",
        "registry": "vertex",
        "analytics": "bigquery",
        "events": "pubsub",
        "orchestration": "vertex-pipelines",
    },
    "agnostic": {
        "storage": "s3",
        "registry": "mlflow",
        "analytics": "duckdb",
        "events": "local-queue",
        "orchestration": "kubeflow",
    },
}
"""The adapter each profile chooses for each port, unless ``ports.<port>`` overrides it."""

_SCHEME_STORAGE = {"gs": "gcs", "gcs": "gcs", "s3": "s3", "s3a": "s3"}


def choose_adapters(settings: Settings) -> tuple[AdapterChoice, ...]:
    """One :class:`AdapterChoice` per port: the override, else what the profile implies."""
    return tuple(_choose(settings, port) for port in PORTS)


def _choose(settings: Settings, port: PortName) -> AdapterChoice:
    override = getattr(settings.ports, port)
    if override is not None:
        adapter, reason = str(override), f"override ports.{port}"
    elif port == "registry" and settings.serving.model_export is not None:
        adapter, reason = "exported", "serving.model_export set"
    elif port == "storage" and settings.lake_url:
        scheme = settings.lake_url.partition("://")[0] if "://" in settings.lake_url else "file"
        adapter = _SCHEME_STORAGE.get(scheme.lower(), "local")
        reason = f"lake_url scheme {scheme}://" if "://" in settings.lake_url else "lake_url"
    else:
        adapter = PROFILE_ADAPTERS[settings.profile][port]
        reason = f"profile {settings.profile} default"
    return AdapterChoice(port, adapter, reason, _target(settings, port, adapter))


def _target(settings: Settings, port: PortName, adapter: str) -> str:
    gcp = settings.gcp
    project = gcp.project or "<gcp.project unset>"
    if port == "storage":
        try:
            return mask_secrets(settings.resolved_lake_url)
        except ConfigError as exc:  # shown, not raised: config show must always work
            return f"<{exc}>"
    if port == "registry":
        if adapter == "exported":
            export = settings.serving.model_export
            return str(export.resolve()) if export else "<set serving.model_export>"
        if adapter == "vertex":
            return f"projects/{project}/locations/{gcp.region}/models"
        return mask_secrets(settings.resolved_tracking_uri)
    if port == "analytics":
        if adapter == "bigquery":
            return f"{project}.{gcp.bigquery_dataset}"
        return str((settings.home / "analytics" / "fmnist.duckdb").resolve())
    if port == "events":
        if adapter == "pubsub":
            return f"projects/{project}/topics/{gcp.pubsub_topic_prefix}-*"
        return str((settings.home / "events" / "events.db").resolve())
    if adapter == "vertex-pipelines":
        return f"projects/{project}/locations/{gcp.region}/pipelineJobs"
    if adapter == "kubeflow":
        return settings.agnostic.kubeflow_host or "<set agnostic.kubeflow_host>"
    if adapter == "kfp-local":
        return str((settings.home / "kfp-local").resolve())
    return "in-process"


def build_services(settings: Settings) -> Services:
    """The service graph for ``settings``; every adapter is built on first use."""
    choices = choose_adapters(settings)
    chosen = {c.port: c.adapter for c in choices}

    def storage(url: str) -> Storage:
        return _storage(url)

    def registries(
        model_name: str | None = None, *, experiment: str | None = None
    ) -> ModelRegistry:
        return _registry(settings, chosen["registry"], model_name, experiment)

    return Services(
        settings,
        choices,
        storage=storage,
        registries=registries,
        analytics=lambda: _analytics(settings, chosen["analytics"]),
        events=lambda: _events(settings, chosen["events"]),
        orchestrator=lambda services: _orchestrator(services, chosen["orchestration"]),
        prediction_log=lambda: _prediction_log(settings),
        feedback=_feedback,
    )


def _feedback(log: PredictionLog) -> FeedbackStore:
    from fmnist.monitoring.feedback import FeedbackStore

    return FeedbackStore(log)


def _prediction_log(settings: Settings) -> PredictionLog:
    from fmnist.monitoring.prediction_log import open_prediction_log

    return open_prediction_log(settings)


def _storage(url: str) -> Storage:
    from fmnist.platform.storage import FsspecStorage

    scheme = url.partition("://")[0].lower() if "://" in url else "file"
    if _SCHEME_STORAGE.get(scheme) == "gcs":
        require_module("gcsfs", adapter="GCS storage", extra="gcp")
    elif _SCHEME_STORAGE.get(scheme) == "s3":
        require_module("s3fs", adapter="S3 storage", extra="agnostic")
    return FsspecStorage(url)


def _registry(
    settings: Settings, adapter: str, model_name: str | None, experiment: str | None
) -> ModelRegistry:
    if adapter == "vertex":
        require_module("google.cloud.aiplatform", adapter="Vertex AI registry", extra="gcp")
        raise AdapterUnavailableError(
            "the Vertex AI Model Registry adapter is not available in this build: set "
            "ports.registry=mlflow and tracking.tracking_uri to an MLflow server"
        )
    if adapter == "exported":
        from fmnist.registry.exported import ExportedRegistry

        if settings.serving.model_export is None:
            raise ConfigError("ports.registry=exported needs serving.model_export (a folder)")
        return ExportedRegistry(
            settings.serving.model_export,
            model_name=model_name or settings.tracking.registered_model,
            experiment_name=experiment or settings.tracking.experiment,
        )
    from fmnist.registry.mlflow_registry import MlflowRegistry

    return MlflowRegistry(
        tracking_uri=settings.resolved_tracking_uri,
        artifact_root=settings.resolved_artifact_root,
        experiment=experiment or settings.tracking.experiment,
        model_name=model_name or settings.tracking.registered_model,
    )


def _analytics(settings: Settings, adapter: str) -> Analytics:
    if adapter == "bigquery":
        require_module("google.cloud.bigquery", adapter="BigQuery analytics", extra="gcp")
        if not settings.gcp.project:
            raise AdapterUnavailableError(
                "BigQuery analytics needs gcp.project (or set ports.analytics=duckdb)"
            )
        from fmnist.platform.bigquery_analytics import BigQueryAnalytics

        return BigQueryAnalytics(
            settings.gcp.project,
            settings.gcp.bigquery_dataset,
            location=settings.gcp.region,
            labels=settings.gcp.labels,
            emulator_url=settings.gcp.bigquery_emulator_url,
        )
    require_module("duckdb", adapter="DuckDB analytics", extra="train")
    from fmnist.platform.analytics import DuckDbAnalytics

    return DuckDbAnalytics(settings.home / "analytics" / "fmnist.duckdb")


def _events(settings: Settings, adapter: str) -> EventBus:
    if adapter == "pubsub":
        require_module("google.cloud.pubsub", adapter="Pub/Sub events", extra="gcp")
        if not settings.gcp.project:
            raise AdapterUnavailableError(
                "Pub/Sub events need gcp.project (or set ports.events=local-queue)"
            )
        from fmnist.platform.pubsub_events import PubSubEventBus
        from fmnist.streaming.consumer import SUBSCRIPTION

        # The consumer's subscription exists from the first publish on: Pub/Sub keeps only
        # messages published after a subscription was created.
        return PubSubEventBus(
            settings.gcp.project,
            settings.gcp.pubsub_topic_prefix,
            subscriptions=(SUBSCRIPTION,),
            labels=settings.gcp.labels,
            max_delivery_attempts=10,  # as infrastructure/terraform's subscriptions
        )
    from fmnist.platform.events import LocalEventQueue

    return LocalEventQueue(settings.home / "events" / "events.db")


def _orchestrator(services: Services, adapter: str) -> Orchestrator:
    settings = services.settings
    if adapter != "local":
        require_module("kfp", adapter=f"{adapter} orchestration", extra="pipelines")
        from fmnist.kubeflow.runners import KfpLocalRunner, KubeflowRunner, VertexPipelinesRunner

        if adapter == "kfp-local":
            return KfpLocalRunner(settings)
        if adapter == "vertex-pipelines":
            require_module("google.cloud.aiplatform", adapter="Vertex AI Pipelines", extra="gcp")
            return VertexPipelinesRunner(settings)
        if not settings.agnostic.kubeflow_host:
            raise AdapterUnavailableError(
                "the kubeflow orchestration adapter needs agnostic.kubeflow_host"
            )
        return KubeflowRunner(settings)
    from fmnist.platform.orchestration import LocalRunner

    def training(parameters: Mapping[str, Any]) -> PipelineRun:
        from fmnist.pipelines.local import run_training_pipeline

        return run_training_pipeline(services, parameters)

    return LocalRunner({"training": training})
