"""One settings object for the whole system, with provenance for every value.

Precedence, highest first: ``FMNIST_*`` environment variables (nested keys joined by ``__``, for
example ``FMNIST_DATA__VAL_FRACTION``), a YAML file (``--config`` or ``FMNIST_CONFIG``), defaults.
The defaults are the embedded local mode: no servers, everything under :attr:`Settings.home`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from fmnist.errors import ConfigError

Profile = Literal["local", "gcp", "agnostic"]
ENV_PREFIX = "FMNIST_"
ENV_NESTED_DELIMITER = "__"
CONFIG_ENV_VAR = "FMNIST_CONFIG"

OFFICIAL_MIRRORS: tuple[str, ...] = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
"""The official Fashion-MNIST download locations (Zalando Research), tried in order."""


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fmnist"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataSettings(_Section):
    """Where the raw data comes from and how snapshots are split and stored."""

    mirrors: list[str] = Field(default_factory=lambda: list(OFFICIAL_MIRRORS), min_length=1)
    download_retries: int = Field(3, ge=0, le=10, description="retries per file and mirror")
    download_timeout_s: float = Field(60.0, gt=0)
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5, description="stratified validation split")
    split_seed: int = Field(42, ge=0)
    snapshot_format: Literal["parquet", "npz"] = "parquet"


class ValidationSettings(_Section):
    """Thresholds of ``fmnist data validate``; a violation fails the command with exit code 1."""

    blank_range: int = Field(16, ge=0, le=255, description="max-min pixel range of a blank image")
    saturated_pixel_fraction: float = Field(
        0.6, gt=0, le=1, description="share of 255-valued pixels that makes an image saturated"
    )
    max_blank_fraction: float = Field(0.001, ge=0, le=1)
    max_saturated_fraction: float = Field(0.001, ge=0, le=1)
    max_duplicate_fraction: float = Field(0.005, ge=0, le=1, description="extra copies per split")
    max_conflicting_label_fraction: float = Field(
        0.001, ge=0, le=1, description="share of images whose exact copy carries another label"
    )
    max_leakage_fraction: float = Field(
        0.005, ge=0, le=1, description="share of test images whose exact copy is in train"
    )
    max_class_imbalance: float = Field(1.5, ge=1, description="largest / smallest class count")


class TrackingSettings(_Section):
    """MLflow tracking and model registry; defaults to a SQLite store under ``home``."""

    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default sqlite:///<home>/mlflow/mlflow.db"
    )
    artifact_root: str | None = Field(
        None, description="artifact location for new experiments; default <home>/mlflow/artifacts"
    )
    experiment: str = Field("fmnist", min_length=1)
    registered_model: str = Field("fmnist-classifier", min_length=1)


class GateSettings(_Section):
    """Promotion gates applied by ``fmnist evaluate`` before a model may become champion."""

    min_accuracy: float = Field(0.90, ge=0, le=1)
    min_class_recall: float = Field(0.60, ge=0, le=1, description="floor for every class")
    max_ece: float = Field(0.05, ge=0, le=1, description="after temperature scaling")
    mcnemar_alpha: float = Field(
        0.05, gt=0, lt=1, description="a challenger must beat the champion at this level"
    )
    champion_test: Literal["superiority", "non_inferiority"] = Field(
        "superiority",
        description="superiority: significantly better than the champion (McNemar); "
        "non_inferiority: not worse by more than the margin (retraining's candidates)",
    )
    non_inferiority_margin: float = Field(
        0.005, ge=0, lt=1, description="accuracy a non-inferior challenger may lose, at most"
    )


class EvaluationSettings(_Section):
    """Reported, not gated: confidence intervals, slices, behavioural tests, explanations."""

    bootstrap_resamples: int = Field(1000, ge=10, le=100_000, description="resamples per metric")
    bootstrap_seed: int = Field(0, ge=0)
    confidence_level: float = Field(0.95, gt=0.5, lt=1, description="of every interval")
    slice_bins: int = Field(4, ge=2, le=20, description="quantile bins per image property")
    min_slice_size: int = Field(50, ge=1, description="smaller slices are never ranked worst")
    worst_slices: int = Field(3, ge=1, le=50, description="slices highlighted as the weakest")
    confused_pairs: int = Field(5, ge=1, le=45, description="most confused class pairs listed")
    behavioural_sample: int = Field(
        1000, ge=10, description="test images perturbed by the invariance tests"
    )
    behavioural_seed: int = Field(0, ge=0)
    max_shift_1px_change_rate: float = Field(0.05, ge=0, le=1)
    max_shift_2px_change_rate: float = Field(0.10, ge=0, le=1)
    brightness_factors: list[PositiveFloat] = Field(
        default_factory=lambda: [0.8, 1.25], min_length=1, description="pixel value scalings"
    )
    max_brightness_change_rate: float = Field(0.06, ge=0, le=1)
    max_flip_change_rate: float = Field(0.10, ge=0, le=1)
    mft_per_class: int = Field(20, ge=1, le=1000, description="clear test images per class")
    min_mft_pass_rate: float = Field(0.98, ge=0, le=1)
    explanation_examples: int = Field(
        3, ge=0, le=20, description="explained test images per kind (correct, wrong)"
    )
    explanation_method: str = Field("integrated_gradients", min_length=1)


class ServingSettings(_Section):
    """The online API (``fmnist serve``) and the batch job (``fmnist predict batch``)."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    model_ref: str = Field("champion", description="alias or version served by default")
    model_export: Path | None = Field(
        None,
        description="folder written by `fmnist models export`: models are read from it (the "
        "registry port's read-only `exported` adapter; the serving-only install needs it)",
    )
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="request body limit")
    max_image_pixels: int = Field(
        40_000_000, ge=784, description="decoded pixel limit (decompression bombs)"
    )
    max_decompression_ratio: float = Field(
        200.0,
        ge=10,
        description="decoded bytes per uploaded byte above which an image of over 16 MB "
        "decoded is refused as a decompression bomb (photos: 2-50)",
    )
    heavy_decode_pixels: int = Field(
        4_000_000, ge=784, description="images above this many pixels take a heavy slot"
    )
    heavy_decode_concurrency: int = Field(
        1, ge=1, le=64, description="heavy images decoded at once per process"
    )
    decode_timeout_s: float = Field(
        10.0, gt=0, le=300, description="decoding time (queueing included) before a 503"
    )
    max_batch: int = Field(1024, ge=1000, description="instances or files per batch request")
    microbatching: bool = True
    microbatch_max_wait_ms: float = Field(2.0, ge=0, le=100)
    microbatch_max_size: int = Field(64, ge=1, le=4096)
    microbatch_inline_max: int = Field(
        1,
        ge=0,
        le=4096,
        description="batches up to this size found while no batch runs are run on the event "
        "loop, without a thread hop (0: always on the inference thread)",
    )
    reload_interval_s: float = Field(
        30.0, ge=0, description="poll the registry for a new champion; 0 disables"
    )
    admin_token: SecretStr | None = Field(
        None, description="bearer token for POST /v1/admin/reload (never printed)"
    )
    min_confidence: float = Field(
        0.5, ge=0, le=1, description="calibrated top probability below which the answer is unknown"
    )
    intra_op_threads: int = Field(1, ge=1, le=64)
    model_cache_size: int = Field(4, ge=1, description="models kept loaded for ?model=")
    inference_threads: int = Field(
        1, ge=1, le=64, description="threads running model calls beside the event loop"
    )
    workers: int = Field(1, ge=1, le=64, description="server processes started by fmnist serve")
    access_log: bool = Field(True, description="one structured log line per request")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="json: one Cloud Logging object per line (the default on Cloud Run and "
        "Vertex AI, see fmnist.serving.platform_env)",
    )
    platform_health_route: str | None = Field(
        None,
        pattern=r"^/[A-Za-z0-9/_.~:-]*$",
        description="an extra readiness route a platform asks for (Vertex AI: AIP_HEALTH_ROUTE)",
    )
    platform_predict_route: str | None = Field(
        None,
        pattern=r"^/[A-Za-z0-9/_.~:-]*$",
        description="an extra {instances} -> {predictions} route (Vertex AI: AIP_PREDICT_ROUTE)",
    )
    gc_freeze: bool = Field(
        True,
        description="exempt the objects alive after start-up from cyclic garbage collection "
        "(full collections over them paused requests for 50-150 ms)",
    )
    photo_model: str | None = Field(
        "fmnist-photos@champion",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$",
        description="model answering uploaded photos (not 28x28 Fashion-MNIST-like images) "
        "when no ?model= is given; unregistered or null: the default model answers them",
    )
    segmentation: Literal["grabcut", "colour"] = Field(
        "grabcut", description="photo foreground segmentation: GrabCut or the colour model alone"
    )


