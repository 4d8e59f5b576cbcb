"""``fmnist experiment adapt``: train with photos, calibrate "unknown", export, register.

:func:`adapt_and_register` runs the whole step and tracks it in MLflow (experiment
:data:`EXPERIMENT`):

1. the training fold of a labelled photo folder (never a ``validation/`` or ``test/`` folder)
   and the Fashion-MNIST snapshot train the model in the trainer's loop
   (:func:`~fmnist.realworld.photo_training.train_with_photos`); the Fashion-MNIST-only model
   of the same recipe is trained first when the adapted model fine-tunes it (the default,
   unless ``init_weights`` gives its weights) or with ``with_baseline``, and is the reference
   for Fashion-MNIST test accuracy;
2. the softmax temperature is fitted on the Fashion-MNIST validation split (as ``fmnist train``
   does), then the unknown thresholds are calibrated on the folder's calibration fold
   (:func:`~fmnist.realworld.abstention.calibrate`);
3. the model is exported to ONNX (parity-checked) with the thresholds in its metadata, so the
   server applies them, and measured on the Fashion-MNIST test set;
4. it is registered under its own name (default :data:`PHOTO_MODEL_NAME`, so the Fashion-MNIST
   champion is untouched) and becomes that name's ``champion`` when its Fashion-MNIST test
   accuracy is at most ``max_drop_points`` below the reference.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from fmnist.atomic import atomic_write_bytes, atomic_write_text
from fmnist.data.snapshot import Snapshot, load_snapshot
from fmnist.errors import FmnistError
from fmnist.evaluation.calibration import energy_score, energy_threshold, fit_temperature, softmax
from fmnist.platform.services import Services
from fmnist.realworld.abstention import (
    DEFAULT_MAX_MAPPABLE_ABSTENTION,
    META_CALIBRATION,
    META_FMNIST_ENERGY_THRESHOLD,
    META_MIN_CONFIDENCE,
    AbstentionCalibration,
    calibrate,
)
from fmnist.realworld.adaptation import AdaptOptions, PhotoSet, prepare_photo_set
from fmnist.realworld.mapping import ClassMapping
from fmnist.realworld.photo_training import AdaptResult, train_with_photos
from fmnist.realworld.photos import calibration_photos, class_counts, training_photos
from fmnist.registry.mlflow_registry import CHAMPION, ModelVersionInfo, RegistryError
from fmnist.registry.onnx_export import ParityReport, export_onnx_checked
from fmnist.registry.onnx_runtime import OnnxClassifier
from fmnist.registry.runs import flatten_params
from fmnist.runtime_info import git_commit, hardware, package_versions
from fmnist.training.config import TrainConfig
from fmnist.training.run import META_OOD_ENERGY_THRESHOLD, OOD_QUANTILE, run_dir
from fmnist.training.trainer import predict_logits

EXPERIMENT = "fmnist-real-world"
"""MLflow experiment of real-photo runs (adaptation and the harness)."""
PHOTO_MODEL_NAME = "fmnist-photos"
"""Registered model name of photo-adapted models (``serving.photo_model`` serves its champion)."""
META_SEGMENTATION = "preprocessing.segmentation"
META_MAPPING = "photos.mapping"
PARITY_IMAGES = 1000


class AdaptationError(FmnistError):
    """Domain adaptation cannot start (no model to fine-tune from, mismatched weights)."""


@dataclass(frozen=True)
class TrainedModel:
    """One model trained by :func:`adapt_and_register` and what it measured."""

    run_id: str
    result: AdaptResult
    temperature: float
    fmnist_energy_threshold: float
    calibration: AbstentionCalibration | None
    onnx_path: Path
    weights_path: Path
    parity: ParityReport
    fmnist_test_accuracy: float


@dataclass(frozen=True)
class AdaptationOutcome:
    """The adapted model, the baseline (if trained), the registration and the decision."""

    adapted: TrainedModel
    baseline: TrainedModel | None
    reference_accuracy: float | None
    reference: str
    accuracy_drop_points: float | None
    version: ModelVersionInfo | None
    promoted: bool
    reason: str


def _save_weights(path: Path, result: AdaptResult, temperature: float) -> Path:
    buffer = io.BytesIO()
    torch.save(
        {
            "config": result.config.model_dump(),
            "adapt_options": result.options.model_dump(),
            "state_dict": result.model.state_dict(),
            "temperature": temperature,
            "snapshot_id": result.snapshot_id,
        },
        buffer,
    )
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _calibrate(
    result: AdaptResult, photos: PhotoSet, temperature: float, budget: float
) -> AbstentionCalibration:
    logits = predict_logits(result.model, photos.images, channels_last=False)
    probabilities = softmax(logits, temperature)
    fractions = (photos.images > 0).mean(axis=(1, 2))
    return calibrate(
        probabilities.max(axis=1),
        energy_score(logits, temperature),
        photos.mappable,
        foreground_fraction=fractions,
        max_mappable_abstention=budget,
    )


def _train_one(
    services: Services,
    snapshot: Snapshot,
    config: TrainConfig,
    options: AdaptOptions,
    photos: PhotoSet | None,
    calibration_set: PhotoSet | None,
    *,
    mapping: ClassMapping | None,
    photo_root: Path | None,
    max_mappable_abstention: float,
    show_progress: bool,
    init_state: dict[str, torch.Tensor] | None = None,
) -> TrainedModel:
    registry = services.registry(experiment=EXPERIMENT)
    baseline = photos is None
    tags = {
        "fmnist.step": "adapt-baseline" if baseline else "adapt",
        "fmnist.finetuned": str(init_state is not None).lower(),
        "fmnist.snapshot_id": snapshot.snapshot_id,
        "fmnist.config_hash": config.config_hash(),
        "mlflow.source.git.commit": git_commit(),
    }
    run_name = f"{'fmnist-only' if baseline else 'photos'}-{config.config_hash()}"
    if baseline:
        options = options.model_copy(update={"photo_batch": 0, "outlier_batch": 0})
    with registry.start_run(run_name, tags) as run_id:
        params: dict[str, object] = flatten_params(config.model_dump())
        params |= flatten_params(options.model_dump(), "adapt")
        params |= {"snapshot_id": snapshot.snapshot_id, "config_hash": config.config_hash()}
        if mapping is not None:
            params |= {
                "mapping.name": mapping.name,
                "mapping.version": mapping.version,
                "mapping.sha256": mapping.sha256,
                "photos.folder": str(photo_root),
            }
        params |= {f"version.{k}": v for k, v in package_versions().items()}
        params |= {f"hardware.{k}": v for k, v in hardware().items()}
        registry.log_params(run_id, params)
        directory = run_dir(services.settings, run_id)
        result = train_with_photos(
            config,
            snapshot,
            photos,
            options,
            directory / "checkpoint.pt",
            calibration=calibration_set,
            init_state=init_state,
            show_progress=show_progress,
        )
        for record in result.history:
            registry.log_metrics(
                run_id,
                {k: v for k, v in asdict(record).items() if k != "epoch" and v is not None},
                step=record.epoch,
            )
        val_images, val_labels = snapshot.split("val")
        val_logits = predict_logits(result.model, val_images, channels_last=False)
        temperature = fit_temperature(val_logits, val_labels)
        fmnist_threshold = energy_threshold(val_logits, temperature, OOD_QUANTILE)
        calibration = (
            _calibrate(result, calibration_set, temperature, max_mappable_abstention)
            if calibration_set is not None and mapping is not None
            else None
        )
        metadata = {
            "run_id": run_id,
            "snapshot_id": snapshot.snapshot_id,
            META_FMNIST_ENERGY_THRESHOLD: f"{fmnist_threshold:.6g}",
            META_SEGMENTATION: options.segmentation,
        }
        if calibration is not None and mapping is not None:
            if calibration.energy_threshold is not None:
                metadata[META_OOD_ENERGY_THRESHOLD] = f"{calibration.energy_threshold:.6g}"
            metadata[META_MIN_CONFIDENCE] = f"{calibration.min_confidence:.6g}"
            metadata[META_CALIBRATION] = json.dumps(
                {**calibration.to_dict(), "photos": str(photo_root), "fold": "calibration"}
            )
            metadata[META_MAPPING] = f"{mapping.name}@{mapping.version} sha256:{mapping.sha256}"
        else:
            metadata[META_OOD_ENERGY_THRESHOLD] = f"{fmnist_threshold:.6g}"
        weights = _save_weights(directory / "weights.pt", result, temperature)
        test_images, test_labels = snapshot.split("test")
        parity = export_onnx_checked(
            result.model,
            directory / "model.onnx",
            test_images[:PARITY_IMAGES],
            temperature=temperature,
            metadata=metadata,
        )
        test_accuracy = float(
            (OnnxClassifier(directory / "model.onnx").predict(test_images) == test_labels).mean()
        )
        history = directory / "history.json"
        atomic_write_text(history, json.dumps([asdict(r) for r in result.history], indent=2))
        final: dict[str, float] = {
            "fmnist_test_accuracy": test_accuracy,
            "fmnist_val_accuracy": result.history[-1].val_accuracy if result.history else 0.0,
            "temperature": temperature,
            "ood_fmnist_energy_threshold": fmnist_threshold,
            "train_seconds": result.train_seconds,
            "photos_rows": result.photos,
            "outlier_rows": result.outliers,
            "onnx_parity_max_prob_diff": parity.max_abs_prob_diff,
        }
        if calibration is not None:
            final |= {
                "calibration_min_confidence": calibration.min_confidence,
                "calibration_mappable_abstention": calibration.mappable_abstention,
                "calibration_unmappable_abstention": calibration.unmappable_abstention,
            }
            if calibration.energy_threshold is not None:
                final["calibration_energy_threshold"] = calibration.energy_threshold
        registry.log_metrics(run_id, final)
        registry.log_params(
            run_id,
            {"precision_used": result.precision, "threads_used": result.threads},
        )
        for path in (weights, directory / "model.onnx", history):
            registry.log_artifact(run_id, path, "training")
    return TrainedModel(
        run_id=run_id,
        result=result,
        temperature=temperature,
        fmnist_energy_threshold=fmnist_threshold,
        calibration=calibration,
        onnx_path=directory / "model.onnx",
        weights_path=weights,
        parity=parity,
        fmnist_test_accuracy=test_accuracy,
    )


def _load_weights(path: Path, config: TrainConfig) -> dict[str, torch.Tensor]:
    """The state dict of a ``weights.pt`` written by ``fmnist train`` or this module, checked
    to be of ``config``'s architecture."""
    try:
        # weights_only: tensors and plain values only, so a tampered file cannot run code.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise AdaptationError(f"cannot read weights {path}: {exc}") from exc
    saved = state.get("config", {}) if isinstance(state, dict) else {}
    same = saved.get("model") == config.model and saved.get("model_options") == config.model_options
    if "state_dict" not in state or not same:
        raise AdaptationError(
            f"{path} holds {saved.get('model')} {saved.get('model_options')}, not "
            f"{config.model} {config.model_options}: pass the same --preset it was trained with"
        )
    weights: dict[str, torch.Tensor] = state["state_dict"]
    return weights


