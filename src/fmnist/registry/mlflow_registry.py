"""Experiment tracking and the model registry on MLflow (the registry port's adapter).

Local mode uses a SQLite store and an artifact folder under ``home``; the cloud-agnostic and GCP
modes point ``tracking.tracking_uri`` at an MLflow server. A registered version carries the ONNX
file, the PyTorch weights, the input signature and an input example; the aliases ``champion``
and ``challenger`` name the serving model and the latest candidate. Every promotion is recorded
in the registered model's ``champion_history`` tag, so a rollback restores the previous champion
in one call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fmnist.identity import digest_file
from fmnist.platform.registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_SHA256_TAG,
    ModelVersionInfo,
    RegistryError,
    RunRecord,
)

HISTORY_TAG = "champion_history"
PIP_REQUIREMENTS = ["onnxruntime", "numpy", "fmnist"]

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "MlflowRegistry",
    "ModelVersionInfo",
    "RegistryError",
    "RunRecord",
]


def _to_record(run: Any) -> RunRecord:
    data = run.data
    return RunRecord(
        run_id=str(run.info.run_id),
        params=dict(data.params),
        metrics={k: float(v) for k, v in data.metrics.items()},
        tags=dict(data.tags),
    )


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence MLflow's and alembic's chatter (migrations, pip inference hints)."""
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


