"""The main job on the local runner: snapshot -> validate -> train -> evaluate -> register."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fmnist.config import GateSettings
from fmnist.data.snapshot import Manifest, read_manifest, write_snapshot
from fmnist.data.sources import default_sources, load_raw
from fmnist.evaluation.run import EvaluationOutcome, evaluate_and_register
from fmnist.platform.orchestration import PipelineRun
from fmnist.platform.services import Services
from fmnist.training.config import TrainConfig, make_config
from fmnist.training.run import TrainedRun, train_and_log


@dataclass(frozen=True)
class MainJobResult:
    """The outputs of each step of the main job."""

    manifest: Manifest
    trained: TrainedRun
    outcome: EvaluationOutcome


def run_main_job(
    services: Services,
    config: TrainConfig,
    *,
    show_progress: bool = True,
    snapshot_id: str | None = None,
    promote: bool = True,
    gates: GateSettings | None = None,
) -> MainJobResult:
    """Run the whole lifecycle once; each step is the same function the CLI calls.

    With ``snapshot_id`` the job trains on that snapshot (a retraining's derived snapshot)
    instead of ingesting the raw data; ``promote`` and ``gates`` go to the evaluation step.
    """
    settings = services.settings
    if snapshot_id is None:
        raw = load_raw(default_sources(settings, show_progress=show_progress))
        manifest, _ = write_snapshot(services.storage, raw, settings.data, settings.validation)
    else:
        manifest = read_manifest(services.storage, snapshot_id)
    trained = train_and_log(
        services, config, snapshot_id=manifest.snapshot_id, show_progress=show_progress
    )
    outcome = evaluate_and_register(services, trained.run_id, promote=promote, gates=gates)
    return MainJobResult(manifest=manifest, trained=trained, outcome=outcome)


def run_training_pipeline(services: Services, parameters: Mapping[str, Any]) -> PipelineRun:
    """The ``training`` pipeline of the local runner: :func:`run_main_job` with the preset
    named by ``parameters["preset"]`` (default ``default``) and optional ``max_minutes``,
    ``snapshot_id`` (train on it instead of ingesting), ``promote`` (default true) and
    ``champion_test`` (``superiority`` or ``non_inferiority``, default the configured one)."""
    preset = str(parameters.get("preset", "default"))
    max_minutes = parameters.get("max_minutes")
    config = make_config(preset, max_minutes=float(max_minutes) if max_minutes else None)
    gates = services.settings.gates
    if parameters.get("champion_test"):
        gates = gates.model_copy(update={"champion_test": parameters["champion_test"]})
    snapshot_id = parameters.get("snapshot_id")
    result = run_main_job(
        services,
        config,
        show_progress=bool(parameters.get("show_progress", False)),
        snapshot_id=str(snapshot_id) if snapshot_id else None,
        promote=bool(parameters.get("promote", True)),
        gates=gates,
    )
    outcome = result.outcome
    return PipelineRun(
        pipeline="training",
        run_id=result.trained.run_id,
        state="SUCCEEDED",
        outputs={
            "snapshot_id": result.manifest.snapshot_id,
            "accuracy": outcome.report.accuracy,
            "gates_passed": outcome.decision.passed,
            "gate_reasons": list(outcome.decision.reasons),
            "gate_checks": dict(outcome.decision.checks),
            "version": outcome.version.version if outcome.version else None,
            "promoted": outcome.promoted,
        },
    )