def _champion_accuracy(services: Services) -> float | None:
    """The Fashion-MNIST champion's recorded test accuracy, if there is one."""
    try:
        champion = services.registry().get(CHAMPION)
    except RegistryError:
        return None
    raw = champion.tags.get("test_accuracy")
    return float(raw) if raw else None


def adapt_and_register(
    services: Services,
    photo_root: Path,
    mapping: ClassMapping,
    config: TrainConfig,
    options: AdaptOptions,
    *,
    snapshot_id: str | None = None,
    with_baseline: bool = False,
    init_weights: Path | None = None,
    reference_accuracy: float | None = None,
    max_drop_points: float = 0.5,
    max_mappable_abstention: float = DEFAULT_MAX_MAPPABLE_ABSTENTION,
    register: bool = True,
    promote: bool = True,
    registered_model: str = PHOTO_MODEL_NAME,
    show_progress: bool = True,
) -> AdaptationOutcome:
    """Train with photos, calibrate, export, register (see the module docstring).

    The reference Fashion-MNIST test accuracy is, in order: the baseline trained here
    (``with_baseline``), ``reference_accuracy``, the Fashion-MNIST champion's recorded test
    accuracy; without any, ``gates.min_accuracy`` is the floor. Raises
    :class:`~fmnist.realworld.photos.HeldOutPhotosError` for a held-out folder.
    """
    settings = services.settings
    train_list = training_photos(photo_root, mapping)
    calibration_list = calibration_photos(photo_root, mapping)
    snapshot = load_snapshot(services.storage, snapshot_id)
    cache = settings.home / "cache" / "realworld"
    photos = prepare_photo_set(
        train_list, mapping, options, cache_dir=cache, show_progress=show_progress
    )
    calibration_set = prepare_photo_set(
        calibration_list,
        mapping,
        options.model_copy(update={"variants": 1}),
        cache_dir=cache,
        show_progress=show_progress,
    )

    def train_one(
        photo_set: PhotoSet | None,
        recipe: TrainConfig,
        init_state: dict[str, torch.Tensor] | None = None,
    ) -> TrainedModel:
        return _train_one(
            services,
            snapshot,
            recipe,
            options,
            photo_set,
            calibration_set,
            mapping=mapping,
            photo_root=photo_root,
            max_mappable_abstention=max_mappable_abstention,
            show_progress=show_progress,
            init_state=init_state,
        )

    if options.finetune_epochs and init_weights is None:
        with_baseline = True  # fine-tuning starts from the Fashion-MNIST-only model: train it
    baseline = train_one(None, config) if with_baseline else None
    if options.finetune_epochs:
        if baseline is not None:
            init_state = baseline.result.model.state_dict()
        else:
            init_state = _load_weights(init_weights, config)  # type: ignore[arg-type]
        recipe = config.model_copy(
            update={"epochs": options.finetune_epochs, "lr": options.finetune_lr}
        )
        adapted = train_one(photos, recipe, init_state)
    else:
        adapted = train_one(photos, config)
    reference: float | None
    if baseline is not None:
        reference, source = baseline.fmnist_test_accuracy, f"baseline run {baseline.run_id}"
    elif reference_accuracy is not None:
        reference, source = reference_accuracy, "given"
    else:
        champion = _champion_accuracy(services)
        reference = champion
        source = f"{settings.tracking.registered_model}@champion" if champion else "none"
    drop = None if reference is None else (reference - adapted.fmnist_test_accuracy) * 100.0
    if drop is not None:
        passed = drop <= max_drop_points
        reason = (
            f"Fashion-MNIST test accuracy {adapted.fmnist_test_accuracy:.4f} is {drop:+.2f} "
            f"points below the reference {reference:.4f} ({source}); limit {max_drop_points}"
        )
    else:
        passed = adapted.fmnist_test_accuracy >= settings.gates.min_accuracy
        reason = (
            f"Fashion-MNIST test accuracy {adapted.fmnist_test_accuracy:.4f}, no reference; "
            f"gate min_accuracy {settings.gates.min_accuracy}"
        )
    version: ModelVersionInfo | None = None
    promoted = False
    if register:
        registry = services.registry(registered_model, experiment=EXPERIMENT)
        counts = class_counts(train_list)
        tags = {
            "fmnist_test_accuracy": f"{adapted.fmnist_test_accuracy:.4f}",
            "reference_accuracy": f"{reference:.4f}" if reference is not None else "none",
            "reference": source,
            "gate": "passed" if passed else "failed",
            "gate_reason": reason,
            "mapping": f"{mapping.name}@{mapping.version}",
            "mapping_sha256": mapping.sha256,
            "training_photos": str(sum(counts.values())),
            "segmentation": options.segmentation,
        }
        if adapted.calibration is not None:
            tags["min_confidence"] = f"{adapted.calibration.min_confidence:.4g}"
            tags["energy_threshold"] = str(adapted.calibration.energy_threshold)
        test_images = snapshot.split("test")[0]
        with registry.resume_run(adapted.run_id):
            version = registry.log_and_register(
                adapted.run_id,
                adapted.onnx_path,
                adapted.weights_path,
                test_images[:2],
                tags,
                description=f"photo-adapted; {reason}",
            )
        if passed and promote:
            version = registry.promote(str(version.version), reason=reason)
            promoted = True
    return AdaptationOutcome(
        adapted=adapted,
        baseline=baseline,
        reference_accuracy=reference,
        reference=source,
        accuracy_drop_points=drop,
        version=version,
        promoted=promoted,
        reason=reason,
    )
