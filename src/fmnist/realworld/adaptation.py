"""Domain adaptation: Fashion-MNIST training with real photos mixed into every batch.

The photos (the training fold of a labelled folder, see :mod:`fmnist.realworld.photos`) are
turned into 28x28 inputs by the serving preprocessing itself, once clean and ``variants - 1``
times after :func:`~fmnist.realworld.photo_augment.augment_photo`, and cached. Training is the
Fashion-MNIST recipe of a :class:`~fmnist.training.config.TrainConfig` (model, optimiser,
one-cycle schedule, augmentation, precision, epochs, batch size) with extra rows appended to
every batch:

* ``photo_batch`` photos of mappable classes, with photo-like batch augmentations. Their target
  is a *set* of classes (``shoes``: Sandal, Sneaker, Ankle boot), so the loss is the negative log
  of the probability the model gives the whole set, ``-log sum_{c in S} p_c``
  (:func:`set_nll`): the model may answer any class of the set, and for a one-class set it is
  the usual cross-entropy;
* ``outlier_batch`` photos of classes that map to none (hat, shorts, skirt), whose loss is the
  cross-entropy to the uniform distribution (outlier exposure, Hendrycks et al. 2019): the model
  learns to be unsure on garments it has no class for, which the unknown rule then refuses.

The Fashion-MNIST rows, their augmentation and the schedule are the same as without photos, so
the model trained with ``photo_batch = outlier_batch = 0`` in this loop is the Fashion-MNIST-only
model of the same recipe, the fair comparison for Fashion-MNIST test accuracy.

The default (``finetune_epochs`` 3) *fine-tunes* that Fashion-MNIST-only model for a few epochs
at a lower learning rate with the photos mixed in, with a distillation term on the
Fashion-MNIST rows (``distill_weight``: KL divergence to the starting model's answers at
temperature 2) and the photo losses at half weight. Trained from scratch with photos, the
``quick`` CNN lost 1.5-2.3 points of Fashion-MNIST test accuracy; fine-tuned with distillation
it lost 0.3 (docs/real-photos.md has the runs). Blank photo inputs (no garment found) are
left out of training: the server refuses them.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import nn

from fmnist import IMAGE_SIZE, NUM_CLASSES
from fmnist.atomic import atomic_write_bytes
from fmnist.data.augment import Augmentation
from fmnist.data.loaders import PIXEL_MEAN, PIXEL_STD, TensorBatches, to_tensor
from fmnist.data.snapshot import Snapshot
from fmnist.models import build_model, count_parameters
from fmnist.realworld import photo_augment
from fmnist.realworld.mapping import ClassMapping
from fmnist.realworld.photo_augment import PhotoBatchAugmentation, augment_photo
from fmnist.realworld.photos import LabelledPhoto
from fmnist.serving.preprocess import (
    DEFAULT_MAX_PIXELS,
    WORK_SIZE,
    Segmentation,
    decode_image,
    preprocess_image,
)
from fmnist.training.config import TrainConfig
from fmnist.training.precision import Precision, autocast, resolve_precision, torch_threads
from fmnist.training.trainer import build_optimizer, evaluate_loss_accuracy

UInt8Array = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]
CACHE_FORMAT = 1


class AdaptOptions(BaseModel):
    """How photos are mixed into training (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    photo_batch: int = Field(64, ge=0, le=4096, description="mappable photos added per batch")
    outlier_batch: int = Field(16, ge=0, le=4096, description="unmappable photos per batch")
    photo_weight: float = Field(0.5, ge=0, description="weight of the mean set loss")
    outlier_weight: float = Field(0.25, ge=0, description="weight of the outlier-exposure loss")
    variants: int = Field(3, ge=1, le=16, description="preprocessed versions of each photo")
    finetune_epochs: int = Field(
        3,
        ge=0,
        le=100,
        description="0: train from scratch with the recipe's epochs; N: start from the "
        "Fashion-MNIST-only model and train N epochs with photos mixed in",
    )
    finetune_lr: float = Field(1e-3, gt=0, description="peak learning rate of the fine-tuning")
    distill_weight: float = Field(
        1.0,
        ge=0,
        description="when fine-tuning: weight of the distillation loss that keeps the "
        "Fashion-MNIST rows' answers close to the starting model's (temperature 2)",
    )
    segmentation: Segmentation = "grabcut"
    seed: int = Field(0, ge=0)


@dataclass(frozen=True)
class PhotoSet:
    """Preprocessed photos: 28x28 inputs and the set of right classes of each (empty: none)."""

    images: UInt8Array
    """``(N, 28, 28)`` uint8, as the server's preprocessing makes them."""
    targets: BoolArray
    """``(N, 10)``: the Fashion-MNIST classes that are right for each row."""
    keys: tuple[str, ...]
    """``CLASS/FILE`` of each row."""
    variant: npt.NDArray[np.int16]
    """0 for the clean photo, 1.. for augmented versions."""

    @property
    def mappable(self) -> BoolArray:
        """Rows whose photo class maps to at least one Fashion-MNIST class."""
        result: BoolArray = np.asarray(self.targets.any(axis=1), dtype=bool)
        return result

    def subset(self, rows: BoolArray) -> PhotoSet:
        """The rows where ``rows`` is true."""
        keys = tuple(k for k, keep in zip(self.keys, rows, strict=True) if keep)
        return PhotoSet(self.images[rows], self.targets[rows], keys, self.variant[rows])


def target_matrix(photos: Sequence[LabelledPhoto], mapping: ClassMapping) -> BoolArray:
    """``(N, 10)`` booleans: the Fashion-MNIST classes that are right for each photo."""
    targets = np.zeros((len(photos), NUM_CLASSES), dtype=bool)
    for i, photo in enumerate(photos):
        targets[i, sorted(mapping.targets(photo.photo_class))] = True
    return targets


def _working_image(data: bytes) -> Image.Image:
    """The decoded photo in colour, downscaled to the preprocessing's working size."""
    image = decode_image(data, max_pixels=DEFAULT_MAX_PIXELS, color=True).convert("RGB")
    factor = WORK_SIZE / max(image.size)
    if factor < 1.0:
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        image = image.resize(size, Image.Resampling.BOX)
    return image


def preprocess_variants(
    data: bytes, variants: int, rng: np.random.Generator, segmentation: Segmentation
) -> list[UInt8Array]:
    """The clean 28x28 input of a photo and ``variants - 1`` photo-augmented ones."""
    image = _working_image(data)
    out = [preprocess_image(image, segmentation=segmentation).pixels]
    rgb = np.asarray(image)
    for _ in range(variants - 1):
        augmented = Image.fromarray(augment_photo(rgb, rng))
        out.append(preprocess_image(augmented, segmentation=segmentation).pixels)
    return out


def _preprocessing_code() -> str:
    """A hash of the preprocessing source: cached inputs are remade when it changes."""
    from fmnist.serving import preprocess, segmentation

    digest = hashlib.sha256()
    for module in (preprocess, segmentation, photo_augment):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:16]


