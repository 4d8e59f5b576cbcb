"""Training with photos mixed into every batch, in the trainer's loop.

:func:`train_with_photos` runs :func:`fmnist.training.trainer.train` (optimiser, one-cycle
schedule, augmentation, precision, per-epoch checkpoints, time budget, Ctrl-C) with
:class:`PhotoMixing` as its objective, starting from the Fashion-MNIST-only model's weights
when fine-tuning, and keeps the final epoch's weights. :mod:`fmnist.realworld.adaptation`
describes the data, the loss terms and the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from fmnist.data.loaders import PIXEL_MEAN, PIXEL_STD, to_tensor
from fmnist.data.photo_batch_augment import PhotoBatchAugmentation
from fmnist.data.snapshot import Snapshot
from fmnist.models import build_model
from fmnist.realworld.adaptation import (
    AdaptOptions,
    PhotoSet,
    distillation,
    set_nll,
    uniform_ce,
)
from fmnist.training.config import TrainConfig
from fmnist.training.precision import Precision, autocast
from fmnist.training.trainer import BatchLoss, EpochRecord, TrainingInterruptedError, train


@dataclass(frozen=True)
class AdaptEpoch:
    """Metrics of one epoch of :func:`train_with_photos`."""

    epoch: int
    train_loss: float
    fmnist_loss: float
    photo_loss: float
    outlier_loss: float
    val_accuracy: float
    photo_accuracy: float | None
    """Set accuracy (top-1 in the mapped set) on the clean calibration-fold photos, if given."""
    lr: float
    seconds: float


@dataclass
class AdaptResult:
    """The trained model (eval mode, fp32, final epoch) and how it was made."""

    model: nn.Module
    config: TrainConfig
    options: AdaptOptions
    snapshot_id: str
    history: list[AdaptEpoch]
    precision: Precision
    threads: int
    parameters: int
    train_seconds: float
    stopped: str
    photos: int
    outliers: int
    extra: dict[str, float] = field(default_factory=dict)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return x.sub(PIXEL_MEAN).div(PIXEL_STD)


def _draw(
    images: torch.Tensor,
    count: int,
    augmentation: PhotoBatchAugmentation,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random rows of ``images`` (uint8), augmented and normalised; and their rows."""
    rows = torch.randint(len(images), (count,), generator=generator)
    x = images[rows].to(torch.float32).div_(255.0).unsqueeze(1)
    return _normalise(augmentation(x, generator)), rows


def _set_accuracy(model: nn.Module, photos: PhotoSet, batch_size: int) -> float | None:
    rows = photos.mappable & (photos.variant == 0)
    if not rows.any():
        return None
    model.eval()
    with torch.inference_mode():
        logits = torch.cat(
            [
                model(to_tensor(photos.images[rows][i : i + batch_size])).float()
                for i in range(0, int(rows.sum()), batch_size)
            ]
        )
    top = logits.argmax(dim=1).numpy()
    return float(photos.targets[rows][np.arange(len(top)), top].mean())


