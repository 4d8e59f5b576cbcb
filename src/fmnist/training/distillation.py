"""Knowledge distillation: train a (small) student on the soft targets of trained teachers.

The loss of a batch (Hinton et al., 2015) is

    alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)

where ``x_T`` is the softmax at temperature ``T`` and the teacher distribution of several
teachers is the mean of their tempered softmaxes (an ensemble teacher). The teachers see the
same augmented batch as the student, so the soft targets follow the augmentation (random crop,
flip, erasing): this is what lets a student trained for longer keep learning from them. The
teachers run without gradients, in eval mode, under the run's precision.

Teachers are trained runs of this project: a ``weights.pt`` (written by
:func:`fmnist.training.run.save_weights`, which keeps the config that rebuilds the network), a
run folder holding one, or a run id under ``<home>/runs``. The distillation settings are part
of the student's :class:`~fmnist.training.config.TrainConfig` (``distill``), so a distilled run
has its own config hash, checkpoint and MLflow parameters.
"""

from __future__ import annotations

import pickle  # nosec B403: only its error type (torch.load reads with weights_only=True)
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from fmnist.errors import ConfigError
from fmnist.models import build_model
from fmnist.training.config import TrainConfig
from fmnist.training.precision import Precision, autocast
from fmnist.training.trainer import BatchLoss, Objective

WEIGHTS_FILE = "weights.pt"


def teacher_weights_path(reference: str, runs_dir: Path | None = None) -> Path:
    """The ``weights.pt`` that ``reference`` names: the file, a folder holding it, or a run id
    under ``runs_dir``. Raises :class:`ConfigError` naming what was looked for."""
    candidates = [Path(reference)]
    if runs_dir is not None:
        candidates.append(runs_dir / reference)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
        if (candidate / WEIGHTS_FILE).is_file():
            return candidate / WEIGHTS_FILE
    looked = ", ".join(str(c) for c in candidates)
    raise ConfigError(f"teacher {reference!r}: no {WEIGHTS_FILE} found (looked in {looked})")


def load_teacher(path: Path) -> nn.Module:
    """Rebuild a trained network from its ``weights.pt`` (config + state dict), in eval mode."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        config = TrainConfig.model_validate(saved["config"])
        model = build_model(config.model, **config.model_options)
        model.load_state_dict(saved["state_dict"])
    except (OSError, KeyError, RuntimeError, ValueError, pickle.UnpicklingError) as exc:
        kind = type(exc).__name__
        raise ConfigError(f"{path}: not a weights file of this project ({kind})") from exc
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_probs: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """``alpha * T^2 * KL(teacher || student at T) + (1 - alpha) * CE(student, labels)``;
    ``teacher_probs`` are already softened at ``temperature``."""
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    soft = F.kl_div(log_student, teacher_probs.float(), reduction="batchmean")
    hard = F.cross_entropy(student_logits.float(), labels, label_smoothing=label_smoothing)
    return alpha * temperature**2 * soft + (1 - alpha) * hard


def teacher_probabilities(
    teachers: list[nn.Module], x: torch.Tensor, temperature: float, precision: Precision
) -> torch.Tensor:
    """The mean tempered softmax of ``teachers`` on ``x`` (no gradients)."""
    with torch.no_grad(), autocast(precision):
        probs = [F.softmax(t(x).float() / temperature, dim=1) for t in teachers]
    return torch.stack(probs).mean(dim=0)


def distillation_objective(config: TrainConfig, teachers: list[nn.Module]) -> Objective:
    """The trainer's objective for ``config.distill`` with the loaded ``teachers``."""
    settings = config.distill
    if settings is None:
        raise ConfigError("distillation_objective needs a config with 'distill' set")
    if not teachers:
        raise ConfigError("distillation needs at least one teacher")

    def build(model: nn.Module, precision: Precision) -> BatchLoss:
        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        for teacher in teachers:
            teacher.to(memory_format=memory_format)  # type: ignore[call-overload]

        def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            targets = teacher_probabilities(teachers, x, settings.temperature, precision)
            with autocast(precision):
                logits = model(x)
            return distillation_loss(
                logits,
                targets,
                y,
                temperature=settings.temperature,
                alpha=settings.alpha,
                label_smoothing=config.label_smoothing,
            )

        return loss

    return build


def objective_for(config: TrainConfig, runs_dir: Path | None = None) -> Objective | None:
    """The distillation objective when ``config.distill`` is set (teachers loaded), else None
    (the trainer's cross-entropy)."""
    if config.distill is None:
        return None
    teachers = [
        load_teacher(teacher_weights_path(ref, runs_dir)) for ref in config.distill.teachers
    ]
    return distillation_objective(config, teachers)