def _cache_key(photos: Sequence[LabelledPhoto], options: AdaptOptions) -> str:
    identity = {
        "format": CACHE_FORMAT,
        "code": _preprocessing_code(),
        "photos": [(p.key, p.path.stat().st_size) for p in photos],
        "variants": options.variants,
        "segmentation": options.segmentation,
        "seed": options.seed,
    }
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def prepare_photo_set(
    photos: Sequence[LabelledPhoto],
    mapping: ClassMapping,
    options: AdaptOptions,
    *,
    cache_dir: Path | None = None,
    show_progress: bool = True,
) -> PhotoSet:
    """Preprocess ``photos`` into a :class:`PhotoSet` (``options.variants`` rows per photo).

    With ``cache_dir`` the arrays are kept in ``<cache_dir>/<hash>.npz`` (the hash covers the
    photos, their sizes and the options) and reused.
    """
    targets = target_matrix(photos, mapping)
    cache = cache_dir / f"photos-{_cache_key(photos, options)}.npz" if cache_dir else None
    if cache is not None and cache.is_file():
        with np.load(cache) as stored:
            images = stored["images"]
    else:
        images = np.zeros((len(photos), options.variants, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        with Progress(
            TextColumn("[bold]preprocess photos[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            disable=not show_progress,
        ) as progress:
            task = progress.add_task("photos", total=len(photos))
            for i, photo in enumerate(photos):
                rng = np.random.default_rng([options.seed, i])
                variants = preprocess_variants(
                    photo.path.read_bytes(), options.variants, rng, options.segmentation
                )
                images[i] = np.stack(variants)
                progress.advance(task)
        if cache is not None:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, images=images)
            atomic_write_bytes(cache, buffer.getvalue())
    n, v = images.shape[:2]
    return PhotoSet(
        images=images.reshape(n * v, IMAGE_SIZE, IMAGE_SIZE),
        targets=np.repeat(targets, v, axis=0),
        keys=tuple(p.key for p in photos for _ in range(v)),
        variant=np.tile(np.arange(v, dtype=np.int16), n),
    )


def set_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per row, ``-log`` of the softmax probability summed over the ``targets`` set.

    ``targets`` is a boolean ``(N, K)`` mask with at least one class per row.
    """
    logits = logits.float()
    inside = logits.masked_fill(~targets, float("-inf"))
    return torch.logsumexp(logits, dim=1) - torch.logsumexp(inside, dim=1)


DISTILL_TEMPERATURE = 2.0


def distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean ``T^2 KL(softmax(teacher / T) || softmax(student / T))`` with T = 2 (Hinton et al.)."""
    t = DISTILL_TEMPERATURE
    target = F.log_softmax(teacher.float() / t, dim=1)
    return (
        F.kl_div(
            F.log_softmax(student.float() / t, dim=1),
            target,
            log_target=True,
            reduction="batchmean",
        )
        * t
        * t
    )


def uniform_ce(logits: torch.Tensor) -> torch.Tensor:
    """Per row, the cross-entropy between the uniform distribution and the softmax."""
    return -F.log_softmax(logits.float(), dim=1).mean(dim=1)


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


def train_with_photos(
    config: TrainConfig,
    snapshot: Snapshot,
    photos: PhotoSet | None,
    options: AdaptOptions,
    *,
    calibration: PhotoSet | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    show_progress: bool = True,
) -> AdaptResult:
    """Train ``config`` on the snapshot's train split with ``photos`` mixed into every batch.

    With ``init_state`` (the weights of a trained model of the same architecture) training
    starts from those weights: fine-tuning, usually with fewer epochs and a lower learning rate
    in ``config``.

    ``photos=None`` (or zero ``photo_batch`` and ``outlier_batch``) trains the Fashion-MNIST-only
    model of the same recipe. Each epoch ends with the Fashion-MNIST validation accuracy and,
    when ``calibration`` is given, the set accuracy on its clean photos. Returns the final
    epoch's model (the one-cycle schedule ends at a learning rate near zero).
    """
    with torch_threads(config.threads) as threads:
        return _train(
            config, snapshot, photos, options, calibration, init_state, show_progress, threads
        )


def _train(
    config: TrainConfig,
    snapshot: Snapshot,
    photos: PhotoSet | None,
    options: AdaptOptions,
    calibration: PhotoSet | None,
    init_state: dict[str, torch.Tensor] | None,
    show_progress: bool,
    threads: int,
) -> AdaptResult:
    precision = resolve_precision(config.precision)
    images, labels = snapshot.split("train")
    if config.train_subset is not None:
        images, labels = images[: config.train_subset], labels[: config.train_subset]
    val_images, val_labels = snapshot.split("val")
    torch.manual_seed(config.seed)
    model = build_model(config.model, **config.model_options)
    teacher: nn.Module | None = None
    if init_state is not None:
        model.load_state_dict(init_state)
        if options.distill_weight > 0:
            teacher = build_model(config.model, **config.model_options)
            teacher.load_state_dict(init_state)
            teacher.eval().requires_grad_(False)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)  # type: ignore[call-overload]
    optimizer = build_optimizer(model, config)
    batches = TensorBatches(
        images,
        labels,
        batch_size=config.batch_size,
        shuffle=True,
        seed=config.seed,
        augmentation=Augmentation(**config.augment.model_dump()),
        drop_last=len(labels) > config.batch_size,
    )
    steps = len(batches)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.lr,
        total_steps=config.epochs * steps,
        pct_start=config.warmup_fraction,
    )
    if photos is not None:  # no garment found: the server refuses those, nothing to learn
        photos = photos.subset(photos.images.reshape(len(photos.images), -1).max(axis=1) > 0)
    mappable = photos.subset(photos.mappable) if photos is not None else None
    outliers = photos.subset(~photos.mappable) if photos is not None else None
    n_photo = options.photo_batch if mappable is not None and len(mappable.images) else 0
    n_outlier = options.outlier_batch if outliers is not None and len(outliers.images) else 0
    photo_x = torch.from_numpy(mappable.images) if n_photo and mappable else None
    photo_t = torch.from_numpy(mappable.targets) if n_photo and mappable else None
    outlier_x = torch.from_numpy(outliers.images) if n_outlier and outliers else None
    augmentation = PhotoBatchAugmentation()
    generator = torch.Generator().manual_seed(options.seed * 7919 + config.seed)
    val_x = to_tensor(val_images).contiguous(memory_format=memory_format)
    val_y = torch.from_numpy(val_labels.astype(np.int64))
    budget = config.max_minutes * 60 if config.max_minutes else math.inf
    history: list[AdaptEpoch] = []
    stopped = "completed"
    start = time.perf_counter()
    progress = Progress(
        TextColumn("[bold]train with photos[/bold] epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("val_acc {task.fields[val]}  photo_acc {task.fields[photo]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not show_progress,
    )
    with progress:
        task = progress.add_task(
            "train", total=config.epochs * steps, epoch="-", val="-", photo="-"
        )
        for epoch in range(1, config.epochs + 1):
            epoch_start = time.perf_counter()
            model.train()
            batches.set_epoch(epoch)
            sums = np.zeros(4)
            for x, y in batches:
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
                loss = fmnist_loss
                if teacher is not None:
                    with torch.no_grad(), autocast(precision):
                        taught = teacher(x.contiguous(memory_format=memory_format))
                    loss = loss + options.distill_weight * distillation(logits[:n], taught)
                photo_loss = outlier_loss = torch.zeros(())
                if photo_rows is not None and photo_t is not None:
                    photo_loss = set_nll(logits[n : n + n_photo], photo_t[photo_rows]).mean()
                    loss = loss + options.photo_weight * photo_loss
                if outlier_x is not None:
                    outlier_loss = uniform_ce(logits[n + n_photo :]).mean()
                    loss = loss + options.outlier_weight * outlier_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                scheduler.step()
                sums += [float(v.detach()) for v in (loss, fmnist_loss, photo_loss, outlier_loss)]
                progress.update(task, advance=1, epoch=epoch)
                if time.perf_counter() - start > budget:
                    stopped = "time_budget"
                    break
            _, val_acc = evaluate_loss_accuracy(model, val_x, val_y, config.eval_batch_size)
            photo_acc = (
                _set_accuracy(model, calibration, config.eval_batch_size) if calibration else None
            )
            means = sums / max(steps, 1)
            record = AdaptEpoch(
                epoch=epoch,
                train_loss=float(means[0]),
                fmnist_loss=float(means[1]),
                photo_loss=float(means[2]),
                outlier_loss=float(means[3]),
                val_accuracy=val_acc,
                photo_accuracy=photo_acc,
                lr=float(scheduler.get_last_lr()[0]),
                seconds=time.perf_counter() - epoch_start,
            )
            history.append(record)
            progress.update(
                task,
                val=f"{val_acc:.4f}",
                photo="-" if photo_acc is None else f"{photo_acc:.3f}",
            )
            if stopped != "completed":
                break
    model = model.to(memory_format=torch.contiguous_format).eval()
    return AdaptResult(
        model=model,
        config=config,
        options=options,
        snapshot_id=snapshot.snapshot_id,
        history=history,
        precision=precision,
        threads=threads,
        parameters=count_parameters(model),
        train_seconds=time.perf_counter() - start,
        stopped=stopped,
        photos=0 if mappable is None else len(mappable.images),
        outliers=0 if outliers is None else len(outliers.images),
    )
