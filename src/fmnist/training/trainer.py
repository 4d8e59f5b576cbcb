"""The PyTorch trainer: seeded, fast on CPU, checkpointed every epoch and resumable.

One epoch = one pass over the in-memory training split with batch augmentations, a one-cycle
learning-rate schedule stepped per batch, then an fp32 evaluation of the validation split. The
checkpoint written after each epoch holds everything needed to continue bit-for-bit (weights,
optimiser, scheduler, RNG state, history, best weights), so ``resume=True`` ends with the same
result as an uninterrupted run.

Three hooks extend the loop without a second copy of it (domain adaptation uses them): the
starting weights (``init_state``), the per-batch loss (``objective``, default: cross-entropy with
the config's label smoothing) and which weights come back (``keep``: the best epoch's or the
last epoch's).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from fmnist.atomic import atomic_write_bytes
from fmnist.data.augment import Augmentation
from fmnist.data.loaders import TensorBatches, to_tensor
from fmnist.data.snapshot import Snapshot
from fmnist.errors import FmnistError
from fmnist.models import build_model, count_parameters
from fmnist.training.config import TrainConfig
from fmnist.training.distributed import any_rank, is_primary, shard_indices, world
from fmnist.training.precision import Precision, autocast, resolve_precision, torch_threads

CHECKPOINT_FORMAT = 1

BatchLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""The loss of one training batch, ``(x, y) -> scalar``: ``x`` is normalised, augmented and in the
trainer's memory format (channels-last unless the config turns it off), ``y`` its labels."""

Objective = Callable[[nn.Module, Precision], BatchLoss]
"""Builds the :data:`BatchLoss` for the model being trained, once: called after the model is
built (and ``init_state`` loaded), before the optimiser, with the precision of the run."""

Keep = Literal["best", "last"]
"""Which weights :func:`train` returns: the best validation epoch's or the final epoch's."""


class TrainingInterruptedError(FmnistError):
    """Training was interrupted (Ctrl-C); the last completed epoch is in the checkpoint."""

    exit_code = 130


class CheckpointMismatchError(FmnistError):
    """A checkpoint was made with another configuration or snapshot than the one requested."""


@dataclass(frozen=True)
class EpochRecord:
    """Metrics of one completed epoch."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    lr: float
    seconds: float


@dataclass
class TrainResult:
    """The outcome of :func:`train`: the best model (eval mode, fp32) and how it was made."""

    model: nn.Module
    config: TrainConfig
    snapshot_id: str
    history: list[EpochRecord]
    best_epoch: int
    best_val_accuracy: float
    precision: Precision
    threads: int
    parameters: int
    train_seconds: float
    stopped: str
    checkpoint: Path


def predict_logits(
    model: nn.Module,
    images: npt.NDArray[np.uint8],
    batch_size: int = 1024,
    channels_last: bool = True,
) -> npt.NDArray[np.float32]:
    """fp32 logits of ``model`` for uint8 images ``(N, 28, 28)``, in eval mode."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = to_tensor(images[start : start + batch_size])
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            outputs.append(model(x).float())
    if not outputs:
        return np.zeros((0, 10), dtype=np.float32)
    result: npt.NDArray[np.float32] = torch.cat(outputs).numpy()
    return result


def no_decay_parameter_names(model: nn.Module) -> set[str]:
    """Parameter names never decayed: biases and norms (1-D) and what the model lists.

    A model lists its own exemptions in ``no_weight_decay()`` (for example a ViT's position
    embedding and class token, which decay would pull towards zero).
    """
    listed = getattr(model, "no_weight_decay", None)
    named: set[str] = set(listed()) if callable(listed) else set()
    return {n for n, p in model.named_parameters() if p.ndim <= 1 or n in named}


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (or Nesterov SGD) with weight decay on all but :func:`no_decay_parameter_names`."""
    exempt = no_decay_parameter_names(model)
    decay = [p for n, p in model.named_parameters() if n not in exempt]
    no_decay = [p for n, p in model.named_parameters() if n in exempt]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.lr)


def cross_entropy_objective(config: TrainConfig) -> Objective:
    """The default objective: cross-entropy with ``config.label_smoothing``, under autocast."""

    def build(model: nn.Module, precision: Precision) -> BatchLoss:
        def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with autocast(precision):
                return F.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)

        return loss

    return build


def _state_bytes(state: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`train`."""
    # weights_only: tensors and plain values only, so a tampered file cannot run code.
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointMismatchError(f"{path}: not an fmnist checkpoint of format 1")
    return state


def model_from_checkpoint(path: Path, *, best: bool = True) -> tuple[nn.Module, TrainConfig]:
    """Rebuild the model stored in a checkpoint (its best weights by default)."""
    state = load_checkpoint(path)
    config = TrainConfig.model_validate(state["config"])
    model = build_model(config.model, **config.model_options)
    model.load_state_dict(state["best_model"] if best else state["model"])
    return model.eval(), config


