"""Orchestration adapters that run the KFP pipelines: ``kfp.local`` on this machine, a
Kubeflow Pipelines server, or Vertex AI Pipelines (built by the composition root)."""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmnist.platform.orchestration import PipelineRun, UnknownPipelineError

if TYPE_CHECKING:
    from fmnist.config import Settings


def _pipeline(name: str) -> Any:
    from fmnist.kubeflow.pipelines import PIPELINES

    if name not in PIPELINES:
        raise UnknownPipelineError(f"unknown pipeline {name!r}; known: {', '.join(PIPELINES)}")
    return PIPELINES[name]


def pipeline_arguments(name: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters the pipeline ``name`` declares (others, like ``show_progress``, are the
    local runner's and are dropped)."""
    declared = inspect.signature(_pipeline(name).pipeline_func).parameters
    return {k: v for k, v in parameters.items() if k in declared and v is not None}


def compile_pipeline(name: str, out: Path) -> Path:
    """Compile the pipeline ``name`` to KFP's IR YAML at ``out``."""
    from kfp import compiler

    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(_pipeline(name), str(out))
    return out


def known_pipelines() -> list[str]:
    """The names of the KFP pipelines."""
    from fmnist.kubeflow.pipelines import PIPELINES

    return sorted(PIPELINES)


class KfpLocalRunner:
    """:class:`~fmnist.platform.orchestration.Orchestrator` on ``kfp.local``: each component
    runs as a subprocess of this interpreter; outputs under ``<home>/kfp-local``."""

    def __init__(self, settings: Settings) -> None:
        """Run pipelines with their outputs under ``settings.home``."""
        self.root = settings.home / "kfp-local"

    def pipelines(self) -> list[str]:
        """The KFP pipelines."""
        return known_pipelines()

    def run(self, pipeline: str, parameters: Mapping[str, Any]) -> PipelineRun:
        """Run ``pipeline`` to the end with ``kfp.local`` (a failed step raises)."""
        from kfp import local

        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(self.root))
        before = set(self.root.glob("*")) if self.root.exists() else set()
        task = _pipeline(pipeline)(**pipeline_arguments(pipeline, parameters))
        runs = sorted(set(self.root.glob("*")) - before)
        outputs = dict(task.outputs) if task is not None and task.outputs else {}
        return PipelineRun(pipeline, runs[-1].name if runs else "", "SUCCEEDED", dict(outputs))


class VertexPipelinesRunner:
    """:class:`~fmnist.platform.orchestration.Orchestrator` on Vertex AI Pipelines: compiles
    the pipeline and submits it (it runs in GCP; the run is ``SUBMITTED``)."""

    def __init__(self, settings: Settings) -> None:
        """Submit with the ``gcp.*`` settings."""
        self.gcp = settings.gcp

    def pipelines(self) -> list[str]:
        """The KFP pipelines."""
        return known_pipelines()

    def run(self, pipeline: str, parameters: Mapping[str, Any]) -> PipelineRun:
        """Compile and submit ``pipeline``."""
        from fmnist.kubeflow.vertex import submit

        with tempfile.TemporaryDirectory(prefix="fmnist-kfp-") as tmp:
            template = compile_pipeline(pipeline, Path(tmp) / f"{pipeline}.yaml")
            name = submit(self.gcp, pipeline, template, pipeline_arguments(pipeline, parameters))
        return PipelineRun(pipeline, name, "SUBMITTED", {})


class KubeflowRunner:
    """:class:`~fmnist.platform.orchestration.Orchestrator` on a Kubeflow Pipelines server
    (``agnostic.kubeflow_host``)."""

    def __init__(self, settings: Settings) -> None:
        """Submit to the server the settings name."""
        self.host = settings.agnostic.kubeflow_host
        self.experiment = settings.tracking.experiment

    def pipelines(self) -> list[str]:
        """The KFP pipelines."""
        return known_pipelines()

    def run(self, pipeline: str, parameters: Mapping[str, Any]) -> PipelineRun:
        """Compile and submit ``pipeline`` as a run of the experiment."""
        import kfp

        client = kfp.Client(host=self.host)
        with tempfile.TemporaryDirectory(prefix="fmnist-kfp-") as tmp:
            template = compile_pipeline(pipeline, Path(tmp) / f"{pipeline}.yaml")
            run = client.create_run_from_pipeline_package(
                str(template),
                arguments=pipeline_arguments(pipeline, parameters),
                run_name=f"fmnist-{pipeline}",
                experiment_name=self.experiment,
            )
        return PipelineRun(pipeline, str(run.run_id), "SUBMITTED", {})