class SecuritySettings(_Section):
    """Access control of the API: API keys with scopes, rate limits, CORS, headers.

    ``auth: auto`` keeps the prediction routes (predict, explain, feedback) open when the
    server is bound to a loopback address (the demo's two commands keep working) and needs a
    key everywhere else; admin routes always need an admin key (or ``serving.admin_token``).
    ``on`` needs a key on every route, ``off`` on none but admin (logged as a warning when not
    on loopback). Rate limits (``auto``: off on loopback, so benchmarks measure the model).
    """

    auth: Literal["auto", "on", "off"] = "auto"
    keys_path: Path | None = Field(
        None, description="hashed API keys; default <home>/security/api_keys.json"
    )
    rate_limit: Literal["auto", "on", "off"] = "auto"
    rate_limits_per_minute: dict[str, int] = Field(
        default_factory=lambda: {"predict": 1200, "explain": 60, "feedback": 1200, "admin": 60},
        description="requests per minute per key (or client) and scope",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed to call the API from a browser"
    )
    metrics_require_key: bool | None = Field(
        None, description="/metrics needs an admin key (default: only when not on loopback)"
    )


class ExplainSettings(_Section):
    """Explanations (``POST /v1/explain``, ``fmnist explain``): sample counts and time limits.

    The defaults keep integrated gradients (the API default) within 200 ms p95 for one image on
    2 cores; the slower methods are bounded by their sample counts and their time limits.
    """

    max_images: int = Field(8, ge=1, le=1024, description="images per /v1/explain request")
    torch_threads: int = Field(1, ge=1, le=64, description="PyTorch threads of the explainer")
    load_timeout_s: float = Field(
        120.0, gt=0, description="importing PyTorch and loading a version's weights"
    )
    integrated_gradients_time_limit_s: float = Field(2.0, gt=0, description="per request")
    shap_time_limit_s: float = Field(10.0, gt=0, description="per request")
    lime_time_limit_s: float = Field(20.0, gt=0, description="per request")
    occlusion_time_limit_s: float = Field(10.0, gt=0, description="per request")
    ig_steps: int = Field(32, ge=2, le=1024, description="integrated-gradients path points")
    shap_background_size: int = Field(
        64, ge=1, le=10_000, description="training images drawn as SHAP's background"
    )
    shap_samples: int = Field(64, ge=1, le=10_000, description="SHAP samples per image")
    lime_num_samples: int = Field(500, ge=10, le=100_000, description="LIME images per image")
    lime_segmentation: Literal["grid", "slic", "quickshift"] = Field(
        "grid", description="LIME superpixels: square grid cells, SLIC or quickshift"
    )
    lime_grid_cell: int = Field(4, ge=1, le=28, description="grid cell side in pixels")
    lime_slic_segments: int = Field(49, ge=2, le=784, description="SLIC target segment count")
    lime_slic_compactness: float = Field(0.1, gt=0, description="SLIC compactness (grey image)")
    lime_quickshift_kernel: float = Field(1.0, gt=0, description="quickshift kernel size")
    lime_quickshift_max_dist: float = Field(4.0, gt=0, description="quickshift max distance")
    occlusion_window: int = Field(4, ge=1, le=28, description="occluding square side, pixels")
    occlusion_stride: int = Field(2, ge=1, le=28, description="occlusion stride, pixels")
    seed: int = Field(0, ge=0, description="SHAP, LIME and background sampling")
    faithfulness_samples: int = Field(
        200, ge=2, le=10_000, description="test images of fmnist explain evaluate"
    )
    faithfulness_steps: int = Field(
        28, ge=2, le=784, description="points of each deletion/insertion curve"
    )

    def time_limit_s(self, method: str) -> float:
        """The time limit of one request with ``method``."""
        limit: float = getattr(self, f"{method}_time_limit_s")
        return limit