class _Progress:
    """A Rich progress bar over all steps of the run, with loss and validation accuracy."""

    def __init__(self, enabled: bool, total_steps: int, completed: int) -> None:
        self._progress = Progress(
            TextColumn("[bold]train[/bold] epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  val_acc {task.fields[val_acc]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            disable=not enabled,
        )
        self._task = self._progress.add_task(
            "train", total=total_steps, completed=completed, epoch="-", loss="-", val_acc="-"
        )

    def __enter__(self) -> _Progress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def step(self, epoch: int) -> None:
        self._progress.update(self._task, advance=1, epoch=epoch)

    def epoch_done(self, record: EpochRecord) -> None:
        self._progress.update(
            self._task, loss=f"{record.train_loss:.4f}", val_acc=f"{record.val_accuracy:.4f}"
        )


def train(
    config: TrainConfig,
    snapshot: Snapshot,
    checkpoint_path: Path,
    *,
    resume: bool = False,
    show_progress: bool = True,
    on_epoch_end: Callable[[EpochRecord], None] | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    objective: Objective | None = None,
    keep: Keep = "best",
) -> TrainResult:
    """Train ``config`` on ``snapshot``'s train split, selecting on its validation split.

    Writes ``checkpoint_path`` atomically after every epoch. With ``resume=True`` and an
    existing checkpoint of the same config and snapshot, training continues after the last
    completed epoch. Raises :class:`TrainingInterruptedError` on Ctrl-C.

    ``on_epoch_end`` is called with each completed epoch's record after that epoch's
    checkpoint is written; an exception it raises (for example Optuna's ``TrialPruned``)
    stops training and propagates unchanged, leaving the checkpoint of that epoch complete.

    ``init_state`` (weights of the same architecture) is where training starts instead of a
    fresh initialisation: fine-tuning. ``objective`` replaces the cross-entropy loss (see
    :data:`Objective`); a resumed run continues bit-for-bit only when the objective keeps no
    state of its own, and the checkpoint's identity covers only the config and the snapshot.
    ``keep="last"`` returns the final epoch's weights instead of the best epoch's.
    """
    with torch_threads(config.threads) as threads:
        return _train(
            config,
            snapshot,
            checkpoint_path,
            resume=resume,
            show_progress=show_progress,
            threads=threads,
            on_epoch_end=on_epoch_end,
            init_state=init_state,
            objective=objective or cross_entropy_objective(config),
            keep=keep,
        )


def _train(
    config: TrainConfig,
    snapshot: Snapshot,
    checkpoint_path: Path,
    *,
    resume: bool,
    show_progress: bool,
    threads: int,
    on_epoch_end: Callable[[EpochRecord], None] | None,
    init_state: dict[str, torch.Tensor] | None,
    objective: Objective,
    keep: Keep,
) -> TrainResult:
    precision = resolve_precision(config.precision)
    train_images, train_labels = snapshot.split("train")
    if config.train_subset is not None:
        train_images = train_images[: config.train_subset]
        train_labels = train_labels[: config.train_subset]
    val_images, val_labels = snapshot.split("val")

    torch.manual_seed(config.seed)
    model = build_model(config.model, **config.model_options)
    if init_state is not None:
        model.load_state_dict(init_state)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)  # type: ignore[call-overload]
    _, world_size = world()
    # Under DDP the wrapper runs the forward pass (it averages the gradients); the plain
    # module is what is checkpointed, selected and returned.
    trained: nn.Module = model if world_size == 1 else DistributedDataParallel(model)
    batch_loss = objective(trained, precision)
    optimizer = build_optimizer(model, config)
    augmentation = Augmentation(**config.augment.model_dump())
    shard_rows = len(train_labels) // world_size

    def epoch_batches(epoch: int) -> TensorBatches:
        if world_size == 1:
            images, labels = train_images, train_labels
        else:
            rows = shard_indices(len(train_labels), epoch, config.seed)
            images, labels = train_images[rows], train_labels[rows]
        return TensorBatches(
            images,
            labels,
            batch_size=config.batch_size,
            shuffle=world_size == 1,  # the distributed sampler has shuffled the shard
            seed=config.seed,
            augmentation=augmentation,
            drop_last=shard_rows > config.batch_size,
        )

    batches = epoch_batches(1)
    steps_per_epoch = len(batches)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.lr,
        total_steps=config.epochs * steps_per_epoch,
        pct_start=config.warmup_fraction,
    )

    history: list[EpochRecord] = []
    best_state = _clone_state(model)
    best_epoch, best_acc, elapsed_before = 0, -1.0, 0.0
    start_epoch = 1
    if resume and checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path)
        if state["config_hash"] != config.config_hash() or state["snapshot_id"] != (
            snapshot.snapshot_id
        ):
            raise CheckpointMismatchError(
                f"{checkpoint_path} was written for config {state['config_hash']} on snapshot "
                f"{state['snapshot_id']}, not config {config.config_hash()} on "
                f"{snapshot.snapshot_id}; delete it or drop --resume"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        history = [EpochRecord(**r) for r in state["history"]]
        best_state, best_epoch, best_acc = (
            state["best_model"],
            state["best_epoch"],
            state["best_acc"],
        )
        elapsed_before = state["train_seconds"]
        start_epoch = state["epoch"] + 1
        if state.get("stopped") in ("early_stopping", "time_budget"):
            start_epoch = config.epochs + 1  # that run had finished; nothing left to do

    budget_s = config.max_minutes * 60 if config.max_minutes else math.inf
    run_start = time.perf_counter()
    stopped = "completed"
    val_x = to_tensor(val_images).contiguous(memory_format=memory_format)
    val_y = torch.from_numpy(val_labels.astype(np.int64))

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - run_start

    completed_steps = (start_epoch - 1) * steps_per_epoch
    with _Progress(
        show_progress and is_primary(), config.epochs * steps_per_epoch, completed_steps
    ) as progress:
        try:
            for epoch in range(start_epoch, config.epochs + 1):
                epoch_start = time.perf_counter()
                model.train()
                batches = epoch_batches(epoch) if world_size > 1 else batches
                batches.set_epoch(epoch)
                running = torch.zeros((), dtype=torch.float64)
                seen = 0
                for x, y in batches:
                    loss = batch_loss(x.contiguous(memory_format=memory_format), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()  # type: ignore[no-untyped-call]
                    if config.grad_clip is not None:
                        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                    optimizer.step()
                    scheduler.step()
                    running += loss.detach().double() * len(y)
                    seen += len(y)
                    progress.step(epoch)
                    if any_rank(elapsed() > budget_s):  # every rank stops at the same step
                        stopped = "time_budget"
                        break
                val_loss, val_acc = evaluate_loss_accuracy(
                    model, val_x, val_y, config.eval_batch_size
                )
                record = EpochRecord(
                    epoch=epoch,
                    train_loss=float(running) / max(seen, 1),
                    val_loss=val_loss,
                    val_accuracy=val_acc,
                    lr=float(scheduler.get_last_lr()[0]),
                    seconds=time.perf_counter() - epoch_start,
                )
                history.append(record)
                progress.epoch_done(record)
                if val_acc > best_acc:
                    best_acc, best_epoch, best_state = val_acc, epoch, _clone_state(model)
                patience = config.early_stopping_patience
                if stopped == "completed" and patience and epoch - best_epoch >= patience:
                    stopped = "early_stopping"
                if is_primary():
                    _save(
                        checkpoint_path,
                        config=config,
                        snapshot_id=snapshot.snapshot_id,
                        epoch=epoch,
                        model=model,
                        optimizer=optimizer,
                        scheduler=scheduler,
                        history=history,
                        best_state=best_state,
                        best_epoch=best_epoch,
                        best_acc=best_acc,
                        train_seconds=elapsed(),
                        stopped=stopped,
                    )
                if on_epoch_end is not None:
                    on_epoch_end(record)
                if stopped != "completed":
                    break
        except KeyboardInterrupt:
            done = history[-1].epoch if history else 0
            raise TrainingInterruptedError(
                f"training interrupted; {checkpoint_path} holds epoch {done} of {config.epochs}: "
                "run again with --resume to continue"
            ) from None

    if keep == "best":
        model.load_state_dict(best_state)
    model = model.to(memory_format=torch.contiguous_format).eval()
    return TrainResult(
        model=model,
        config=config,
        snapshot_id=snapshot.snapshot_id,
        history=history,
        best_epoch=best_epoch,
        best_val_accuracy=best_acc,
        precision=precision,
        threads=threads,
        parameters=count_parameters(model),
        train_seconds=(history and elapsed()) or elapsed_before,
        stopped=stopped,
        checkpoint=checkpoint_path,
    )


def evaluate_loss_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (put in eval mode) on normalised ``x``."""
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(y), batch_size):
            logits = model(x[start : start + batch_size]).float()
            target = y[start : start + batch_size]
            total_loss += float(F.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(1) == target).sum())
    n = max(len(y), 1)
    return total_loss / n, correct / n


def _save(
    path: Path,
    *,
    config: TrainConfig,
    snapshot_id: str,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    history: list[EpochRecord],
    best_state: dict[str, torch.Tensor],
    best_epoch: int,
    best_acc: float,
    train_seconds: float,
    stopped: str,
) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": config.model_dump(),
        "config_hash": config.config_hash(),
        "snapshot_id": snapshot_id,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
        "history": [asdict(r) for r in history],
        "best_model": best_state,
        "best_epoch": best_epoch,
        "best_acc": best_acc,
        "train_seconds": train_seconds,
        "stopped": stopped,
    }
    atomic_write_bytes(path, _state_bytes(state))
