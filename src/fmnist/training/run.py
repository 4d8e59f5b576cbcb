"""The training step of the lifecycle: train, calibrate, export, and track it all in MLflow.

:func:`train_and_log` is what ``fmnist train``, the local pipeline and the KFP component call.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from fmnist.atomic import atomic_write_bytes, atomic_write_text
from fmnist.config import Settings
from fmnist.data.snapshot import Snapshot, load_snapshot
from fmnist.evaluation.calibration import energy_threshold, fit_temperature
from fmnist.platform.services import Services
from fmnist.registry.onnx_export import ParityReport, export_onnx_checked
from fmnist.registry.runs import flatten_params
from fmnist.runtime_info import git_commit, hardware, package_versions
from fmnist.training.config import TrainConfig
from fmnist.training.distillation import objective_for
from fmnist.training.distributed import world
from fmnist.training.trainer import TrainResult, predict_logits, train

PARITY_IMAGES = 1000
OOD_QUANTILE = 0.95
"""Share of validation images whose energy score is below the out-of-distribution threshold."""
META_OOD_ENERGY_THRESHOLD = "ood.energy_threshold"
META_OOD_QUANTILE = "ood.quantile"


@dataclass(frozen=True)
class TrainedRun:
    """A finished training run: where its files are and what it measured."""

    run_id: str
    result: TrainResult
    temperature: float
    onnx_path: Path
    weights_path: Path
    parity: ParityReport
    run_dir: Path


def run_dir(settings: Settings, run_id: str) -> Path:
    """The local working folder of a run (files are also uploaded to MLflow)."""
    return settings.home / "runs" / run_id


def checkpoint_path(settings: Settings, config: TrainConfig, snapshot_id: str) -> Path:
    """The checkpoint file for a config on a snapshot (stable, so ``--resume`` finds it)."""
    return settings.home / "checkpoints" / f"{config.config_hash()}-{snapshot_id}.pt"


def save_weights(path: Path, result: TrainResult, temperature: float) -> Path:
    """Write the PyTorch weights with the config needed to rebuild the model (atomic)."""
    import io

    buffer = io.BytesIO()
    torch.save(
        {
            "config": result.config.model_dump(),
            "state_dict": result.model.state_dict(),
            "temperature": temperature,
            "snapshot_id": result.snapshot_id,
        },
        buffer,
    )
    atomic_write_bytes(path, buffer.getvalue())
    return path


def train_and_log(
    services: Services,
    config: TrainConfig,
    *,
    snapshot_id: str | None = None,
    resume: bool = False,
    show_progress: bool = True,
) -> TrainedRun:
    """Train ``config`` on a snapshot of the lake and record the run with the tracking port.

    Logs parameters, per-epoch metrics, the snapshot id, git commit, package versions, hardware
    and precision; fits the softmax temperature on the validation split; exports ONNX with the
    temperature baked in and a parity check against PyTorch; logs weights, ONNX and history.
    """
    settings = services.settings
    snapshot: Snapshot = load_snapshot(services.storage, snapshot_id)
    registry = services.registry()
    tags = {
        "fmnist.step": "train",
        "fmnist.snapshot_id": snapshot.snapshot_id,
        "fmnist.config_hash": config.config_hash(),
        "mlflow.source.git.commit": git_commit(),
    }
    objective = objective_for(config, settings.home / "runs")  # teachers load before the run
    run_name = f"{config.model}-{config.config_hash()}"
    with registry.start_run(run_name, tags) as run_id:
        dumped = config.model_dump(exclude={"distill"} if config.distill is None else None)
        params: dict[str, object] = flatten_params(dumped)
        params |= {"snapshot_id": snapshot.snapshot_id, "config_hash": config.config_hash()}
        params |= {f"version.{k}": v for k, v in package_versions().items()}
        params |= {f"hardware.{k}": v for k, v in hardware().items()}
        params["world_size"] = world()[1]
        registry.log_params(run_id, params)

        result = train(
            config,
            snapshot,
            checkpoint_path(settings, config, snapshot.snapshot_id),
            resume=resume,
            show_progress=show_progress,
            objective=objective,
        )
        for record in result.history:
            registry.log_metrics(
                run_id,
                {
                    "train_loss": record.train_loss,
                    "val_loss": record.val_loss,
                    "val_accuracy": record.val_accuracy,
                    "lr": record.lr,
                    "epoch_seconds": record.seconds,
                },
                step=record.epoch,
            )
        val_images, val_labels = snapshot.split("val")
        start = time.perf_counter()
        val_logits = predict_logits(result.model, val_images)
        temperature = fit_temperature(val_logits, val_labels)
        ood_threshold = energy_threshold(val_logits, temperature, OOD_QUANTILE)
        calibration_seconds = time.perf_counter() - start

        directory = run_dir(settings, run_id)
        weights = save_weights(directory / "weights.pt", result, temperature)
        test_images = snapshot.split("test")[0]
        parity = export_onnx_checked(
            result.model,
            directory / "model.onnx",
            test_images[:PARITY_IMAGES],
            temperature=temperature,
            metadata={
                META_OOD_ENERGY_THRESHOLD: f"{ood_threshold:.6g}",
                META_OOD_QUANTILE: str(OOD_QUANTILE),
                "run_id": run_id,
                "snapshot_id": snapshot.snapshot_id,
            },
        )
        history = directory / "history.json"
        atomic_write_text(history, json.dumps([asdict(r) for r in result.history], indent=2))

        registry.log_params(
            run_id,
            {
                "precision_used": result.precision,
                "threads_used": result.threads,
                "parameters": result.parameters,
                "stopped": result.stopped,
            },
        )
        registry.log_metrics(
            run_id,
            {
                "train_seconds": result.train_seconds,
                "best_val_accuracy": result.best_val_accuracy,
                "best_epoch": result.best_epoch,
                "temperature": temperature,
                "ood_energy_threshold": ood_threshold,
                "calibration_seconds": calibration_seconds,
                "onnx_parity_max_prob_diff": parity.max_abs_prob_diff,
                "onnx_parity_argmax_agreement": parity.argmax_agreement,
            },
        )
        for path in (weights, directory / "model.onnx", history):
            registry.log_artifact(run_id, path, "training")
    return TrainedRun(
        run_id=run_id,
        result=result,
        temperature=temperature,
        onnx_path=directory / "model.onnx",
        weights_path=weights,
        parity=parity,
        run_dir=directory,
    )
