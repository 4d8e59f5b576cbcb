"""Hyperparameter search with Optuna over the CNN and ResNet families (the AutoML baseline).

A study samples learning rate, width, depth, dropout, weight decay, augmentation strength,
label smoothing and epochs with a seeded TPE sampler. Every epoch's validation accuracy is
reported to a pruner (median or Hyperband) through the trainer's ``on_epoch_end`` hook, so weak
trials stop early. The search has a wall-clock budget (Optuna's ``timeout`` plus a per-trial
time cap that never runs past it). Each trial is an MLflow run nested under one parent run per
invocation. The study lives in an RDB URL: SQLite under ``home`` by default; point
``hpo.storage`` (or ``--storage``) at PostgreSQL and start the same command on many machines to
scale out. Runs are resumable: ``--trials N`` means "until the study holds N finished trials".

The best trial's config is then retrained with :func:`~fmnist.training.run.train_and_log` and
registered by :func:`~fmnist.evaluation.run.evaluate_and_register` as ``hpo-<family>``: it is
always registered, and promoted to that model's champion only when the gates pass.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from fmnist.config import HpoSettings, Settings
from fmnist.errors import ConfigError, FmnistError
from fmnist.registry.runs import flatten_params
from fmnist.training.config import TrainConfig, make_config

if TYPE_CHECKING:
    import optuna

    from fmnist.data.snapshot import Snapshot
    from fmnist.evaluation.run import EvaluationOutcome
    from fmnist.platform.registry import ModelRegistry
    from fmnist.platform.services import Services
    from fmnist.training.run import TrainedRun
    from fmnist.training.trainer import EpochRecord, TrainResult

Family = Literal["cnn", "resnet"]
FAMILIES: tuple[Family, ...] = ("cnn", "resnet")
BASE_PRESETS: dict[Family, str] = {"cnn": "default", "resnet": "resnet"}
"""The preset a family's trials start from unless ``--preset-base`` names another."""

AUGMENT_LEVELS: tuple[dict[str, float], ...] = (
    {"crop_padding": 0, "hflip_p": 0.0, "erasing_p": 0.0},
    {"crop_padding": 1, "hflip_p": 0.5, "erasing_p": 0.0},
    {"crop_padding": 2, "hflip_p": 0.5, "erasing_p": 0.0},
    {"crop_padding": 2, "hflip_p": 0.5, "erasing_p": 0.25},
    {"crop_padding": 3, "hflip_p": 0.5, "erasing_p": 0.5},
)
"""Augmentation strength 0..4 -> the batch augmentation it stands for."""

STEP_STUDY = "hpo"
STEP_TRIAL = "hpo-trial"


class HpoError(FmnistError):
    """The search could not produce a model (for example: no trial completed)."""

    exit_code = 1