class BatchSettings(_Section):
    """The offline batch job (``fmnist predict batch``); the model and the unknown verdict come
    from :class:`ServingSettings` (``model_ref``, ``min_confidence``, ``max_image_pixels``)."""

    intra_op_threads: int = Field(
        2, ge=1, le=64, description="ONNX Runtime threads (the job usually has the machine)"
    )
    batch_size: int = Field(1024, ge=1, le=65_536, description="images per ONNX Runtime call")
    array_shard_size: int = Field(
        65_536, ge=1, description="rows per output shard for IDX, NPY, NPZ and Parquet input"
    )
    image_shard_size: int = Field(2_048, ge=1, description="rows per shard for image folders")
    decode_workers: int | None = Field(
        None, ge=1, le=256, description="threads decoding photos; default: usable cores"
    )
    log_predictions: bool = Field(
        True, description="append every predicted row to the prediction log (input kind batch)"
    )


class HpoSettings(_Section):
    """Hyperparameter search with Optuna (``fmnist hpo run``)."""

    storage: str | None = Field(
        None, description="Optuna RDB URL; default sqlite:///<home>/optuna/optuna.db"
    )
    seed: int = Field(0, ge=0, description="seed of the TPE sampler")
    pruner: Literal["median", "hyperband", "none"] = "median"
    pruner_startup_trials: int = Field(
        4, ge=0, description="finished trials before the median pruner starts pruning"
    )
    pruner_warmup_epochs: int = Field(2, ge=0, description="epochs a trial runs before a prune")
    trial_max_minutes: float = Field(20.0, gt=0, description="wall-time cap of one trial")
    min_epochs: int = Field(6, ge=1, le=500, description="lower end of the epochs searched")
    max_epochs: int = Field(16, ge=1, le=500, description="upper end of the epochs searched")

    @model_validator(mode="after")
    def _epoch_range(self) -> HpoSettings:
        if self.min_epochs > self.max_epochs:
            raise ValueError("hpo.min_epochs must not exceed hpo.max_epochs")
        return self


