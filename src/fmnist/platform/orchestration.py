"""The orchestration port: run a named pipeline with parameters and say how it ended.

Adapters: :class:`LocalRunner` (``local``: the steps run in this process, one after another) and
Kubeflow Pipelines / Vertex AI Pipelines (``agnostic`` / ``gcp``), which run the same pipeline
definition compiled to KFP's YAML.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fmnist.errors import FmnistError


@dataclass(frozen=True)
class PipelineRun:
    """The outcome of one pipeline run."""

    pipeline: str
    run_id: str
    state: str
    outputs: Mapping[str, Any] = field(default_factory=dict)


class Orchestrator(Protocol):
    """What triggers (CLI, retraining, schedules) need from a pipeline engine."""

    def pipelines(self) -> list[str]:
        """The names of the pipelines this runner knows."""
        ...

    def run(self, pipeline: str, parameters: Mapping[str, Any]) -> PipelineRun:
        """Run ``pipeline`` with ``parameters`` to the end."""
        ...


class UnknownPipelineError(FmnistError):
    """No pipeline of that name is registered with the runner."""


PipelineFunction = Callable[[Mapping[str, Any]], PipelineRun]


class LocalRunner:
    """:class:`Orchestrator` that calls registered pipeline functions in this process."""

    def __init__(self, pipelines: Mapping[str, PipelineFunction]) -> None:
        """Know ``pipelines`` by name."""
        self._pipelines = dict(pipelines)

    def pipelines(self) -> list[str]:
        """The registered pipeline names."""
        return sorted(self._pipelines)

    def run(self, pipeline: str, parameters: Mapping[str, Any]) -> PipelineRun:
        """Run ``pipeline`` now, in this process."""
        function = self._pipelines.get(pipeline)
        if function is None:
            known = ", ".join(self.pipelines()) or "none"
            raise UnknownPipelineError(f"unknown pipeline {pipeline!r} (known: {known})")
        return function(parameters)