class SearchSpace(BaseModel):
    """Ranges searched; ``(low, high)`` pairs are inclusive, tuples of values are categorical.

    Stage ``i`` of a model gets ``base_width * 2**i`` channels, so widths stay multiples of 32
    (bf16 convolutions on this kind of CPU are far slower for other widths).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    lr: tuple[float, float] = (5e-4, 1e-2)
    weight_decay: tuple[float, float] = (1e-4, 0.2)
    base_width: tuple[int, ...] = (32, 64)
    depth: tuple[int, int] = (2, 3)
    blocks: tuple[int, int] = (1, 2)
    dropout: tuple[float, float] = (0.0, 0.4)
    augment_strength: tuple[int, int] = (0, len(AUGMENT_LEVELS) - 1)
    label_smoothing: tuple[float, float] = (0.0, 0.15)
    epochs: tuple[int, int] = (6, 16)

    @field_validator("base_width")
    @classmethod
    def _multiples_of_32(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(w <= 0 or w % 32 for w in value):
            raise ValueError(f"base widths must be positive multiples of 32, got {value}")
        return value

    @field_validator("depth")
    @classmethod
    def _depth(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1] <= 4:
            raise ValueError(f"depth must be a range within 1..4 stages, got {value}")
        return value

    @field_validator("augment_strength")
    @classmethod
    def _strength(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= value[0] <= value[1] < len(AUGMENT_LEVELS):
            raise ValueError(f"augment strength must be within 0..{len(AUGMENT_LEVELS) - 1}")
        return value

    @classmethod
    def from_settings(cls, hpo: HpoSettings) -> SearchSpace:
        """The default space with the epoch range of the settings."""
        return cls(epochs=(hpo.min_epochs, hpo.max_epochs))


def suggest_config(
    trial: optuna.trial.BaseTrial, family: Family, base: TrainConfig, space: SearchSpace
) -> TrainConfig:
    """The training config of ``trial``: ``base`` with the searched values of ``family``."""
    lr = trial.suggest_float("lr", *space.lr, log=True)
    weight_decay = trial.suggest_float("weight_decay", *space.weight_decay, log=True)
    base_width = int(trial.suggest_categorical("base_width", list(space.base_width)))
    depth = trial.suggest_int("depth", *space.depth)
    blocks = trial.suggest_int("blocks", *space.blocks)
    dropout = trial.suggest_float("dropout", *space.dropout)
    strength = trial.suggest_int("augment_strength", *space.augment_strength)
    label_smoothing = trial.suggest_float("label_smoothing", *space.label_smoothing)
    epochs = trial.suggest_int("epochs", *space.epochs)

    widths = [base_width * 2**i for i in range(depth)]
    options: dict[str, Any] = dict(base.model_options) if base.model == family else {}
    options |= {"widths": widths, "dropout": dropout}
    options["convs_per_stage" if family == "cnn" else "blocks_per_stage"] = blocks
    values = base.model_dump() | {
        "model": family,
        "model_options": options,
        "lr": lr,
        "weight_decay": weight_decay,
        "augment": AUGMENT_LEVELS[strength],
        "label_smoothing": label_smoothing,
        "epochs": epochs,
    }
    return TrainConfig.model_validate(values)


def make_pruner(hpo: HpoSettings, max_epochs: int) -> optuna.pruners.BasePruner:
    """The configured pruner: median of earlier trials at the same epoch, Hyperband, or none."""
    import optuna

    if hpo.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=hpo.pruner_startup_trials, n_warmup_steps=hpo.pruner_warmup_epochs
        )
    if hpo.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, hpo.pruner_warmup_epochs),
            max_resource=max(max_epochs, 1),
            reduction_factor=3,
        )
    return optuna.pruners.NopPruner()


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to print and log)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_storage_url(url: str) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage for ``url`` (a SQLite file's folder is created), with heartbeats
    so that trials of a crashed worker are marked failed by the next one."""
    import optuna

    guard: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        guard = _file_lock(path.with_name(path.name + ".lock"))  # workers starting together
    with guard, warnings.catch_warnings():  # heartbeats: "experimental" since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=180)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` for the block: one process creates (and migrates)
    a new SQLite study database while the others wait."""
    import fcntl

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class HpoOutcome:
    """What a search did and produced."""

    study_name: str
    storage: str
    family: Family
    parent_run_id: str
    new_trials: int
    states: dict[str, int]
    best_trial: int
    best_value: float
    best_params: dict[str, Any]
    best_config: TrainConfig
    registered_model: str
    trained: TrainedRun | None = None
    evaluation: EvaluationOutcome | None = None
    stopped_by_budget: bool = False
    seconds: float = 0.0
    trials_csv: Path | None = None
    notes: list[str] = field(default_factory=list)


def _base_config(family: Family, preset_base: str | None) -> TrainConfig:
    if family not in FAMILIES:
        raise ConfigError(f"unknown family {family!r}; choose one of: {', '.join(FAMILIES)}")
    return make_config(preset_base or BASE_PRESETS[family])


def _finished_counts(study: optuna.Study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    return counts


class _Objective:
    """Trains one trial's config, reporting each epoch to the pruner and to MLflow."""

    def __init__(
        self,
        *,
        settings: Settings,
        registry: ModelRegistry,
        snapshot: Snapshot,
        family: Family,
        base: TrainConfig,
        space: SearchSpace,
        study_name: str,
        parent_run_id: str,
        deadline: float,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.snapshot = snapshot
        self.family = family
        self.base = base
        self.space = space
        self.study_name = study_name
        self.parent_run_id = parent_run_id
        self.deadline = deadline

    def _max_minutes(self) -> float:
        left = max(self.deadline - time.monotonic(), 1.0) / 60
        caps = [self.settings.hpo.trial_max_minutes, left]
        if self.base.max_minutes is not None:
            caps.append(self.base.max_minutes)
        return min(caps)

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        from fmnist.training.trainer import train

        config = suggest_config(trial, self.family, self.base, self.space)
        config = config.model_copy(update={"max_minutes": self._max_minutes()})
        trial.set_user_attr("config", config.model_dump(mode="json"))
        trial.set_user_attr("config_hash", config.config_hash())
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        tags = {
            "fmnist.step": STEP_TRIAL,
            "fmnist.study": self.study_name,
            "fmnist.trial": str(trial.number),
            "fmnist.family": self.family,
            "fmnist.snapshot_id": self.snapshot.snapshot_id,
            "fmnist.config_hash": config.config_hash(),
        }
        name = f"{self.study_name}-trial-{trial.number}"
        registry = self.registry
        reported: list[int] = []
        result: TrainResult | None = None
        with registry.open_run(name, tags, self.parent_run_id) as run_id:
            trial.set_user_attr("mlflow_run_id", run_id)
            params = flatten_params(config.model_dump(mode="json"))
            params |= {f"hp.{k}": v for k, v in trial.params.items()}
            registry.log_params(run_id, params)

            def on_epoch_end(record: EpochRecord) -> None:
                registry.log_metrics(
                    run_id,
                    {
                        "train_loss": record.train_loss,
                        "val_loss": record.val_loss,
                        "val_accuracy": record.val_accuracy,
                        "epoch_seconds": record.seconds,
                    },
                    step=record.epoch,
                )
                trial.report(record.val_accuracy, record.epoch)
                reported.append(record.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(
                        f"trial {trial.number} pruned at epoch {record.epoch} "
                        f"(validation accuracy {record.val_accuracy:.4f})"
                    )

            folder = self.settings.home / "optuna"
            folder.mkdir(parents=True, exist_ok=True)
            # A prune ends the trainer cleanly (its checkpoint is complete) and is recorded in
            # this run before Optuna sees it, so the MLflow run ends FINISHED.
            with (
                tempfile.TemporaryDirectory(dir=folder, prefix="trial-") as tmp,
                contextlib.suppress(optuna.TrialPruned),
            ):
                result = train(
                    config,
                    self.snapshot,
                    Path(tmp) / "checkpoint.pt",
                    show_progress=False,
                    on_epoch_end=on_epoch_end,
                )
            if result is None:
                registry.set_run_tag(run_id, "optuna.state", "PRUNED")
                registry.log_metrics(run_id, {"pruned_at_epoch": reported[-1] if reported else 0})
            else:
                registry.set_run_tag(run_id, "optuna.state", "COMPLETE")
                registry.log_params(
                    run_id, {"precision_used": result.precision, "parameters": result.parameters}
                )
                registry.log_metrics(
                    run_id,
                    {
                        "best_val_accuracy": result.best_val_accuracy,
                        "best_epoch": result.best_epoch,
                        "train_seconds": result.train_seconds,
                    },
                )
                trial.set_user_attr("stopped", result.stopped)
                trial.set_user_attr("train_seconds", result.train_seconds)
        if result is None:
            epoch = reported[-1] if reported else 0
            raise optuna.TrialPruned(f"trial {trial.number} pruned at epoch {epoch}")
        return result.best_val_accuracy


def run_hpo(
    services: Services,
    *,
    family: Family = "cnn",
    trials: int = 20,
    budget_minutes: float = 60.0,
    study_name: str | None = None,
    storage: str | None = None,
    preset_base: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    space: SearchSpace | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    snapshot_id: str | None = None,
    retrain: bool = True,
    quantize: bool = True,
    model_name: str | None = None,
    show_progress: bool = False,
    on_trial_end: Callable[[optuna.trial.FrozenTrial], None] | None = None,
) -> HpoOutcome:
    """Search ``family`` until the study holds ``trials`` finished trials or the budget ends.

    ``overrides`` are applied to the base preset (for example ``train_subset``). With
    ``retrain`` the best trial's config is retrained, evaluated and registered as
    ``model_name`` (default ``hpo-<family>``).
    """
    import optuna

    from fmnist.data.snapshot import load_snapshot

    settings = services.settings
    started = time.monotonic()
    base = _base_config(family, preset_base)
    if overrides:
        base = TrainConfig.model_validate(
            base.model_dump() | {k: v for k, v in overrides.items() if v is not None}
        )
    space = space or SearchSpace.from_settings(settings.hpo)
    study_name = study_name or f"fmnist-{family}"
    model_name = model_name or f"hpo-{family}"
    url = storage or settings.resolved_optuna_storage
    snapshot = load_snapshot(services.storage, snapshot_id)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rdb = open_storage_url(url)
    study = optuna.create_study(
        storage=rdb,
        study_name=study_name,
        direction="maximize",
        load_if_exists=True,
        pruner=pruner or make_pruner(settings.hpo, space.epochs[1]),
        sampler=optuna.samplers.TPESampler(seed=settings.hpo.seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    known = (study.user_attrs.get("family"), study.user_attrs.get("base_config_hash"))
    if known != (None, None) and known != (family, base.config_hash()):
        raise ConfigError(
            f"study {study_name!r} searches {known[0]} from base config {known[1]}, not "
            f"{family} from {base.config_hash()}: use the same --family, --preset-base and "
            "--train-subset, or another --study"
        )
    study.set_user_attr("family", family)
    study.set_user_attr("base_config_hash", base.config_hash())
    existing = study.get_trials(deepcopy=False)
    if existing:  # a resumed study or another worker: do not replay the same samples
        study.sampler = optuna.samplers.TPESampler(seed=settings.hpo.seed + len(existing))
    finished_states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    finished = sum(t.state in finished_states for t in existing)
    to_run = max(trials - finished, 0)

    registry = services.registry()
    budget_s = budget_minutes * 60
    deadline = started + budget_s
    tags = {
        "fmnist.step": STEP_STUDY,
        "fmnist.study": study_name,
        "fmnist.family": family,
        "fmnist.snapshot_id": snapshot.snapshot_id,
    }
    run_name = f"{study_name}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    before = len(existing)
    with registry.open_run(run_name, tags) as parent:
        registry.log_params(
            parent,
            {
                "family": family,
                "trials_target": trials,
                "trials_to_run": to_run,
                "budget_minutes": budget_minutes,
                "storage": redact_url(url),
                "base_config_hash": base.config_hash(),
                "sampler": f"TPE(seed={settings.hpo.seed})",
                "pruner": type(study.pruner).__name__,
            }
            | {f"space.{k}": v for k, v in space.model_dump().items()},
        )
        objective = _Objective(
            settings=settings,
            registry=registry,
            snapshot=snapshot,
            family=family,
            base=base,
            space=space,
            study_name=study_name,
            parent_run_id=parent,
            deadline=deadline,
        )
        # Stops every worker sharing the study once it holds ``trials`` finished trials.
        callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [
            optuna.study.MaxTrialsCallback(trials, states=finished_states)
        ]
        if on_trial_end is not None:
            callback = on_trial_end

            def _report(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
                callback(trial)

            callbacks.append(_report)
        if to_run:
            study.optimize(objective, n_trials=to_run, timeout=budget_s, callbacks=callbacks)
        new_trials = len(study.get_trials(deepcopy=False)) - before
        states = _finished_counts(study)
        finished_now = sum(states.get(state.name, 0) for state in finished_states)
        stopped_by_budget = finished_now < trials and time.monotonic() - started >= budget_s
        completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not completed:
            raise HpoError(
                f"study {study_name!r} has no completed trial ({states}); "
                "raise --budget-minutes or --trials, or loosen the pruner"
            )
        best = study.best_trial
        trials_csv = settings.home / "optuna" / f"{study_name}-trials.csv"
        _write_trials_csv(study, trials_csv)
        registry.log_artifact(parent, trials_csv, "hpo")
        registry.log_metrics(
            parent,
            {
                "best_val_accuracy": float(best.value or 0.0),
                "best_trial": best.number,
                "trials_complete": states.get("COMPLETE", 0),
                "trials_pruned": states.get("PRUNED", 0),
                "trials_failed": states.get("FAIL", 0),
                "search_seconds": time.monotonic() - started,
            },
        )
        registry.set_run_tag(parent, "fmnist.best_trial", str(best.number))

    best_config = TrainConfig.model_validate(best.user_attrs["config"]).model_copy(
        update={"max_minutes": base.max_minutes}
    )
    outcome = HpoOutcome(
        study_name=study_name,
        storage=redact_url(url),
        family=family,
        parent_run_id=parent,
        new_trials=new_trials,
        states=states,
        best_trial=best.number,
        best_value=float(best.value or 0.0),
        best_params=dict(best.params),
        best_config=best_config,
        registered_model=model_name,
        stopped_by_budget=stopped_by_budget,
        trials_csv=trials_csv,
    )
    if retrain:
        outcome.trained, outcome.evaluation = retrain_and_register(
            services,
            best_config,
            snapshot_id=snapshot.snapshot_id,
            model_name=model_name,
            tags={"fmnist.study": study_name, "fmnist.trial": str(best.number)},
            quantize=quantize,
            show_progress=show_progress,
        )
    outcome.seconds = time.monotonic() - started
    return outcome


def retrain_and_register(
    services: Services,
    config: TrainConfig,
    *,
    snapshot_id: str,
    model_name: str,
    tags: Mapping[str, str] | None = None,
    quantize: bool = True,
    show_progress: bool = False,
) -> tuple[TrainedRun, EvaluationOutcome]:
    """Train ``config`` with full tracking and ONNX export, then evaluate and register it as
    ``model_name`` (promoted to that model's champion only when the gates pass)."""
    from fmnist.evaluation.run import evaluate_and_register
    from fmnist.training.run import train_and_log

    trained = train_and_log(services, config, snapshot_id=snapshot_id, show_progress=show_progress)
    if tags:
        registry = services.registry()
        for key, value in tags.items():
            registry.set_run_tag(trained.run_id, key, value)
    evaluation = evaluate_and_register(
        services, trained.run_id, model_name=model_name, quantize=quantize
    )
    return trained, evaluation


def _write_trials_csv(study: optuna.Study, path: Path) -> None:
    from fmnist.atomic import atomic_write_text

    frame = study.trials_dataframe(attrs=("number", "value", "state", "params", "duration"))
    atomic_write_text(path, frame.to_csv(index=False))