class BenchmarkSettings(_Section):
    """The leaderboard (``fmnist benchmark``) and the classical baselines."""

    latency_runs: int = Field(500, ge=10, description="batch-1 calls timed for the median latency")
    throughput_seconds: float = Field(3.0, gt=0, description="seconds spent timing batch-256 calls")
    ort_threads: int = Field(1, ge=1, le=64, description="ONNX Runtime threads when timing")
    baseline_minutes: float = Field(
        20.0, gt=0, description="wall-time budget of the classical baseline sweep"
    )


class MonitoringSettings(_Section):
    """The durable prediction log, feedback and their compaction (see ``fmnist monitor``).

    ``fsync`` maps to SQLite's ``synchronous`` in WAL mode. ``normal`` (default): every record
    acknowledged by :meth:`~fmnist.monitoring.prediction_log.PredictionLog.append` survives
    ``kill -9`` of the process, because the commit has been written to the operating system
    before ``append`` returns; a machine crash or power loss may lose the last commits (never
    corrupts the file). ``full``: also survives a machine crash (one fsync per commit). ``off``:
    never syncs; still survives ``kill -9`` of the process, but a machine crash may corrupt it.

    ``log_failure`` decides what the API answers while its records cannot be written (a full
    disk, an I/O error): ``fail_closed`` (default) refuses the prediction with a 503, so every
    200 has its record; ``fail_open`` answers and counts the prediction as unlogged. Either way
    the next request tries again: logging resumes by itself once the cause is gone.
    """

    log_enabled: bool = Field(True, description="record every prediction served")
    log_path: Path | None = Field(
        None, description="SQLite file of the log; default <home>/monitoring/predictions.db"
    )
    segments_path: Path | None = Field(
        None,
        description="root of the day-partitioned Parquet segments; default "
        "<lake>/monitoring/predictions for a local lake, else <home>/monitoring/predictions",
    )
    fsync: Literal["off", "normal", "full"] = Field(
        "normal", description="off | normal (survives kill -9) | full (survives a machine crash)"
    )
    busy_timeout_ms: int = Field(
        5000, ge=0, le=600_000, description="wait for another process's write lock"
    )
    journal_move_interval_s: float = Field(
        0.2,
        gt=0,
        le=60,
        description="seconds between the journal mover's passes (API journal -> SQLite log)",
    )
    log_failure: Literal["fail_closed", "fail_open"] = Field(
        "fail_closed",
        description="when a prediction's record cannot be written (disk full): fail_closed "
        "answers 503 (problem log-unavailable), so a 200 always means logged; fail_open answers "
        "200 and counts it in fmnist_prediction_log_unlogged_predictions_total (alert "
        "FmnistPredictionsUnlogged) and the error log",
    )
    retention_days: int = Field(90, ge=1, description="days of predictions and feedback kept")
    image_retention_days: int = Field(
        30,
        ge=0,
        description="days the 28x28 inputs are kept (then cleared, the prediction stays); "
        "0 clears them at every compaction",
    )
    client_id_salt: SecretStr | None = Field(
        None,
        min_length=16,
        description="salt of the hashed X-Client-ID values (share it across replicas); default "
        "a random salt kept in <home>/security/client_id_salt",
    )
    compaction_segment_rows: int = Field(
        100_000, ge=1, description="rows per Parquet segment file when compacting a day"
    )


AlertSeverity = Literal["critical", "warning", "info"]


class DriftAlertSettings(_Section):
    """Alert when the drift monitor's verdict is ``drift_detected`` (its alpha decides)."""

    enabled: bool = True
    severity: AlertSeverity = "warning"


