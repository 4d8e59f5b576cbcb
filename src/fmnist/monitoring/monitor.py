"""The drift monitor's glue: find a version's model and reference, read a window, check it.

The reference of a registered version is an artifact of its training run
(``evaluation/drift_reference.{npz,json}``, written at registration); a version registered
before references existed gets one computed from the validation split of its snapshot, with
the same function. Both the model and the reference are cached under
``<home>/monitoring/models/<name>/v<version>/``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fmnist.evaluation.drift_reference import (
    REFERENCE_FILES,
    Reference,
    compute_reference,
    load_reference,
    save_reference,
)
from fmnist.monitoring.errors import MonitoringError

if TYPE_CHECKING:
    from fmnist.config import Settings
    from fmnist.monitoring.drift import DriftResult, Window, WindowFeatures
    from fmnist.monitoring.prediction_log import PredictionLog
    from fmnist.platform.services import Services
    from fmnist.registry.onnx_embedding import OnnxEmbedder

logger = logging.getLogger(__name__)

REFERENCE_ARTIFACT_DIR = "evaluation"
"""Run artifact folder holding ``drift_reference.npz`` and ``drift_reference.json``."""
MODEL_FILE = "model.onnx"


@dataclass(frozen=True)
class MonitorTarget:
    """The model a window is compared through, and its reference."""

    reference: Reference
    embedder: OnnxEmbedder
    origin: str
    """Where the reference came from (artifact, computed, folder)."""


def parse_model_ref(ref: str | None, settings: Settings) -> tuple[str, str]:
    """``name@ref``, ``ref`` or None (the served default) as ``(model name, alias/version)``."""
    value = ref or settings.serving.model_ref
    if "@" in value:
        name, _, version = value.partition("@")
        return name, version
    return settings.tracking.registered_model, value


def _cache_dir(settings: Settings, name: str, version: int) -> Path:
    return settings.home / "monitoring" / "models" / name / f"v{version}"


def _fetch_artifact_reference(services: Services, name: str, run_id: str, dest: Path) -> bool:
    registry = services.registry(name)
    try:
        present = {
            Path(f).name for f in registry.list_run_artifacts(run_id, REFERENCE_ARTIFACT_DIR)
        }
    except Exception as exc:  # an unreachable or empty artifact store: compute instead
        logger.info("cannot list the artifacts of run %s: %s", run_id, exc)
        return False
    if not set(REFERENCE_FILES) <= present:
        return False
    with tempfile.TemporaryDirectory(prefix="fmnist-ref-") as tmp:
        for file in REFERENCE_FILES:
            local = registry.download_run_artifacts(
                run_id, f"{REFERENCE_ARTIFACT_DIR}/{file}", Path(tmp)
            )
            shutil.copyfile(local, dest / file)
    return True


def resolve_target(
    services: Services, model_ref: str | None = None, *, reference_dir: Path | None = None
) -> MonitorTarget:
    """The model and reference for ``model_ref`` (default: the served model).

    With ``reference_dir`` the reference is read from that folder and the model is its
    ``model.onnx`` when present, else the registered version's.
    """
    from fmnist.registry.onnx_embedding import OnnxEmbedder

    settings = services.settings
    drift = settings.drift
    if reference_dir is not None:
        reference = load_reference(reference_dir)
        local_model = reference_dir / MODEL_FILE
        if local_model.is_file():
            return MonitorTarget(reference, OnnxEmbedder(local_model), f"folder {reference_dir}")
    name, ref = parse_model_ref(model_ref, settings)
    registry = services.registry(name)
    info = registry.get(ref)
    cache = _cache_dir(settings, name, info.version)
    cache.mkdir(parents=True, exist_ok=True)
    model = cache / MODEL_FILE
    if not model.is_file():
        with tempfile.TemporaryDirectory(prefix="fmnist-model-") as tmp:
            folder = registry.download(str(info.version), Path(tmp))
            shutil.copyfile(folder / MODEL_FILE, cache / f".{MODEL_FILE}.tmp")
            (cache / f".{MODEL_FILE}.tmp").replace(model)
    if reference_dir is not None:
        return MonitorTarget(reference, OnnxEmbedder(model), f"folder {reference_dir}")
    origin = f"cached {cache}"
    if not all((cache / f).is_file() for f in REFERENCE_FILES):
        if info.run_id and _fetch_artifact_reference(services, name, info.run_id, cache):
            origin = f"artifact of run {info.run_id}"
        else:
            snapshot_id = info.tags.get("snapshot_id")
            if not snapshot_id:
                raise MonitoringError(
                    f"{name} version {info.version} has no drift reference and no snapshot_id "
                    "tag to compute one from; pass --reference DIR"
                )
            from fmnist.data.snapshot import load_snapshot

            images, labels = load_snapshot(services.storage, snapshot_id).split("val")
            computed = compute_reference(
                model,
                images,
                labels,
                pca_dims=drift.pca_dims,
                max_rows=drift.reference_size,
                seed=drift.seed,
            )
            save_reference(computed.with_model(name, info.version), cache)
            origin = f"computed from the validation split of snapshot {snapshot_id}"
    reference = load_reference(cache)
    if reference.info.model_version is None:
        reference = reference.with_model(name, info.version)
    return MonitorTarget(reference, OnnxEmbedder(model), origin)


def read_window(
    log: PredictionLog,
    *,
    last: int | None,
    since: datetime | None,
    model_name: str | None,
) -> tuple[Window, int]:
    """The window of logged predictions, with the feedback labels known for them.

    Records logged without their input (all-zero pixels) are left out; their count is returned.
    """
    from fmnist.monitoring.drift import Window
    from fmnist.monitoring.feedback import FeedbackStore

    arrays = log.window_arrays(last, since=since, model_name=model_name)
    has_pixels = arrays.pixels.reshape(len(arrays), -1).any(axis=1)
    store = FeedbackStore(log)
    labels = np.full(len(arrays), -1, dtype=np.int64)
    for i, request_id in enumerate(arrays.request_ids):
        feedback = store.get(str(request_id))
        if feedback is not None and feedback.label is not None:
            labels[i] = int(feedback.label)
    stamps = [str(np.datetime_as_string(t, unit="us")) + "Z" for t in arrays.timestamps[has_pixels]]
    window = Window(
        pixels=np.ascontiguousarray(arrays.pixels[has_pixels]),
        input_kinds=[str(k) for k in arrays.input_kinds[has_pixels]],
        timestamps=stamps,
        labels=labels[has_pixels],
    )
    return window, int((~has_pixels).sum())


def run_check(
    settings: Settings,
    target: MonitorTarget,
    window: Window,
    *,
    write_report: bool | None = None,
) -> tuple[DriftResult, WindowFeatures]:
    """Check ``window`` against the target's reference; write the report when configured."""
    from fmnist.monitoring.drift import check_window

    result, features = check_window(target.reference, target.embedder, window, settings.drift)
    if settings.drift.write_reports if write_report is None else write_report:
        from fmnist.monitoring.report import write_report as write

        write(settings.home, target.reference, features, result, seed=settings.drift.seed)
    return result, features


