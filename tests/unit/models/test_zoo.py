"""The architecture registry and every architecture: shapes, gradients, memorisation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from fmnist.data.sources import RawDataset
from fmnist.errors import ConfigError
from fmnist.models import ARCHITECTURES, build_model, count_parameters
from fmnist.models.resnet import PreActResNet
from fmnist.models.vit import DropPath, VisionTransformer
from fmnist.training.config import TrainConfig, make_config
from fmnist.training.trainer import (
    build_optimizer,
    model_from_checkpoint,
    no_decay_parameter_names,
    predict_logits,
    train,
)

from .zoo_configs import SMALL, small_model

NAMES = sorted(SMALL)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_registry_lists_all_architectures() -> None:
    assert set(ARCHITECTURES) == {"cnn", "mlp", "resnet", "vit"}
    assert isinstance(build_model("resnet"), PreActResNet)
    assert isinstance(build_model("vit"), VisionTransformer)


def test_build_model_turns_lists_into_tuples() -> None:
    model = build_model("resnet", widths=[32, 64], blocks_per_stage=[1, 2], dropout=0.0)
    assert isinstance(model, PreActResNet)
    assert len(model.stages) == 3
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_build_model_rejects_unknown_names_and_options() -> None:
    with pytest.raises(ConfigError, match="choose one of: cnn, mlp, resnet, vit"):
        build_model("transformer")
    with pytest.raises(ConfigError, match=r"no option.*convs_per_stage.*valid options: widths"):
        build_model("resnet", convs_per_stage=1)


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("vit", {"patch_size": 5}, "patch_size must divide 28"),
        ("vit", {"dim": 66, "heads": 4}, "not divisible by heads"),
        ("vit", {"pool": "max"}, "pool must be"),
        ("vit", {"drop_path": 1.0}, r"\[0, 1\)"),
        ("resnet", {"widths": (32, 64), "blocks_per_stage": (1, 1, 1)}, "one per stage"),
        ("resnet", {"widths": ()}, "positive channel counts"),
    ],
)
def test_invalid_options_raise_config_errors(
    name: str, options: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        build_model(name, **options)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("batch", [1, 5])
def test_forward_shapes(name: str, batch: int) -> None:
    model = small_model(name).eval()
    with torch.no_grad():
        out = model(torch.randn(batch, 1, 28, 28))
    assert out.shape == (batch, 10)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["resnet", "vit"])
def test_default_configs_forward(name: str) -> None:
    model = build_model(name).eval()
    assert 400_000 < count_parameters(model) < 1_200_000
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    "options",
    [
        {"patch_size": 4, "pool": "cls"},
        {"patch_size": 4, "pool": "mean"},
        {"patch_size": 7, "pool": "mean"},
        {"patch_size": 14, "depth": 1},
        {"patch_size": 4, "stem": "conv"},
        {"patch_size": 2, "stem": "conv", "pool": "mean", "depth": 1},
    ],
)
def test_vit_patch_sizes_and_pooling(options: dict[str, Any]) -> None:
    model = small_model("vit", **options).eval()
    with torch.no_grad():
        assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    tokens = (28 // int(options["patch_size"])) ** 2 + (options.get("pool", "cls") == "cls")
    assert isinstance(model, VisionTransformer)
    assert model.pos_embed.shape == (1, tokens, 64)


def _all_grads_finite(model: nn.Module) -> None:
    for pname, param in model.named_parameters():
        assert param.grad is not None, f"{pname} has no gradient"
        assert torch.isfinite(param.grad).all(), f"{pname} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", NAMES)
def test_backward_gives_finite_gradients_for_all_parameters(name: str) -> None:
    # Dropout and stochastic depth on, as in training.
    training: dict[str, dict[str, Any]] = {
        "vit": {"dropout": 0.1, "drop_path": 0.1},
        "mlp": {"dropout": 0.2},
        "resnet": {"dropout": 0.1},
    }
    extra = training.get(name, {})
    model = small_model(name, **extra).train()
    torch.manual_seed(1)
    loss = F.cross_entropy(model(torch.randn(8, 1, 28, 28)), torch.randint(0, 10, (8,)))
    loss.backward()  # type: ignore[no-untyped-call]
    _all_grads_finite(model)


@pytest.mark.parametrize("name", NAMES)
def test_channels_last_matches_contiguous(name: str) -> None:
    model = small_model(name).eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        got = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_bf16_channels_last_training_step(name: str) -> None:
    """One step as the trainer takes it: channels_last, bf16 autocast, then fp32 gradients."""
    model = small_model(name).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    model.train()
    x = torch.randn(8, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(x), torch.randint(0, 10, (8,)))
    loss.backward()  # type: ignore[no-untyped-call]
    assert torch.isfinite(loss)
    _all_grads_finite(model)


@pytest.mark.parametrize("name", NAMES)
def test_overfits_one_batch(name: str) -> None:
    """32 random images with random labels are memorised (loss < 0.05) within 150 steps."""
    model = small_model(name).train()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, 1, 28, 28, generator=generator)
    y = torch.randint(0, 10, (32,), generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    start, losses = time.perf_counter(), []
    for _ in range(150):
        loss = F.cross_entropy(model(x), y)
        losses.append(loss.item())
        if losses[-1] < 0.05:
            break
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    assert losses[-1] < 0.05, f"{name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"
    assert time.perf_counter() - start < 30


def test_drop_path_is_identity_in_eval_and_drops_whole_samples_in_training() -> None:
    layer = DropPath(0.5)
    x = torch.ones(1000, 4, 8)
    assert layer.eval()(x) is x
    torch.manual_seed(0)
    out = layer.train()(x)
    per_sample = out.reshape(1000, -1)
    assert set(per_sample.unique().tolist()) == {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()  # a sample is kept or dropped as a whole
    assert 0.4 < float((per_sample[:, 0] == 0).float().mean()) < 0.6


@pytest.mark.parametrize("name", ["resnet", "vit"])
def test_trains_through_the_trainer_from_json_options(
    name: str, raw_dataset: RawDataset, tmp_path: Path
) -> None:
    """``fmnist train --model NAME`` path: list options from JSON, bf16/channels_last, reload."""
    options = {"resnet": {"widths": [32], "blocks_per_stage": 1}, "vit": {"patch_size": 14}}
    images, labels = raw_dataset.train_images[:384].copy(), raw_dataset.train_labels[:384].copy()
    splits = {"train": (images[:256], labels[:256]), "val": (images[256:], labels[256:])}
    snapshot = SimpleNamespace(snapshot_id="fake", split=splits.__getitem__)
    config = make_config(
        "default", model=name, model_options=options[name], epochs=1, batch_size=64, threads=1
    )
    result = train(config, snapshot, tmp_path / "ckpt.pt", show_progress=False)  # type: ignore[arg-type]
    assert len(result.history) == 1 and np.isfinite(result.history[0].train_loss)
    reloaded, _ = model_from_checkpoint(tmp_path / "ckpt.pt")
    test = raw_dataset.test_images[:16].copy()
    np.testing.assert_allclose(
        predict_logits(reloaded, test), predict_logits(result.model, test), atol=1e-5
    )


def test_vit_conv_stem_needs_a_power_of_two_patch() -> None:
    with pytest.raises(ConfigError, match="power-of-two patch_size, got 7"):
        small_model("vit", patch_size=7, stem="conv")
    with pytest.raises(ConfigError, match="stem must be 'patch' or 'conv'"):
        small_model("vit", stem="hybrid")


def test_optimizer_exempts_norms_biases_and_vit_embeddings_from_weight_decay() -> None:
    model = small_model("vit", patch_size=4, stem="conv")
    exempt = no_decay_parameter_names(model)
    assert {"pos_embed", "cls_token", "norm.weight", "head.1.bias"} <= exempt
    assert "blocks.0.attn.qkv.weight" not in exempt
    assert "patch_embed.0.weight" not in exempt
    config = TrainConfig(model="vit", weight_decay=0.05)
    decayed, exempted = build_optimizer(model, config).param_groups
    assert decayed["weight_decay"] == 0.05 and exempted["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in exempted["params"]} == exempt
    assert len(decayed["params"]) + len(exempted["params"]) == len(names)