class MlflowRegistry:
    """Tracking runs and registering fmnist models in MLflow."""

    def __init__(
        self, *, tracking_uri: str, artifact_root: str | None, experiment: str, model_name: str
    ) -> None:
        """Connect to the tracking store at ``tracking_uri`` (a SQLite file is created on first
        use); runs go to ``experiment`` and registrations to registered model ``model_name``.

        Built by :mod:`fmnist.composition` only; everything else receives a registry.
        """
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
        import mlflow
        from mlflow import MlflowClient

        self._mlflow = mlflow
        self.tracking_uri = tracking_uri
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )
        self.artifact_root = artifact_root
        self.experiment_name = experiment
        self.model_name = model_name
        with _quiet():
            self.client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )

    # ----------------------------------------------------------------- tracking
    def experiment_id(self) -> str:
        """The experiment's id, creating it with the configured artifact root if needed."""
        with _quiet():
            experiment = self.client.get_experiment_by_name(self.experiment_name)
            if experiment is not None:
                return str(experiment.experiment_id)
            return str(
                self.client.create_experiment(
                    self.experiment_name, artifact_location=self.artifact_root
                )
            )

    @contextlib.contextmanager
    def start_run(self, run_name: str, tags: Mapping[str, str]) -> Iterator[str]:
        """An active MLflow run; yields its id. The run ends FAILED if the block raises."""
        mlflow = self._mlflow
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        experiment_id = self.experiment_id()
        with _quiet():
            run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags))
        try:
            yield run.info.run_id
        except BaseException:
            with _quiet():
                mlflow.end_run(status="FAILED")
            raise
        with _quiet():
            mlflow.end_run(status="FINISHED")

    @contextlib.contextmanager
    def resume_run(self, run_id: str) -> Iterator[str]:
        """Re-open a finished run to add evaluation results and the logged model."""
        mlflow = self._mlflow
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        with _quiet():
            mlflow.start_run(run_id=run_id)
        try:
            yield run_id
        finally:
            with _quiet():
                mlflow.end_run()

    @contextlib.contextmanager
    def open_run(
        self, run_name: str, tags: Mapping[str, str], parent_run_id: str | None = None
    ) -> Iterator[str]:
        """A run made through the client, not the fluent API's single active run, so several
        may be open at once (a parent and its child, or a run around a training run).

        Yields its id; it ends FINISHED, or FAILED when the block raises.
        """
        all_tags = dict(tags)
        if parent_run_id is not None:
            all_tags["mlflow.parentRunId"] = parent_run_id
        with _quiet():
            run = self.client.create_run(self.experiment_id(), tags=all_tags, run_name=run_name)
        run_id = str(run.info.run_id)
        try:
            yield run_id
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, "FINISHED")

    def run_record(self, run_id: str) -> RunRecord:
        """Parameters, metrics and tags of one run."""
        with _quiet():
            return _to_record(self.client.get_run(run_id))

    def find_runs(self, tags: Mapping[str, str], max_results: int = 20) -> list[RunRecord]:
        """Finished runs of this experiment carrying every tag in ``tags``, newest first."""
        clauses = [f"tags.`{key}` = '{_quote(value)}'" for key, value in tags.items()]
        clauses.append("attributes.status = 'FINISHED'")
        with _quiet():
            runs = self.client.search_runs(
                [self.experiment_id()],
                filter_string=" and ".join(clauses),
                order_by=["attributes.start_time DESC"],
                max_results=max_results,
            )
        return [_to_record(run) for run in runs]

    def set_run_tag(self, run_id: str, key: str, value: str) -> None:
        """Set one tag on a run."""
        with _quiet():
            self.client.set_tag(run_id, key, value)

    def list_run_artifacts(self, run_id: str, path: str) -> list[str]:
        """File names directly under a run's artifact folder ``path``."""
        with _quiet():
            return [Path(e.path).name for e in self.client.list_artifacts(run_id, path)]

    def run_params(self, run_id: str) -> dict[str, str]:
        """The parameters of a run."""
        with _quiet():
            return dict(self.client.get_run(run_id).data.params)

    def run_tags(self, run_id: str) -> dict[str, str]:
        """The tags of a run."""
        with _quiet():
            return dict(self.client.get_run(run_id).data.tags)

    def latest_run(self, step: str = "train") -> str:
        """The newest finished run of a lifecycle step (tag ``fmnist.step``)."""
        with _quiet():
            runs = self.client.search_runs(
                [self.experiment_id()],
                filter_string=f"tags.`fmnist.step` = '{step}' and attributes.status = 'FINISHED'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
        if not runs:
            raise RegistryError(f"no finished '{step}' run in experiment {self.experiment_name!r}")
        return str(runs[0].info.run_id)

    def download_run_artifacts(self, run_id: str, path: str, destination: Path) -> Path:
        """Download a run's artifact folder ``path`` into ``destination``."""
        with _quiet():
            local = self._mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=path,
                dst_path=str(destination),
                tracking_uri=self.tracking_uri,
            )
        return Path(local)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log flat parameters (values are stringified by MLflow)."""
        from mlflow.entities import Param

        batch = [Param(k, str(v)[:6000]) for k, v in params.items()]
        with _quiet():
            self.client.log_batch(run_id, params=batch)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log metrics at ``step``."""
        from mlflow.entities import Metric

        now = int(datetime.now(UTC).timestamp() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        with _quiet():
            self.client.log_batch(run_id, metrics=batch)

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        """Upload a file to the run's artifacts."""
        with _quiet():
            self.client.log_artifact(run_id, str(path), artifact_path)

    def run_url(self, run_id: str) -> str:
        """Where to look at a run: the MLflow UI path for a server, else the store."""
        experiment_id = self.experiment_id()
        return f"{self.tracking_uri} (experiment {experiment_id}, run {run_id})"

    # ----------------------------------------------------------------- registry
    def log_and_register(
        self,
        run_id: str,
        onnx_path: Path,
        weights_path: Path,
        input_example: npt.NDArray[np.uint8],
        tags: Mapping[str, str],
        description: str = "",
        extra_artifacts: Mapping[str, Path] | None = None,
    ) -> ModelVersionInfo:
        """Log the model (ONNX + weights + signature + example) and register a new version.

        The version is created with all its tags in one call, so a crash never leaves a
        version without its gate decision; the tags include the SHA-256 of ``onnx_path``
        (:data:`~fmnist.platform.registry.MODEL_SHA256_TAG`), which serving verifies.
        """
        from mlflow.models import infer_signature

        from fmnist.registry.onnx_runtime import OnnxClassifier
        from fmnist.registry.pyfunc import OnnxPyfuncModel

        example = input_example.astype(np.float32)
        probabilities = OnnxClassifier(onnx_path).predict_proba(example[:, None] / 255.0)
        signature = infer_signature(example, probabilities)
        mlflow = self._mlflow
        with _quiet():
            if mlflow.active_run() is None or mlflow.active_run().info.run_id != run_id:
                raise RegistryError(f"run {run_id} is not the active run")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=OnnxPyfuncModel(),
                artifacts={
                    "onnx": str(onnx_path),
                    "weights": str(weights_path),
                    **{k: str(v) for k, v in (extra_artifacts or {}).items()},
                },
                signature=signature,
                input_example=example,
                pip_requirements=PIP_REQUIREMENTS,
            )
            if not self._registered_model_exists():
                self.client.create_registered_model(
                    self.model_name, description="Fashion-MNIST garment classifier"
                )
            version = self.client.create_model_version(
                self.model_name,
                source=info.model_uri,
                run_id=run_id,
                tags={**tags, MODEL_SHA256_TAG: digest_file(onnx_path)},
                description=description,
                model_id=info.model_id,
            )
        return self.get(str(version.version))

    def _registered_model_exists(self) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            return False
        return True

    def _to_info(self, version: Any, aliases: Mapping[str, str] | None = None) -> ModelVersionInfo:
        created = datetime.fromtimestamp(version.creation_timestamp / 1000, UTC)
        names = list(getattr(version, "aliases", []) or [])
        if aliases is not None:  # search results do not carry aliases: take the model's map
            names = [a for a, v in aliases.items() if str(v) == str(version.version)]
        return ModelVersionInfo(
            name=version.name,
            version=int(version.version),
            aliases=tuple(sorted(names)),
            tags=dict(version.tags or {}),
            run_id=version.run_id,
            source=version.source,
            created_at=created.isoformat(timespec="seconds"),
        )

    def list_versions(self) -> list[ModelVersionInfo]:
        """All versions of the registered model, newest first."""
        if not self._registered_model_exists():
            return []
        with _quiet():
            versions = self.client.search_model_versions(f"name='{self.model_name}'")
            aliases = dict(self.client.get_registered_model(self.model_name).aliases or {})
        infos = [self._to_info(v, aliases) for v in versions]
        return sorted(infos, key=lambda v: v.version, reverse=True)

    def get(self, ref: str) -> ModelVersionInfo:
        """A version by number or alias (``champion``, ``challenger``, ``3``)."""
        from mlflow.exceptions import MlflowException

        try:
            with _quiet():
                if ref.isdigit():
                    version = self.client.get_model_version(self.model_name, ref)
                else:
                    version = self.client.get_model_version_by_alias(self.model_name, ref)
        except MlflowException as exc:
            raise RegistryError(
                f"model {self.model_name!r} has no version or alias {ref!r}"
            ) from exc
        return self._to_info(version)

    def _history(self) -> list[int]:
        model = self.client.get_registered_model(self.model_name)
        return [int(v) for v in json.loads(model.tags.get(HISTORY_TAG, "[]"))]

    def set_alias(self, alias: str, version: int) -> None:
        """Point ``alias`` at ``version``."""
        with _quiet():
            self.client.set_registered_model_alias(self.model_name, alias, str(version))

    def promote(self, ref: str, reason: str = "") -> ModelVersionInfo:
        """Make version ``ref`` the champion and record it in the champion history."""
        target = self.get(ref)
        with _quiet():
            history = self._history()
            if history and history[-1] == target.version:
                return target
            self.client.set_model_version_tag(
                self.model_name,
                str(target.version),
                "promoted_at",
                datetime.now(UTC).isoformat(timespec="seconds"),
            )
            if reason:
                self.client.set_model_version_tag(
                    self.model_name, str(target.version), "promotion_reason", reason
                )
            self.client.set_registered_model_tag(
                self.model_name, HISTORY_TAG, json.dumps([*history, target.version])
            )
            self.client.set_registered_model_alias(self.model_name, CHAMPION, str(target.version))
            if CHALLENGER in target.aliases:
                self.client.delete_registered_model_alias(self.model_name, CHALLENGER)
        return self.get(str(target.version))

    def rollback(self) -> tuple[ModelVersionInfo, ModelVersionInfo]:
        """Restore the previous champion; returns (demoted, restored)."""
        with _quiet():
            history = self._history() if self._registered_model_exists() else []
            if len(history) < 2:
                raise RegistryError(
                    "nothing to roll back to: the champion history has "
                    f"{len(history)} entr{'y' if len(history) == 1 else 'ies'}"
                )
            demoted, restored = history[-1], history[-2]
            self.client.set_registered_model_alias(self.model_name, CHAMPION, str(restored))
            self.client.set_registered_model_tag(
                self.model_name, HISTORY_TAG, json.dumps(history[:-1])
            )
            self.client.set_model_version_tag(
                self.model_name,
                str(demoted),
                "rolled_back_at",
                datetime.now(UTC).isoformat(timespec="seconds"),
            )
        return self.get(str(demoted)), self.get(str(restored))

    def download(self, ref: str, destination: Path) -> Path:
        """Download a version's model folder; returns the folder holding ``model.onnx``."""
        info = self.get(ref)
        with _quiet():
            # Resolve the storage location with this client: a models:/ URI would be resolved
            # in MLflow's process-global registry, which is not ours in a fresh process.
            location = self.client.get_model_version_download_uri(
                self.model_name, str(info.version)
            )
            local = self._mlflow.artifacts.download_artifacts(
                artifact_uri=location,
                dst_path=str(destination),
                tracking_uri=self.tracking_uri,
            )
        root = Path(local)
        onnx_files = sorted(root.rglob("*.onnx"))
        if not onnx_files:
            raise RegistryError(f"version {info.version} has no ONNX file under {root}")
        return onnx_files[0].parent