def check_traffic(
    services: Services,
    *,
    last: int | None = None,
    since: datetime | None = None,
    model: str | None = None,
    reference: Path | None = None,
    any_model: bool = False,
) -> tuple[DriftResult, MonitorTarget, int]:
    """One drift check of the logged traffic: the newest ``last`` predictions (default
    ``drift.window``) or those since ``since``, against ``model``'s reference (default: the
    served model). Returns the result, the target and the count of records without input.
    Raises :class:`MonitoringError` when the window is smaller than ``drift.min_window``."""
    from fmnist.monitoring.prediction_log import open_prediction_log

    settings = services.settings
    size = last if last is not None or since is not None else settings.drift.window
    target = resolve_target(services, model, reference_dir=reference)
    log = open_prediction_log(settings, create=False)
    try:
        window, skipped = read_window(
            log,
            last=size,
            since=since,
            model_name=None if any_model else target.reference.info.model_name,
        )
    finally:
        log.close()
    if len(window) < settings.drift.min_window:
        raise MonitoringError(
            f"the window holds {len(window)} logged predictions with their input; "
            f"at least drift.min_window={settings.drift.min_window} are needed"
        )
    result, _ = run_check(settings, target, window)
    return result, target, skipped


def raise_alerts(settings: Settings, result: DriftResult | None) -> None:
    """Evaluate the alert rules on a check's result and deliver what is due (webhook, log)."""
    from fmnist.monitoring.alerts import Observations, default_state_path, deliver, evaluate_alerts

    state = default_state_path(settings.home)
    observations = Observations(
        drift_detected=None if result is None else result.drift_detected,
        model_version=None if result is None else result.reference.model_version,
        details={} if result is None else {"drift_report": result.report_path},
    )
    deliver(evaluate_alerts(observations, settings.alerts, state), settings.alerts, state)
