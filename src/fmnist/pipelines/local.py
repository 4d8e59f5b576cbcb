"""The main job on the local runner: snapshot -> validate -> train -> evaluate -> register."""

from __future__ import annotations

from dataclasses import dataclass

from fmnist.config import Settings
from fmnist.data.snapshot import Manifest, write_snapshot
from fmnist.data.sources import default_sources, load_raw
from fmnist.evaluation.run import EvaluationOutcome, evaluate_and_register
from fmnist.platform.storage import open_storage
from fmnist.training.config import TrainConfig
from fmnist.training.run import TrainedRun, train_and_log


@dataclass(frozen=True)
class MainJobResult:
    """The outputs of each step of the main job."""

    manifest: Manifest
    trained: TrainedRun
    outcome: EvaluationOutcome


def run_main_job(
    settings: Settings, config: TrainConfig, *, show_progress: bool = True
) -> MainJobResult:
    """Run the whole lifecycle once; each step is the same function the CLI calls."""
    raw = load_raw(default_sources(settings, show_progress=show_progress))
    manifest, _ = write_snapshot(
        open_storage(settings.resolved_lake_url), raw, settings.data, settings.validation
    )
    trained = train_and_log(
        settings, config, snapshot_id=manifest.snapshot_id, show_progress=show_progress
    )
    outcome = evaluate_and_register(settings, trained.run_id)
    return MainJobResult(manifest=manifest, trained=trained, outcome=outcome)