class PhotoMixing:
    """The trainer's objective with photos mixed into every batch (see the module docstring).

    Each Fashion-MNIST batch gets ``photo_batch`` mappable and ``outlier_batch`` unmappable
    photos appended (drawn with replacement, photo-augmented, from a generator seeded by
    ``options.seed`` and ``config.seed``); the loss is the Fashion-MNIST cross-entropy, plus the
    distillation term when ``teacher_state`` is given, plus the weighted set loss and
    outlier-exposure loss. It keeps the running sums of its terms for :meth:`epoch_means`.
    """

    def __init__(
        self,
        config: TrainConfig,
        options: AdaptOptions,
        photos: PhotoSet | None,
        outliers: PhotoSet | None,
        teacher_state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """``photos``: mappable rows, ``outliers``: unmappable rows (None or empty: that term
        is off); ``teacher_state``: weights of the distillation teacher (None: no distillation).
        """
        self.config, self.options = config, options
        self.photos, self.outliers, self.teacher_state = photos, outliers, teacher_state
        self.model: nn.Module | None = None
        """The model being trained, once the trainer has built it."""
        self._sums = np.zeros(3)
        self._steps = 0

    def __call__(self, model: nn.Module, precision: Precision) -> BatchLoss:
        """The batch loss for ``model`` (the trainer calls this once, before the optimiser)."""
        self.model = model
        config, options = self.config, self.options
        teacher: nn.Module | None = None
        if self.teacher_state is not None:
            teacher = build_model(config.model, **config.model_options)
            teacher.load_state_dict(self.teacher_state)
            teacher.eval().requires_grad_(False)
        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        photo_x = photo_t = outlier_x = None
        n_photo = options.photo_batch if self.photos is not None and len(self.photos.images) else 0
        n_outlier = (
            options.outlier_batch if self.outliers is not None and len(self.outliers.images) else 0
        )
        if n_photo and self.photos is not None:
            photo_x = torch.from_numpy(self.photos.images)
            photo_t = torch.from_numpy(self.photos.targets)
        if n_outlier and self.outliers is not None:
            outlier_x = torch.from_numpy(self.outliers.images)
        augmentation = PhotoBatchAugmentation()
        generator = torch.Generator().manual_seed(options.seed * 7919 + config.seed)

        def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            parts, n = [x], len(y)
            photo_rows = None
            if photo_x is not None:
                xp, photo_rows = _draw(photo_x, n_photo, augmentation, generator)
                parts.append(xp)
            if outlier_x is not None:
                parts.append(_draw(outlier_x, n_outlier, augmentation, generator)[0])
            batch = torch.cat(parts).contiguous(memory_format=memory_format)
            with autocast(precision):
                logits = model(batch)
            fmnist_loss = F.cross_entropy(
                logits[:n].float(), y, label_smoothing=config.label_smoothing
            )
            total = fmnist_loss
            if teacher is not None:
                with torch.no_grad(), autocast(precision):
                    taught = teacher(x.contiguous(memory_format=memory_format))
                total = total + options.distill_weight * distillation(logits[:n], taught)
            photo_loss = outlier_loss = torch.zeros(())
            if photo_rows is not None and photo_t is not None:
                photo_loss = set_nll(logits[n : n + n_photo], photo_t[photo_rows]).mean()
                total = total + options.photo_weight * photo_loss
            if outlier_x is not None:
                outlier_loss = uniform_ce(logits[n + n_photo :]).mean()
                total = total + options.outlier_weight * outlier_loss
            self._sums += [float(v.detach()) for v in (fmnist_loss, photo_loss, outlier_loss)]
            self._steps += 1
            return total

        return loss

    def epoch_means(self) -> tuple[float, float, float]:
        """Mean Fashion-MNIST, set and outlier losses of the batches since the last call."""
        means = self._sums / max(self._steps, 1)
        self._sums, self._steps = np.zeros(3), 0
        return float(means[0]), float(means[1]), float(means[2])


def _without_blank(photos: PhotoSet) -> PhotoSet:
    """No garment found: the server refuses those, nothing to learn."""
    return photos.subset(photos.images.reshape(len(photos.images), -1).max(axis=1) > 0)


def train_with_photos(
    config: TrainConfig,
    snapshot: Snapshot,
    photos: PhotoSet | None,
    options: AdaptOptions,
    checkpoint_path: Path,
    *,
    calibration: PhotoSet | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    show_progress: bool = True,
) -> AdaptResult:
    """Train ``config`` on the snapshot's train split with ``photos`` mixed into every batch.

    The loop is the trainer's (:func:`fmnist.training.trainer.train`, checkpointing every
    epoch to ``checkpoint_path``) with :class:`PhotoMixing` as its objective. With
    ``init_state`` (the weights of a trained model of the same architecture) training starts
    from those weights: fine-tuning, usually with fewer epochs and a lower learning rate in
    ``config``; ``options.distill_weight`` then keeps the Fashion-MNIST answers close to them.

    ``photos=None`` (or zero ``photo_batch`` and ``outlier_batch``) trains the Fashion-MNIST-only
    model of the same recipe. Each epoch ends with the Fashion-MNIST validation accuracy and,
    when ``calibration`` is given, the set accuracy on its clean photos. Returns the final
    epoch's model (the one-cycle schedule ends at a learning rate near zero). Raises
    :class:`~fmnist.training.trainer.TrainingInterruptedError` on Ctrl-C.
    """
    photos = _without_blank(photos) if photos is not None else None
    mappable = photos.subset(photos.mappable) if photos is not None else None
    outliers = photos.subset(~photos.mappable) if photos is not None else None
    teacher = init_state if init_state is not None and options.distill_weight > 0 else None
    objective = PhotoMixing(config, options, mappable, outliers, teacher)
    history: list[AdaptEpoch] = []

    def on_epoch_end(record: EpochRecord) -> None:
        fmnist_loss, photo_loss, outlier_loss = objective.epoch_means()
        photo_acc = None
        if calibration is not None and objective.model is not None:
            photo_acc = _set_accuracy(objective.model, calibration, config.eval_batch_size)
        history.append(
            AdaptEpoch(
                epoch=record.epoch,
                train_loss=record.train_loss,
                fmnist_loss=fmnist_loss,
                photo_loss=photo_loss,
                outlier_loss=outlier_loss,
                val_accuracy=record.val_accuracy,
                photo_accuracy=photo_acc,
                lr=record.lr,
                seconds=record.seconds,
            )
        )

    try:
        result = train(
            config,
            snapshot,
            checkpoint_path,
            show_progress=show_progress,
            on_epoch_end=on_epoch_end,
            init_state=init_state,
            objective=objective,
            keep="last",
        )
    except TrainingInterruptedError:
        raise TrainingInterruptedError(
            f"training with photos interrupted; {checkpoint_path} holds the last completed epoch"
        ) from None
    return AdaptResult(
        model=result.model,
        config=config,
        options=options,
        snapshot_id=snapshot.snapshot_id,
        history=history,
        precision=result.precision,
        threads=result.threads,
        parameters=result.parameters,
        train_seconds=result.train_seconds,
        stopped=result.stopped,
        photos=0 if mappable is None else len(mappable.images),
        outliers=0 if outliers is None else len(outliers.images),
    )