class LiveAccuracyAlertSettings(_Section):
    """Alert when accuracy on labelled traffic (feedback) falls below ``threshold``."""

    enabled: bool = True
    severity: AlertSeverity = "critical"
    threshold: float = Field(0.85, ge=0, le=1)


class ErrorRateAlertSettings(_Section):
    """Alert when the share of 5xx answers of the API's routes exceeds ``threshold``."""

    enabled: bool = True
    severity: AlertSeverity = "critical"
    threshold: float = Field(0.05, ge=0, le=1)


class LatencyAlertSettings(_Section):
    """Alert when the p95 latency of ``/v1/predict`` exceeds ``threshold`` seconds."""

    enabled: bool = True
    severity: AlertSeverity = "warning"
    threshold: float = Field(0.1, gt=0)


class UnknownRateAlertSettings(_Section):
    """Alert when the share of predictions answered 'unknown' exceeds ``threshold``."""

    enabled: bool = True
    severity: AlertSeverity = "warning"
    threshold: float = Field(0.2, ge=0, le=1)


class AlertSettings(_Section):
    """Alert rules evaluated by the monitor on each check, and where alerts are delivered.

    An alert that keeps firing is delivered once per ``cooldown_s``; its resolution once. The
    Prometheus rules in ``monitoring/prometheus/rules/`` use the same default thresholds.
    """

    source: str = Field("fmnist", min_length=1, description="prefix of the deduplication keys")
    cooldown_s: float = Field(3600.0, ge=0, description="repeat a still-firing alert after this")
    min_requests: int = Field(
        100, ge=0, description="API requests a check needs for the error-rate and latency rules"
    )
    min_predictions: int = Field(
        100, ge=0, description="predictions a check needs for the unknown-rate rule"
    )
    min_labelled: int = Field(
        50, ge=0, description="feedback labels a check needs for the live-accuracy rule"
    )
    drift: DriftAlertSettings = Field(default_factory=DriftAlertSettings)
    live_accuracy: LiveAccuracyAlertSettings = Field(default_factory=LiveAccuracyAlertSettings)
    error_rate: ErrorRateAlertSettings = Field(default_factory=ErrorRateAlertSettings)
    latency_p95: LatencyAlertSettings = Field(default_factory=LatencyAlertSettings)
    unknown_rate: UnknownRateAlertSettings = Field(default_factory=UnknownRateAlertSettings)
    webhook_url: str | None = Field(
        None, pattern=r"^https?://", description="POST alerts here (JSON); null: log only"
    )
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of X-Fmnist-Signature (never printed)"
    )
    webhook_timeout_s: float = Field(5.0, gt=0, description="per attempt")
    webhook_retries: int = Field(
        3, ge=0, le=10, description="retries after the first attempt (connection errors, 5xx)"
    )
    webhook_backoff_s: float = Field(
        0.5, ge=0, description="first retry delay, doubled on each retry (capped at 30 s)"
    )


class RolloutSettings(_Section):
    """How the default route splits traffic between the champion and a challenger.

    ``ab``: each client (``X-Client-ID`` header, else its request id) is assigned sticky to an
    arm by hashing its id with ``experiment``; ``share`` of the clients get the challenger.
    ``shadow``: the champion answers every request; the challenger scores the same inputs
    after the response, and both predictions are logged with their arm. ``canary``: as ``ab``,
    with ``share`` moved along ``canary_steps`` by ``fmnist ab canary`` while the guards hold
    (rolled back to the champion when one fails). The admin API (``PUT /v1/admin/rollout``)
    changes these at run time; every change is audited.
    """

    mode: Literal["off", "ab", "shadow", "canary"] = Field(
        "off", description="off | ab | shadow | canary"
    )
    experiment: str = Field(
        "default",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="name of the experiment; the salt of the sticky assignment",
    )
    challenger: str = Field(
        "challenger", min_length=1, description="model reference of the challenger arm"
    )
    share: float = Field(
        0.1, ge=0, le=1, description="share of clients on the challenger (ab, canary)"
    )
    canary_steps: list[float] = Field(
        default_factory=lambda: [0.05, 0.25, 0.5, 1.0],
        min_length=1,
        description="the challenger's shares of a canary, in order",
    )
    canary_min_requests: int = Field(
        200, ge=1, description="challenger requests at a step before the canary advances"
    )
    guard_latency_ratio: float = Field(
        1.5, gt=1, description="roll back when the challenger's p95 latency exceeds this ratio"
    )
    guard_unknown_increase: float = Field(
        0.05, gt=0, le=1, description="roll back when its unknown rate is this much higher"
    )
    guard_latency_slack_ms: float = Field(
        5.0, ge=0, description="p95 differences below this are noise, never a latency breach"
    )
    guard_error_increase: float = Field(
        0.01, gt=0, le=1, description="roll back when its error rate is this much higher"
    )
    shadow_min_requests: int = Field(
        200, ge=1, description="shadow-scored requests before a shadow moves on to a canary"
    )
    alpha: float = Field(
        0.05, gt=0, lt=1, description="significance of the live-accuracy guard (always-valid)"
    )
    audit_path: Path | None = Field(
        None, description="append-only audit log; default <home>/rollout/audit.jsonl"
    )


