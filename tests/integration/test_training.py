"""The trainer on real data: determinism, resume after Ctrl-C, time budget, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fmnist.config import load_settings
from fmnist.data.snapshot import Snapshot, load_snapshot, write_snapshot
from fmnist.data.sources import RawDataset
from fmnist.platform.storage import FsspecStorage
from fmnist.training import trainer
from fmnist.training.config import make_config
from fmnist.training.precision import Precision
from fmnist.training.trainer import (
    CheckpointMismatchError,
    TrainingInterruptedError,
    model_from_checkpoint,
    train,
)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory, raw_subset: RawDataset) -> Snapshot:
    """A snapshot of the real subset in a module-scoped lake."""
    lake = FsspecStorage(str(tmp_path_factory.mktemp("lake")))
    settings = load_settings().settings
    write_snapshot(lake, raw_subset, settings.data, settings.validation)
    return load_snapshot(lake)


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_config_and_seed_give_the_same_model(snapshot: Snapshot, tmp_path: Path) -> None:
    config = make_config("tiny", epochs=1, train_subset=1500)
    first = train(config, snapshot, tmp_path / "a.pt", show_progress=False)
    second = train(config, snapshot, tmp_path / "b.pt", show_progress=False)
    assert _states_equal(first.model, second.model)
    assert first.history[0].val_accuracy == second.history[0].val_accuracy


def test_resume_after_interrupt_equals_uninterrupted_run(
    snapshot: Snapshot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config("tiny", train_subset=1500)
    reference = train(config, snapshot, tmp_path / "reference.pt", show_progress=False)

    real_evaluate = trainer.evaluate_loss_accuracy
    calls = {"n": 0}

    def interrupt_in_second_epoch(*args: object, **kwargs: object) -> tuple[float, float]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(trainer, "evaluate_loss_accuracy", interrupt_in_second_epoch)
    checkpoint = tmp_path / "interrupted.pt"
    with pytest.raises(TrainingInterruptedError, match="holds epoch 1 of 2"):
        train(config, snapshot, checkpoint, show_progress=False)
    monkeypatch.setattr(trainer, "evaluate_loss_accuracy", real_evaluate)

    assert trainer.load_checkpoint(checkpoint)["epoch"] == 1
    resumed = train(config, snapshot, checkpoint, resume=True, show_progress=False)
    assert [r.epoch for r in resumed.history] == [1, 2]
    assert _states_equal(resumed.model, reference.model)
    assert resumed.best_val_accuracy == reference.best_val_accuracy


def test_checkpoint_rebuilds_best_model(snapshot: Snapshot, tmp_path: Path) -> None:
    config = make_config("tiny", epochs=1, train_subset=1000)
    result = train(config, snapshot, tmp_path / "c.pt", show_progress=False)
    model, loaded_config = model_from_checkpoint(tmp_path / "c.pt")
    assert loaded_config == config
    assert _states_equal(model, result.model)


def test_resume_with_another_config_is_refused(snapshot: Snapshot, tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    train(make_config("tiny", epochs=1, train_subset=500), snapshot, path, show_progress=False)
    other = make_config("tiny", epochs=1, train_subset=500, lr=1e-3)
    with pytest.raises(CheckpointMismatchError, match="delete it or drop --resume"):
        train(other, snapshot, path, resume=True, show_progress=False)


def test_time_budget_stops_training(snapshot: Snapshot, tmp_path: Path) -> None:
    config = make_config("tiny", epochs=50, max_minutes=0.02)
    result = train(config, snapshot, tmp_path / "t.pt", show_progress=False)
    assert result.stopped == "time_budget"
    assert len(result.history) < 50
    assert result.train_seconds < 10


def test_early_stopping(snapshot: Snapshot, tmp_path: Path) -> None:
    config = make_config("tiny", epochs=6, train_subset=300, lr=1e-6, early_stopping_patience=1)
    result = train(config, snapshot, tmp_path / "e.pt", show_progress=False)
    assert result.stopped in {"early_stopping", "completed"}
    if result.stopped == "early_stopping":
        assert len(result.history) - result.best_epoch == 1


def test_fp32_precision_is_recorded(snapshot: Snapshot, tmp_path: Path) -> None:
    config = make_config("tiny", epochs=1, train_subset=300, precision="fp32")
    result = train(config, snapshot, tmp_path / "p.pt", show_progress=False)
    assert result.precision == "fp32"
    assert result.threads == 1


def test_the_loop_hooks(snapshot: Snapshot, tmp_path: Path) -> None:
    """``objective`` replaces the loss and is built on the model holding ``init_state``;
    ``keep="last"`` returns the final epoch's weights; the default objective is the loss."""
    config = make_config("tiny", epochs=2, train_subset=500)
    start = train(config, snapshot, tmp_path / "start.pt", show_progress=False)
    plain = train(
        config,
        snapshot,
        tmp_path / "plain.pt",
        show_progress=False,
        objective=trainer.cross_entropy_objective(config),
    )
    assert _states_equal(plain.model, start.model)

    default = trainer.cross_entropy_objective(config)
    built_on: list[dict[str, torch.Tensor]] = []
    rows: list[int] = []

    def objective(model: torch.nn.Module, precision: Precision) -> trainer.BatchLoss:
        built_on.append({k: v.clone() for k, v in model.state_dict().items()})
        loss = default(model, precision)

        def counted(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            rows.append(len(y))
            return loss(x, y)

        return counted

    init = start.model.state_dict()
    last = train(
        config,
        snapshot,
        tmp_path / "last.pt",
        show_progress=False,
        init_state=init,
        objective=objective,
        keep="last",
    )
    assert len(built_on) == 1 and all(torch.equal(built_on[0][k], init[k]) for k in init)
    assert sum(rows) == 2 * (500 // config.batch_size) * config.batch_size
    final = trainer.load_checkpoint(tmp_path / "last.pt")["model"]
    assert all(torch.equal(last.model.state_dict()[k], final[k]) for k in final)


def test_a_distilled_student_learns_the_classes_from_its_teacher_alone(
    snapshot: Snapshot, tmp_path: Path
) -> None:
    """With only soft targets (alpha = 1) and the training labels shuffled, what the student
    learns can only come from the teacher: it reaches the teacher's level, while the same
    student trained on the shuffled labels stays near chance."""
    import dataclasses

    import numpy as np

    from fmnist.training.distillation import objective_for

    teacher_config = make_config("tiny", train_subset=4000)
    teacher = train(teacher_config, snapshot, tmp_path / "teacher.pt", show_progress=False)
    weights = tmp_path / "teacher-run" / "weights.pt"
    weights.parent.mkdir()
    torch.save(
        {"config": teacher_config.model_dump(), "state_dict": teacher.model.state_dict()}, weights
    )

    _, train_labels = snapshot.split("train")
    shuffled = np.random.default_rng(0).permutation(train_labels)
    noisy = dataclasses.replace(snapshot, labels={**snapshot.labels, "train": shuffled})
    assert (shuffled[:4000] == train_labels[:4000]).mean() < 0.2

    student_config = make_config(
        "tiny",
        train_subset=4000,
        seed=1,
        distill={"teachers": [str(weights.parent)], "alpha": 1.0, "temperature": 2.0},
    )
    objective = objective_for(student_config)
    assert objective is not None
    student = train(
        student_config, noisy, tmp_path / "student.pt", show_progress=False, objective=objective
    )
    alone = train(
        make_config("tiny", train_subset=4000, seed=1),
        noisy,
        tmp_path / "alone.pt",
        show_progress=False,
    )
    assert teacher.best_val_accuracy > 0.6
    assert student.best_val_accuracy > 0.8 * teacher.best_val_accuracy
    assert alone.best_val_accuracy < 0.3
