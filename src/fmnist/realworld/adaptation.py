"""Domain adaptation: what Fashion-MNIST training with real photos mixed into every batch
trains on (the preprocessed photo set) and with (the options and the photo losses);
:mod:`fmnist.realworld.photo_training` runs it in the trainer's loop.

The photos (the training fold of a labelled folder, see :mod:`fmnist.realworld.photos`) are
turned into 28x28 inputs by the serving preprocessing itself, once clean and ``variants - 1``
times after :func:`~fmnist.imaging.photo_augment.augment_photo`, and cached. Training is the
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
from collections.abc import Sequence
from dataclasses import dataclass
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

from fmnist import IMAGE_SIZE, NUM_CLASSES
from fmnist.atomic import atomic_write_bytes
from fmnist.imaging.decode import DEFAULT_MAX_PIXELS, decode_image
from fmnist.imaging.photo_augment import augment_photo
from fmnist.imaging.preprocess import WORK_SIZE, Segmentation, preprocess_image
from fmnist.realworld.mapping import ClassMapping
from fmnist.realworld.photos import LabelledPhoto

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
    """A hash of the imaging source (decoding, segmentation, framing, photo augmentation):
    cached inputs are remade when it changes."""
    from fmnist.imaging import preprocess

    digest = hashlib.sha256()
    for source in sorted(Path(str(preprocess.__file__)).parent.glob("*.py")):
        digest.update(source.read_bytes())
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