class RetrainingSettings(_Section):
    """Automated retraining: triggers, storm protection, the data it adds, what follows.

    Triggers: drift detected by the monitor, a schedule, enough new labelled feedback, or a
    person (``fmnist retrain``). One retrain runs at a time (a lock); a trigger within
    ``cooldown_s`` of the last retrain is recorded as skipped. The candidate is trained by the
    ``training`` pipeline on the registered snapshot plus the labelled feedback of the window,
    part of which is held out as the drifted-window gate.
    """

    auto: bool = Field(False, description="the monitor (fmnist monitor run) acts on triggers")
    preset: str = Field("quick", min_length=1, description="training preset of a retrain")
    cooldown_s: float = Field(6 * 3600.0, ge=0, description="quiet time after a retrain")
    schedule_interval_h: float | None = Field(
        None, gt=0, description="retrain at least this often (hours); none: no schedule"
    )
    min_new_feedback: int = Field(
        1000, ge=1, description="new labelled feedback that triggers a retrain"
    )
    holdout_fraction: float = Field(
        0.3, gt=0, lt=1, description="share of the window's feedback held out as its gate"
    )
    feedback_weight: int = Field(
        5, ge=1, le=100, description="copies of each feedback image in the training split"
    )
    min_feedback: int = Field(
        30, ge=1, description="labelled window items a retrain needs (train and holdout)"
    )
    rollout: Literal["shadow", "canary", "none"] = Field(
        "shadow", description="how a candidate that passed its gates starts serving"
    )


class DriftSettings(_Section):
    """Label-free drift detection (``fmnist monitor drift`` and ``fmnist monitor run``).

    The verdict combines the tests with Holm's correction, so an unshifted window raises a
    false alarm with probability at most ``alpha``. ``pca_dims`` and ``reference_size`` apply
    when a reference is computed (at registration); the others on every check.
    """

    alpha: float = Field(0.05, gt=0, lt=1, description="false-alarm rate of the verdict")
    window: int = Field(1000, ge=10, description="latest predictions checked by default")
    min_window: int = Field(50, ge=10, description="fewer predictions are not checked")
    mmd_permutations: int = Field(
        200, ge=20, le=10_000, description="permutations of the MMD test (p-value >= 1/(B+1))"
    )
    mmd_reference_size: int = Field(
        1000, ge=10, description="reference embeddings (seeded subsample) the MMD test uses"
    )
    pca_dims: int = Field(32, ge=1, le=1024, description="embedding dimensions kept by the PCA")
    reference_size: int = Field(
        10_000, ge=100, description="validation images kept in a reference (seeded subsample)"
    )
    min_feedback: int = Field(30, ge=1, description="labelled predictions live accuracy needs")
    seed: int = Field(0, ge=0, description="reference subsampling and MMD permutations")
    interval_s: float = Field(300.0, gt=0, description="pause between checks of monitor run")
    metrics_port: int = Field(
        9108, ge=0, le=65535, description="Prometheus gauges of monitor run; 0 disables"
    )
    metrics_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="address the gauges listen on (0.0.0.0 in a container, for Prometheus)",
    )
    write_reports: bool = Field(
        True, description="write the Evidently HTML + JSON report of every check"
    )


StorageAdapter = Literal["local", "gcs", "s3"]
RegistryAdapter = Literal["mlflow", "vertex", "exported"]
AnalyticsAdapter = Literal["duckdb", "bigquery"]
EventsAdapter = Literal["local-queue", "pubsub"]
OrchestrationAdapter = Literal["local", "kfp-local", "kubeflow", "vertex-pipelines"]


class PortSettings(_Section):
    """Per-port overrides of the adapters the profile chooses (``null``: the profile's choice).

    ``fmnist config show`` prints, per port, the adapter chosen and why.
    """

    storage: StorageAdapter | None = Field(None, description="data lake and artifacts")
    registry: RegistryAdapter | None = Field(None, description="tracking and model registry")
    analytics: AnalyticsAdapter | None = Field(None, description="prediction logs, KPIs")
    events: EventsAdapter | None = Field(None, description="prediction and feedback events")
    orchestration: OrchestrationAdapter | None = Field(None, description="pipeline runner")


