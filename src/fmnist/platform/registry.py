"""The tracking-and-registry port: runs with parameters, metrics and artifacts, and registered
model versions with aliases (``champion``, ``challenger``), promotion and rollback.

Adapters: MLflow (:class:`fmnist.registry.mlflow_registry.MlflowRegistry`) on a local SQLite store
(``local``) or an MLflow server (``agnostic``, and ``gcp`` with MLflow on Cloud SQL + GCS);
the Vertex AI Model Registry (``gcp``) mirrors registered versions. Only
:mod:`fmnist.composition` builds one; everything else receives it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fmnist.errors import FmnistError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

CHAMPION = "champion"
"""The alias of the version that serves traffic."""
CHALLENGER = "challenger"
"""The alias of the newest candidate."""
MODEL_SHA256_TAG = "onnx_sha256"
"""The version tag holding the SHA-256 of its ``model.onnx`` as registered; the model store
refuses a downloaded file whose digest differs."""


class RegistryError(FmnistError):
    """A registry operation could not be done (unknown version, nothing to roll back to)."""


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered version as the CLI and the server see it."""

    name: str
    version: int
    aliases: tuple[str, ...]
    tags: Mapping[str, str]
    run_id: str | None
    source: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "tags": dict(self.tags),
            "run_id": self.run_id,
            "source": self.source,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class RunRecord:
    """One tracked run as the lifecycle reads it back."""

    run_id: str
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]


class ModelRegistry(Protocol):
    """What the lifecycle needs from experiment tracking and the model registry."""

    model_name: str
    experiment_name: str
    tracking_uri: str

    def experiment_id(self) -> str:
        """The experiment's id (created on first use)."""
        ...

    def start_run(
        self, run_name: str, tags: Mapping[str, str]
    ) -> contextlib.AbstractContextManager[str]:
        """The active run of this process; yields its id."""
        ...

    def resume_run(self, run_id: str) -> contextlib.AbstractContextManager[str]:
        """Re-open a finished run as the active one."""
        ...

    def open_run(
        self, run_name: str, tags: Mapping[str, str], parent_run_id: str | None = None
    ) -> contextlib.AbstractContextManager[str]:
        """A run independent of the active one (several may be open); yields its id."""
        ...

    def run_params(self, run_id: str) -> dict[str, str]:
        """The parameters of a run."""
        ...

    def run_tags(self, run_id: str) -> dict[str, str]:
        """The tags of a run."""
        ...

    def run_record(self, run_id: str) -> RunRecord:
        """Parameters, metrics and tags of a run."""
        ...

    def find_runs(self, tags: Mapping[str, str], max_results: int = 20) -> list[RunRecord]:
        """Finished runs carrying every tag in ``tags``, newest first."""
        ...

    def latest_run(self, step: str = "train") -> str:
        """The newest finished run of a lifecycle step."""
        ...

    def set_run_tag(self, run_id: str, key: str, value: str) -> None:
        """Set one tag on a run."""
        ...

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log flat parameters."""
        ...

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log metrics at ``step``."""
        ...

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        """Upload a file to the run's artifacts."""
        ...

    def list_run_artifacts(self, run_id: str, path: str) -> list[str]:
        """File names directly under a run's artifact folder ``path``."""
        ...

    def download_run_artifacts(self, run_id: str, path: str, destination: Path) -> Path:
        """Download a run's artifact folder into ``destination``."""
        ...

    def run_url(self, run_id: str) -> str:
        """Where a person looks at the run."""
        ...

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
        """Log the model with the run and register a new version with its tags."""
        ...

    def list_versions(self) -> list[ModelVersionInfo]:
        """Every registered version, newest first."""
        ...

    def get(self, ref: str) -> ModelVersionInfo:
        """The version named by a number or an alias."""
        ...

    def set_alias(self, alias: str, version: int) -> None:
        """Point ``alias`` at ``version``."""
        ...

    def promote(self, ref: str, reason: str = "") -> ModelVersionInfo:
        """Make ``ref`` the champion (recorded in the champion history)."""
        ...

    def rollback(self) -> tuple[ModelVersionInfo, ModelVersionInfo]:
        """Restore the previous champion; returns (demoted, restored)."""
        ...

    def download(self, ref: str, destination: Path) -> Path:
        """Download a version's model folder into ``destination``."""
        ...


class RegistryFactory(Protocol):
    """Builds the registry bound to one registered model and one experiment.

    ``None`` means the configured ones (``tracking.registered_model``, ``tracking.experiment``).
    """

    def __call__(
        self, model_name: str | None = None, *, experiment: str | None = None
    ) -> ModelRegistry:
        """The registry for ``model_name`` in ``experiment``."""
        ...
