"""Training configuration and its named presets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fmnist.errors import ConfigError
from fmnist.identity import digest_json


class AugmentConfig(BaseModel):
    """Batch augmentation strengths (see :mod:`fmnist.data.augment`)."""

    model_config = ConfigDict(extra="forbid")

    crop_padding: int = Field(2, ge=0, le=8)
    hflip_p: float = Field(0.5, ge=0, le=1)
    erasing_p: float = Field(0.0, ge=0, le=1)


class DistillConfig(BaseModel):
    """Knowledge distillation (see :mod:`fmnist.training.distillation`): the teachers' soft
    targets at ``temperature``, weighted ``alpha`` against the labels' cross-entropy."""

    model_config = ConfigDict(extra="forbid")

    teachers: list[str] = Field(
        min_length=1, description="weights.pt files, run folders or run ids of trained teachers"
    )
    temperature: float = Field(4.0, gt=0, le=20)
    alpha: float = Field(0.7, ge=0, le=1, description="weight of the soft-target term")


class TrainConfig(BaseModel):
    """Everything that determines a training run; the same config and seed give the same model."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = "cnn"
    model_options: dict[str, Any] = Field(default_factory=dict)
    epochs: int = Field(14, ge=1, le=500)
    batch_size: int = Field(256, ge=1, le=8192)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(3e-3, gt=0, description="peak learning rate of the one-cycle schedule")
    weight_decay: float = Field(0.05, ge=0, description="decoupled (AdamW) weight decay")
    momentum: float = Field(0.9, ge=0, lt=1)
    warmup_fraction: float = Field(0.2, gt=0, lt=1, description="one-cycle pct_start")
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    grad_clip: float | None = Field(2.0, gt=0)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    early_stopping_patience: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0)
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    channels_last: bool = True
    threads: int | None = Field(None, ge=1, description="torch intra-op threads; None = cores")
    max_minutes: float | None = Field(None, gt=0, description="stop after this wall time")
    train_subset: int | None = Field(None, ge=10, description="use the first N train images")
    eval_batch_size: int = Field(1024, ge=1)
    distill: DistillConfig | None = Field(None, description="train on teachers' soft targets")

    def config_hash(self) -> str:
        """A short hash of the fields that change the trained model (not threads or budget)."""
        relevant = self.model_dump(exclude={"threads", "max_minutes", "eval_batch_size"})
        if relevant["distill"] is None:  # runs without distillation keep their earlier hashes
            del relevant["distill"]
        return digest_json(relevant, length=12)


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "quick": {
        "model_options": {"widths": [32, 64, 128], "convs_per_stage": 1},
        "epochs": 5,
        "lr": 4e-3,
        "augment": {"crop_padding": 0, "hflip_p": 0.0},
        "label_smoothing": 0.0,
    },
    "student": {
        # The quick CNN's architecture (what serving can afford) with a longer, augmented
        # recipe: the student of knowledge distillation (`fmnist train --teacher ...`), and the
        # same recipe trained alone as its control.
        "model_options": {"widths": [32, 64, 128], "convs_per_stage": 1},
        "epochs": 20,
        "lr": 4e-3,
        "augment": {"erasing_p": 0.25},
        "label_smoothing": 0.0,
    },
    "tiny": {
        "model_options": {"widths": [16, 32], "convs_per_stage": 1, "dropout": 0.0},
        "epochs": 2,
        "batch_size": 64,
        "lr": 5e-3,
        "augment": {"crop_padding": 0, "hflip_p": 0.0},
        "label_smoothing": 0.0,
        "train_subset": 5000,
        "threads": 1,
    },
    "cnn-long": {
        "epochs": 30,
        "augment": {"erasing_p": 0.25},
    },
    "mlp": {
        "model": "mlp",
        "model_options": {"hidden": 512, "dropout": 0.2},
        "epochs": 20,
        "lr": 2e-3,
        "augment": {"crop_padding": 0, "hflip_p": 0.0},
    },
    "resnet": {
        "model": "resnet",
        "model_options": {"widths": [32, 64, 128], "blocks_per_stage": 2, "dropout": 0.1},
        "epochs": 12,
    },
    "vit": {
        "model": "vit",
        "model_options": {
            "patch_size": 4,
            "stem": "conv",
            "dim": 96,
            "depth": 5,
            "heads": 4,
            "dropout": 0.0,
            "drop_path": 0.05,
        },
        "epochs": 15,
        "lr": 1.5e-3,
        "grad_clip": 1.0,
        "precision": "fp32",
    },
}
"""Named configs: ``default`` (the full CNN run), ``quick`` (about a minute), ``student`` (the
quick architecture with a longer augmented recipe, for distillation), ``tiny`` (tests),
and one per leaderboard architecture (``mlp``, ``resnet``, ``vit``; the CNN is ``default``, and
``cnn-long`` the same CNN for 30 epochs with random erasing)."""

LEADERBOARD_PRESETS: dict[str, str] = {
    "cnn": "default",
    "cnn-long": "cnn-long",
    "mlp": "mlp",
    "resnet": "resnet",
    "vit": "vit",
}
"""Leaderboard model name -> the preset that trains it (``fmnist benchmark``)."""


def make_config(preset: str = "default", **overrides: Any) -> TrainConfig:
    """A preset with ``overrides`` applied (``None`` values are ignored)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
    return TrainConfig.model_validate(values)


def leaderboard_config(
    name: str, preset: str | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainConfig:
    """The training config of leaderboard model ``name`` (``fmnist benchmark``).

    Its own preset (:data:`LEADERBOARD_PRESETS`) comes first; ``preset`` (for example ``tiny``)
    then sets every training field, and its ``model_options`` too when it is written for the
    same architecture (a preset without ``model`` is written for the CNN). ``overrides`` come
    last; ``None`` values are ignored.
    """
    if name not in LEADERBOARD_PRESETS:
        raise ConfigError(
            f"{name!r} is not a trained leaderboard model; choose from: "
            + ", ".join(LEADERBOARD_PRESETS)
        )
    values: dict[str, Any] = dict(PRESETS[LEADERBOARD_PRESETS[name]])
    architecture = values.get("model", "cnn")
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        extra = dict(PRESETS[preset])
        same = extra.pop("model", "cnn") == architecture
        options = extra.pop("model_options", None)
        values |= extra
        if same and options is not None:
            values["model_options"] = options
    values |= {k: v for k, v in (overrides or {}).items() if v is not None}
    values["model"] = architecture
    return TrainConfig.model_validate(values)