class GcpSettings(_Section):
    """Google Cloud settings used by the ``gcp`` profile."""

    project: str | None = None
    region: str = "europe-west4"
    bucket: str | None = None
    bigquery_dataset: str = Field("fmnist", min_length=1, description="analytics dataset")
    pubsub_topic_prefix: str = Field("fmnist", min_length=1, description="topic name prefix")
    bigquery_emulator_url: str | None = Field(
        None,
        description="http://host:port of a BigQuery emulator (tests, a laptop): anonymous "
        "credentials; Pub/Sub and GCS emulators are found through PUBSUB_EMULATOR_HOST and "
        "STORAGE_EMULATOR_HOST",
    )
    pipeline_root: str | None = Field(None, description="gs:// root of Vertex AI pipeline runs")
    service_account: str | None = Field(
        None, description="service account e-mail the Vertex AI pipeline jobs run as"
    )
    kms_key: str | None = Field(
        None, description="Cloud KMS key (CMEK) of pipeline jobs and their outputs"
    )
    network: str | None = Field(
        None, description="VPC network of pipeline jobs: projects/<number>/global/networks/<n>"
    )
    labels: dict[str, str] = Field(
        default_factory=lambda: {"app": "fmnist"}, description="labels of every GCP resource"
    )
    dataflow_machine_type: str = Field("n2-standard-4", description="Dataflow worker type")
    dataflow_image: str | None = Field(
        None, description="SDK container image of Dataflow workers (the batch worker image)"
    )


class AgnosticSettings(_Section):
    """Cloud-agnostic settings used by the ``agnostic`` profile (S3-compatible object store)."""

    object_store_url: str | None = Field(None, description="for example s3://fmnist (MinIO)")
    kubeflow_host: str | None = Field(
        None, description="Kubeflow Pipelines API, e.g. http://ml-pipeline-ui.kubeflow:80"
    )


class Settings(BaseSettings):
    """Effective configuration of fmnist; build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        validate_assignment=True,
    )

    profile: Profile = Field("local", description="selects the adapters: local | gcp | agnostic")
    home: Path = Field(Path("data"), description="local working folder (lake, tracking, logs)")
    lake_url: str | None = Field(
        None, description="data lake root, any fsspec URL; default depends on the profile"
    )
    data_dir: Path | None = Field(None, description="a folder holding the four IDX files")
    cache_dir: Path = Field(default_factory=_default_cache_dir)
    debian_data_dir: Path = Path("/usr/share/datasets/fashion-mnist")
    data: DataSettings = Field(default_factory=DataSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    gates: GateSettings = Field(default_factory=GateSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    explain: ExplainSettings = Field(default_factory=ExplainSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    hpo: HpoSettings = Field(default_factory=HpoSettings)
    benchmark: BenchmarkSettings = Field(default_factory=BenchmarkSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    retraining: RetrainingSettings = Field(default_factory=RetrainingSettings)
    ports: PortSettings = Field(default_factory=PortSettings)
    gcp: GcpSettings = Field(default_factory=GcpSettings)
    agnostic: AgnosticSettings = Field(default_factory=AgnosticSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then the YAML file's values (passed as init arguments)."""
        return (env_settings, init_settings)

    @property
    def resolved_lake_url(self) -> str:
        """The data lake root: ``lake_url`` if set, else the profile's default location.

        Raises :class:`~fmnist.errors.ConfigError` when the profile's location is not configured
        (``gcp.bucket`` for ``gcp``, ``agnostic.object_store_url`` for ``agnostic``).
        """
        if self.lake_url:
            return self.lake_url
        if self.profile == "gcp":
            if not self.gcp.bucket:
                raise ConfigError("profile 'gcp' needs gcp.bucket (or an explicit lake_url)")
            return f"gs://{self.gcp.bucket}/lake"
        if self.profile == "agnostic":
            if not self.agnostic.object_store_url:
                raise ConfigError(
                    "profile 'agnostic' needs agnostic.object_store_url (or an explicit lake_url)"
                )
            return f"{self.agnostic.object_store_url.rstrip('/')}/lake"
        return str(self.home / "lake")

    @property
    def resolved_tracking_uri(self) -> str:
        """The MLflow tracking URI: configured, or a SQLite file under ``home``."""
        if self.tracking.tracking_uri:
            return self.tracking.tracking_uri
        return f"sqlite:///{(self.home / 'mlflow' / 'mlflow.db').resolve()}"

    @property
    def resolved_optuna_storage(self) -> str:
        """The Optuna study storage URL: configured, or a SQLite file under ``home``."""
        if self.hpo.storage:
            return self.hpo.storage
        return f"sqlite:///{(self.home / 'optuna' / 'optuna.db').resolve()}"

    @property
    def resolved_artifact_root(self) -> str | None:
        """Where MLflow stores artifacts of new experiments: configured, else the tracking
        server's own store (None: e.g. S3 behind ``mlflow server --artifacts-destination``),
        else a folder under ``home`` for a local store."""
        if self.tracking.artifact_root:
            return self.tracking.artifact_root
        if self.resolved_tracking_uri.startswith(("http://", "https://")):
            return None
        return (self.home / "mlflow" / "artifacts").resolve().as_uri()


