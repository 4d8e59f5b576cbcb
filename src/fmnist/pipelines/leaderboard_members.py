"""The leaderboard's ``ensemble`` row: registered members soft-voted as one exported model.

Each member is a registered version (the leaderboard row's version, else the champion, else
the newest). Their maximum-likelihood mixture weights are fitted on the validation split, with
horizontal-flip TTA when it lowers the validation NLL (:func:`fmnist.models.mixture_weights`);
the ensemble is calibrated, exported as one ONNX graph with a parity check and logged in a new
tracked run tagged ``fmnist.step=ensemble``.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fmnist.atomic import atomic_write_bytes
from fmnist.errors import FmnistError
from fmnist.identity import digest_json
from fmnist.platform.registry import CHAMPION, ModelRegistry, ModelVersionInfo, RegistryError
from fmnist.training.config import TrainConfig

if TYPE_CHECKING:
    from torch import nn

    from fmnist.data.snapshot import Snapshot

ENSEMBLE = "ensemble"
STEP_ENSEMBLE = "ensemble"
ENSEMBLE_FORMAT = 1
PARITY_IMAGES = 1000


class BenchmarkError(FmnistError):
    """A leaderboard row cannot be produced as asked."""


@dataclass
class Member:
    """One registered member model, loaded for soft voting."""

    name: str
    version: ModelVersionInfo
    model: nn.Module
    temperature: float
    train_seconds: float
    precision: str
    config: dict[str, Any]


def load_member(
    named: ModelRegistry, tracking: ModelRegistry, name: str, version: int | None
) -> Member:
    """Member ``name`` from its registry ``named``: ``version``, else the champion, else the
    newest version; its training run is read from ``tracking``."""
    import torch

    from fmnist.models import build_model

    if version is not None:
        info = named.get(str(version))
    else:
        try:
            info = named.get(CHAMPION)
        except RegistryError:
            versions = named.list_versions()
            if not versions:
                raise BenchmarkError(
                    f"ensemble member {name!r} is not registered; run "
                    f"'fmnist benchmark --models {name}' first"
                ) from None
            info = versions[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = named.download(str(info.version), Path(tmp))
        # weights_only: tensors and plain values only, so a tampered file cannot run code.
        state = torch.load(folder / "weights.pt", map_location="cpu", weights_only=True)
    config = TrainConfig.model_validate(state["config"])
    model = build_model(config.model, **config.model_options)
    model.load_state_dict(state["state_dict"])
    run = tracking.run_record(str(info.run_id))
    return Member(
        name=name,
        version=info,
        model=model.eval(),
        temperature=float(state["temperature"]),
        train_seconds=float(run.metrics.get("train_seconds", 0.0)),
        precision=run.params.get("precision_used", "?"),
        config=config.model_dump(mode="json"),
    )


def ensemble_digest(members: Sequence[Member]) -> str:
    """The ensemble's config hash: its format, the members' runs, how weights and TTA are
    chosen (finds a reusable run)."""
    identity = {
        "format": ENSEMBLE_FORMAT,
        "members": [(m.name, m.version.run_id) for m in members],
        "weights": "validation-em",
        "tta": "chosen on validation",
    }
    return digest_json(identity, length=12, sort_keys=False)


def _log_softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    result: npt.NDArray[np.float64] = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return result


def build_ensemble_run(
    tracking: ModelRegistry,
    snapshot: Snapshot,
    home: Path,
    members: Sequence[Member],
    digest: str,
) -> str:
    """Assemble, calibrate and export the ensemble in a new tracked run; returns its id.

    The run's files go to ``home/runs/<run_id>`` and to its ``training`` artifacts.
    """
    import torch

    from fmnist.evaluation.calibration import energy_threshold, fit_temperature
    from fmnist.models import build_ensemble, count_parameters, mixture_weights
    from fmnist.registry.onnx_export import export_onnx_checked
    from fmnist.runtime_info import git_commit
    from fmnist.training.run import META_OOD_ENERGY_THRESHOLD, META_OOD_QUANTILE, OOD_QUANTILE
    from fmnist.training.trainer import predict_logits

    start = time.perf_counter()
    sid = snapshot.snapshot_id
    val_images, val_labels = snapshot.split("val")
    temperatures = [m.temperature for m in members]
    mirrored = np.ascontiguousarray(val_images[:, :, ::-1])
    plain = np.stack(
        [_log_softmax(predict_logits(m.model, val_images) / m.temperature) for m in members]
    )
    flipped = np.stack(
        [_log_softmax(predict_logits(m.model, mirrored) / m.temperature) for m in members]
    )
    # Weights by maximum validation likelihood, with and without flip TTA; keep the better.
    weights, val_nll = mixture_weights(plain, val_labels)
    weights_tta, val_nll_tta = mixture_weights(
        np.logaddexp(plain, flipped) - np.log(2.0), val_labels
    )
    tta = val_nll_tta < val_nll
    if tta:
        weights = weights_tta
    ensemble = build_ensemble(
        [m.model for m in members], weights, tta=tta, temperatures=temperatures
    )
    ensemble_logits = predict_logits(ensemble, val_images)
    temperature = fit_temperature(ensemble_logits, val_labels)
    threshold = energy_threshold(ensemble_logits, temperature, OOD_QUANTILE)
    member_rows = [
        {
            "model": m.name,
            "version": m.version.version,
            "run_id": m.version.run_id,
            "weight": round(float(w), 6),
            "temperature": round(m.temperature, 6),
        }
        for m, w in zip(members, weights, strict=True)
    ]
    tags = {
        "fmnist.step": STEP_ENSEMBLE,
        "fmnist.snapshot_id": sid,
        "fmnist.config_hash": digest,
        "fmnist.members": ",".join(m.name for m in members),
        "mlflow.source.git.commit": git_commit(),
    }
    with tracking.open_run(f"ensemble-{digest}", tags) as run_id:
        folder = home / "runs" / run_id
        parity = export_onnx_checked(
            ensemble,
            folder / "model.onnx",
            snapshot.split("test")[0][:PARITY_IMAGES],
            temperature=temperature,
            metadata={
                META_OOD_ENERGY_THRESHOLD: f"{threshold:.6g}",
                META_OOD_QUANTILE: str(OOD_QUANTILE),
                "run_id": run_id,
                "snapshot_id": sid,
            },
        )
        buffer = io.BytesIO()
        # Each member's training config travels too, so the weights alone rebuild it.
        members_with_config = [
            row | {"config": m.config} for row, m in zip(member_rows, members, strict=True)
        ]
        config = {"model": ENSEMBLE, "members": members_with_config, "tta": tta}
        torch.save(
            {
                "config": config,
                "state_dict": ensemble.state_dict(),
                "temperature": temperature,
                "snapshot_id": sid,
            },
            buffer,
        )
        atomic_write_bytes(folder / "weights.pt", buffer.getvalue())
        precisions = sorted({m.precision for m in members})
        tracking.log_params(
            run_id,
            {
                "members": json.dumps(member_rows),
                "tta": tta,
                "weights": "validation-em",
                "parameters": count_parameters(ensemble),
                "precision_used": "+".join(precisions),
                "config_hash": digest,
                "snapshot_id": sid,
            },
        )
        tracking.log_metrics(
            run_id,
            {
                "train_seconds": sum(m.train_seconds for m in members),
                "assembly_seconds": time.perf_counter() - start,
                "temperature": temperature,
                "val_nll_mixture": val_nll,
                "val_nll_mixture_tta": val_nll_tta,
                "ood_energy_threshold": threshold,
                "onnx_parity_max_prob_diff": parity.max_abs_prob_diff,
                "onnx_parity_argmax_agreement": parity.argmax_agreement,
            },
        )
        for name in ("weights.pt", "model.onnx"):
            tracking.log_artifact(run_id, folder / name, "training")
    return run_id
