"""Knowledge distillation: the loss, the ensemble teacher, loading teachers, the config."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from fmnist.errors import ConfigError
from fmnist.models import build_model
from fmnist.training.config import make_config
from fmnist.training.distillation import (
    distillation_loss,
    distillation_objective,
    load_teacher,
    teacher_probabilities,
    teacher_weights_path,
)


def test_the_soft_term_vanishes_when_the_student_matches_the_teacher() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    labels = torch.tensor([0, 2])
    teacher = F.softmax(logits / 4.0, dim=1)
    only_soft = distillation_loss(logits, teacher, labels, temperature=4.0, alpha=1.0)
    assert only_soft.item() == pytest.approx(0.0, abs=1e-6)
    only_hard = distillation_loss(logits, teacher, labels, temperature=4.0, alpha=0.0)
    assert only_hard.item() == pytest.approx(F.cross_entropy(logits, labels).item())


def test_the_soft_term_is_the_scaled_kl_divergence() -> None:
    student = torch.tensor([[1.0, 0.0, 0.0]])
    teacher = torch.tensor([[0.2, 0.5, 0.3]])
    soft_student = F.softmax(student / 2.0, dim=1)
    kl = (teacher * (teacher.log() - soft_student.log())).sum()
    loss = distillation_loss(student, teacher, torch.tensor([1]), temperature=2.0, alpha=1.0)
    assert loss.item() == pytest.approx(4.0 * kl.item(), rel=1e-5)


def test_an_ensemble_teacher_averages_tempered_softmaxes() -> None:
    class Fixed(torch.nn.Module):
        def __init__(self, logits: list[float]) -> None:
            super().__init__()
            self.logits = torch.tensor([logits])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.logits.expand(len(x), -1)

    a, b = Fixed([3.0, 0.0]), Fixed([0.0, 3.0])
    probs = teacher_probabilities([a, b], torch.zeros(4, 1, 28, 28), 1.0, "fp32")
    assert probs.shape == (4, 2)
    assert torch.allclose(probs, torch.full((4, 2), 0.5))


def _weights_file(path: Path) -> Path:
    config = make_config("tiny")
    model = build_model(config.model, **config.model_options)
    buffer = io.BytesIO()
    torch.save({"config": config.model_dump(), "state_dict": model.state_dict()}, buffer)
    path.write_bytes(buffer.getvalue())
    return path


def test_a_teacher_is_found_by_file_folder_or_run_id_and_rebuilt(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / "abc123").mkdir(parents=True)
    weights = _weights_file(runs / "abc123" / "weights.pt")
    assert teacher_weights_path(str(weights)) == weights
    assert teacher_weights_path(str(runs / "abc123")) == weights
    assert teacher_weights_path("abc123", runs) == weights
    teacher = load_teacher(weights)
    assert not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    with pytest.raises(ConfigError, match=r"no weights\.pt found"):
        teacher_weights_path("nope", runs)


def test_a_file_that_is_not_a_weights_file_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match=str(bad)):
        load_teacher(bad)


def test_distillation_changes_the_config_hash_and_nothing_else_does() -> None:
    plain = make_config("student")
    assert plain.distill is None
    assert "distill" not in plain.model_dump(exclude={"distill"})
    distilled = make_config("student", distill={"teachers": ["run-a"]})
    assert distilled.config_hash() != plain.config_hash()
    hotter = make_config("student", distill={"teachers": ["run-a"], "temperature": 8.0})
    assert hotter.config_hash() != distilled.config_hash()


def test_the_objective_needs_distill_settings_and_a_teacher() -> None:
    with pytest.raises(ConfigError, match="'distill'"):
        distillation_objective(make_config("tiny"), [])
    with pytest.raises(ConfigError, match="at least one teacher"):
        distillation_objective(make_config("tiny", distill={"teachers": ["x"]}), [])