_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def mask_secrets(value: str) -> str:
    """``value`` with the user and password of any URL in it replaced by ``***``."""
    return _URL_USERINFO.sub(r"\g<scheme>***@", value)


def settings_json_with_secrets(settings: Settings) -> str:
    """``settings`` as JSON with secret values revealed, for handing the effective settings to
    a child process through its environment (never print or log the result)."""

    def reveal(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, Mapping):
            return {k: reveal(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [reveal(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return json.dumps(reveal(settings.model_dump(mode="python")))


@dataclass(frozen=True)
class SettingValue:
    """One leaf of the effective settings and the place its value came from."""

    key: str
    value: Any
    source: str


@dataclass(frozen=True)
class LoadedSettings:
    """Settings plus the provenance of each leaf key."""

    settings: Settings
    sources: Mapping[str, str]

    def explain(self) -> Iterator[SettingValue]:
        """Yield every leaf setting with its value and source, in declaration order."""
        for key, value in _flatten(self.settings.model_dump(mode="json")):
            shown = mask_secrets(value) if isinstance(value, str) else value
            yield SettingValue(key, shown, self.sources.get(key, "default"))


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, f"{dotted}.")
        else:
            yield dotted, value


def env_var_name(key: str) -> str:
    """The environment variable that sets a dotted key, e.g. ``data.val_fraction``."""
    return ENV_PREFIX + key.replace(".", ENV_NESTED_DELIMITER).upper()


def _yaml_key_lines(text: str) -> dict[str, int]:
    """Map each dotted key of a YAML mapping to its 1-based line number."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                dotted = f"{prefix}{key_node.value}"
                lines[dotted] = key_node.start_mark.line + 1
                walk(value_node, f"{dotted}.")

    root = yaml.compose(text)
    if root is not None:
        walk(root, "")
    return lines


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
        lines = _yaml_key_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}: {problem}") from exc
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the config file must be a mapping of setting names")
    return data, lines


def load_settings(config_file: Path | str | None = None) -> LoadedSettings:
    """Build the effective settings from defaults, a YAML file and ``FMNIST_*`` variables.

    ``config_file`` defaults to ``$FMNIST_CONFIG`` when set. Invalid values raise
    :class:`~fmnist.errors.ConfigError` naming the key and where the value came from.
    """
    path_text = config_file if config_file is not None else os.environ.get(CONFIG_ENV_VAR)
    path = Path(path_text) if path_text else None
    yaml_data, yaml_lines = _read_yaml(path) if path else ({}, {})

    try:
        env_data = EnvSettingsSource(Settings)()
    except SettingsError as exc:
        raise ConfigError(f"invalid FMNIST_* environment variable: {exc}") from exc

    sources: dict[str, str] = {}
    for key, _ in _flatten(yaml_data):
        sources[key] = f"{path}:{yaml_lines.get(key, 1)}"
    for key, _ in _flatten(env_data):
        sources[key] = f"env {env_var_name(key)}"

    try:
        settings = Settings(**yaml_data)
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, sources)) from exc
    return LoadedSettings(settings, sources)


def _describe_validation_error(exc: ValidationError, sources: Mapping[str, str]) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        origin = sources.get(key) or _closest_source(key, sources)
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        elif key and "input" in error and not isinstance(error["input"], dict):
            message = f"{message} (got {error['input']!r})"
        label = f"setting '{key}'" if key else "settings"
        problems.append(f"{label}: {message} [from {origin}]")
    return "invalid " + "; ".join(problems)


def _closest_source(key: str, sources: Mapping[str, str]) -> str:
    for known, origin in sources.items():
        if known.startswith(f"{key}.") or key.startswith(f"{known}."):
            return origin
    return "defaults" if not key else "default"
