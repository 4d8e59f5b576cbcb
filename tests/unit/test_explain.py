"""fmnist.explain: every method's maps, heatmaps, the served-model loader and faithfulness.

A small CNN is trained for a few seconds on real images (one thread); a synthetic linear model
reads only a fixed set of pixels, so the truly important pixels are known.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fmnist.data.loaders import PIXEL_MEAN, PIXEL_STD
from fmnist.data.sources import RawDataset
from fmnist.errors import FmnistError
from fmnist.explain import (
    METHODS,
    ExplainOptions,
    ExplainTimeoutError,
    UnknownMethodError,
    explain,
    heatmap_png,
    load_served_model,
)
from fmnist.explain.faithfulness import (
    cascading_randomisation,
    deletion_insertion,
    evaluate_faithfulness,
    pixel_order,
    spearman,
    write_faithfulness,
)
from fmnist.explain.methods import segment
from fmnist.explain.model import ServedModel
from fmnist.models import build_ensemble, build_model

FAST = ExplainOptions(
    ig_steps=8, shap_samples=16, lime_num_samples=60, occlusion_window=4, occlusion_stride=4
)
"""Small sample counts: the tests check behaviour, not the quality of long runs."""


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def images(raw_subset: RawDataset) -> np.ndarray:
    """Six real test images."""
    return np.ascontiguousarray(raw_subset.test_images[:6])


@pytest.fixture(scope="module")
def trained(raw_subset: RawDataset) -> ServedModel:
    """A small CNN trained for 250 steps on 6,000 real images, wrapped as served."""
    torch.manual_seed(0)
    network = build_model("cnn", widths=(8, 16), convs_per_stage=1, dropout=0.0)
    model = ServedModel(network, 1.0)
    x = torch.from_numpy(raw_subset.train_images.astype(np.float32) / 255.0)[:, None]
    y = torch.from_numpy(raw_subset.train_labels.astype(np.int64))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    generator = torch.Generator().manual_seed(0)
    for _ in range(250):
        rows = torch.randint(0, len(x), (64,), generator=generator)
        loss = nn.functional.cross_entropy(model(x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def untrained() -> ServedModel:
    """The same architecture, randomly initialised."""
    torch.manual_seed(123)
    return ServedModel(build_model("cnn", widths=(8, 16), convs_per_stage=1), 1.0).eval()


class MaskReader(nn.Module):
    """Class 0's logit is a weighted sum of the pixels in ``mask`` only; others are constant."""

    def __init__(self, mask: np.ndarray, gain: float = 8.0) -> None:
        super().__init__()
        self.linear = nn.Linear(28 * 28, 10)
        with torch.no_grad():
            self.linear.weight.zero_()
            self.linear.weight[0, torch.from_numpy(np.flatnonzero(mask))] = gain / mask.sum()
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(x.flatten(1))
        return out


@pytest.fixture(scope="module")
def mask() -> np.ndarray:
    """40 scattered pixels (seeded) that alone decide the synthetic model's class 0."""
    flat = np.zeros(28 * 28, dtype=bool)
    flat[np.random.default_rng(7).choice(28 * 28, 40, replace=False)] = True
    return flat.reshape(28, 28)


@pytest.fixture(scope="module")
def bright_images() -> np.ndarray:
    """Random bright images: the synthetic model calls all of them class 0."""
    return np.random.default_rng(3).integers(120, 256, (8, 28, 28), dtype=np.uint8)


# --------------------------------------------------------------------------------- maps
@pytest.mark.parametrize("method", METHODS)
def test_each_method_returns_one_map_per_image(
    method: str, trained: ServedModel, untrained: ServedModel, images: np.ndarray
) -> None:
    """(N, 28, 28) float32 maps for the predicted classes; not those of a random model."""
    background = images[::-1].copy()
    result = explain(trained, images, method, background=background, options=FAST)
    assert result.method == method
    assert result.attributions.shape == (len(images), 28, 28)
    assert result.attributions.dtype == np.float32
    assert np.isfinite(result.attributions).all()
    assert np.abs(result.attributions).max() > 0
    with torch.no_grad():
        predicted = trained(torch.from_numpy(images.astype(np.float32) / 255)[:, None]).argmax(1)
    assert result.class_ids.tolist() == predicted.tolist()
    assert result.seconds > 0
    assert result.params

    other = explain(
        untrained,
        images,
        method,
        targets=result.class_ids,
        background=background,
        options=FAST,
    )
    assert not np.allclose(result.attributions, other.attributions)
    rho = spearman(np.abs(result.attributions), np.abs(other.attributions))
    assert np.nanmean(rho) < 0.95


def test_targets_choose_the_explained_class(trained: ServedModel, images: np.ndarray) -> None:
    """Explaining another class gives another map; integrated gradients are complete."""
    predicted = explain(trained, images[:2], options=FAST)
    others = (predicted.class_ids + 1) % 10
    result = explain(trained, images[:2], targets=others, options=ExplainOptions(ig_steps=64))
    assert result.class_ids.tolist() == others.tolist()
    assert not np.allclose(result.attributions, predicted.attributions)
    # completeness: the attributions add up to f(x) - f(black) for the explained logit
    x = torch.from_numpy(images[:2].astype(np.float32) / 255)[:, None]
    with torch.no_grad():
        gap = trained(x) - trained(torch.zeros_like(x))
    expected = gap[torch.arange(2), torch.from_numpy(others)].numpy()
    np.testing.assert_allclose(result.attributions.sum(axis=(1, 2)), expected, rtol=0.05, atol=0.05)


def test_an_unknown_method_is_a_clear_error(trained: ServedModel, images: np.ndarray) -> None:
    """The error names the bad method and every valid one."""
    with pytest.raises(UnknownMethodError) as caught:
        explain(trained, images, "gradcam")
    assert isinstance(caught.value, FmnistError)
    message = str(caught.value)
    assert "'gradcam'" in message
    assert all(m in message for m in METHODS)


def test_bad_images_and_targets_are_rejected(trained: ServedModel, images: np.ndarray) -> None:
    """Only uint8 (N, 28, 28) images and class ids 0-9, one per image."""
    with pytest.raises(ValueError, match="uint8"):
        explain(trained, images.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        explain(trained, images[:, :20])
    with pytest.raises(ValueError, match="targets"):
        explain(trained, images[:2], targets=np.array([1]))
    with pytest.raises(ValueError, match="0-9"):
        explain(trained, images[:1], targets=np.array([10]))


def test_a_deadline_stops_the_explanation(trained: ServedModel, images: np.ndarray) -> None:
    """Past the deadline the next model call raises; nothing hangs."""
    options = ExplainOptions(lime_num_samples=2000, lime_batch=50, deadline=time.monotonic())
    started = time.perf_counter()
    with pytest.raises(ExplainTimeoutError, match="time limit"):
        explain(trained, images, "lime", options=options)
    assert time.perf_counter() - started < 5


def test_lime_grid_segments_are_regular() -> None:
    """The default segmentation: 49 square cells of 16 pixels each."""
    labels = segment(np.zeros((28, 28), np.uint8), ExplainOptions())
    assert labels.shape == (28, 28)
    assert np.bincount(labels.ravel()).tolist() == [16] * 49


@pytest.mark.parametrize("segmentation", ["slic", "quickshift"])
def test_lime_other_segmentations(
    segmentation: str, trained: ServedModel, images: np.ndarray
) -> None:
    """SLIC and quickshift segment a grey 28x28 image and LIME runs on them."""
    options = ExplainOptions(lime_segmentation=segmentation, lime_num_samples=40)  # type: ignore[arg-type]
    labels = segment(images[0], options)
    assert labels.min() == 0 and labels.max() >= 1
    result = explain(trained, images[:1], "lime", options=options)
    assert result.params["segmentation"] == segmentation
    assert np.abs(result.attributions).max() > 0


# --------------------------------------------------------------------------------- heatmap
def test_heatmap_is_an_overlay_png_with_a_diverging_map() -> None:
    """Positive pixels red, negative blue, zero attribution shows the grey image."""
    image = np.full((28, 28), 100, np.uint8)
    attributions = np.zeros((28, 28), np.float32)
    attributions[0, 0], attributions[0, 1] = 1.0, -1.0
    png = heatmap_png(image, attributions, scale=4)
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert picture.shape == (112, 112, 3)
    red, blue, grey = picture[1, 1], picture[1, 5], picture[50, 50]
    assert red[0] > red[2] + 50
    assert blue[2] > blue[0] + 50
    assert grey.tolist() == [60, 60, 60]  # the image at 60 % contrast
    with pytest.raises(ValueError):
        heatmap_png(image, attributions[:27])


# --------------------------------------------------------------------------------- loader
def _save(path: Path, state: dict[str, object]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path.write_bytes(buffer.getvalue())


def test_load_served_model_rebuilds_a_training_run(tmp_path: Path, trained: ServedModel) -> None:
    """weights.pt as training writes it -> the served graph with its temperature."""
    config = {"model": "cnn", "model_options": {"widths": [8, 16], "convs_per_stage": 1}}
    _save(
        tmp_path / "weights.pt",
        {
            "config": config,
            "state_dict": trained.network.state_dict(),
            "temperature": 1.5,
            "snapshot_id": "abc",
        },
    )
    model = load_served_model(tmp_path)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x), trained(x))
        expected = torch.softmax(trained(x) / 1.5, -1)
        torch.testing.assert_close(model.probabilities(x), expected)
    assert model.info["snapshot_id"] == "abc"
    assert not model.training


def test_load_served_model_rebuilds_an_ensemble(tmp_path: Path) -> None:
    """An ensemble's weights (leaderboard format) are rebuilt by matching member shapes."""
    from fmnist.training.config import leaderboard_config

    options = leaderboard_config("cnn", "tiny").model_options
    torch.manual_seed(0)
    members = [build_model("cnn", **options).eval() for _ in range(2)]
    ensemble = build_ensemble(members, [0.3, 0.7], temperatures=[1.2, 0.9])
    rows = [
        {"model": "cnn", "version": 1, "run_id": "a", "weight": 0.3, "temperature": 1.2},
        {"model": "cnn", "version": 2, "run_id": "b", "weight": 0.7, "temperature": 0.9},
    ]
    _save(
        tmp_path / "weights.pt",
        {
            "config": {"model": "ensemble", "members": rows, "tta": False},
            "state_dict": ensemble.state_dict(),
            "temperature": 1.1,
            "snapshot_id": "abc",
        },
    )
    model = load_served_model(tmp_path)
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        expected = ensemble((x - PIXEL_MEAN) / PIXEL_STD)
        torch.testing.assert_close(model(x), expected, atol=1e-3, rtol=1e-3)


def test_an_ensemble_member_is_rebuilt_from_its_run_in_the_same_home(tmp_path: Path) -> None:
    """A member whose config no preset has is read from <home>/runs/<run_id>/weights.pt."""
    options = {"widths": [8, 12], "convs_per_stage": 1}
    torch.manual_seed(0)
    member = build_model("cnn", **options).eval()
    ensemble = build_ensemble([member], [1.0])
    run = tmp_path / "home" / "runs" / "abc123"
    run.mkdir(parents=True)
    _save(
        run / "weights.pt",
        {"config": {"model": "cnn", "model_options": options}, "state_dict": member.state_dict()},
    )
    served = tmp_path / "home" / "serving" / "models" / "ensemble" / "1"
    served.mkdir(parents=True)
    rows = [{"model": "cnn", "version": 1, "run_id": "abc123", "weight": 1.0, "temperature": 1.0}]
    _save(
        served / "weights.pt",
        {
            "config": {"model": "ensemble", "members": rows, "tta": False},
            "state_dict": ensemble.state_dict(),
            "temperature": 1.0,
        },
    )
    model = load_served_model(served)
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(
            model(x), ensemble((x - PIXEL_MEAN) / PIXEL_STD), atol=1e-3, rtol=1e-3
        )
    (run / "weights.pt").unlink()
    with pytest.raises(FmnistError, match="cannot rebuild ensemble member 0"):
        load_served_model(served)


def test_load_served_model_errors_are_clear(tmp_path: Path) -> None:
    """A folder without weights, or with a foreign file, is an FmnistError naming it."""
    with pytest.raises(FmnistError, match=r"no weights\.pt"):
        load_served_model(tmp_path)
    (tmp_path / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(FmnistError, match=r"weights\.pt"):
        load_served_model(tmp_path)


# --------------------------------------------------------------------------------- faithfulness
def test_deletion_of_the_known_pixels_beats_random(
    mask: np.ndarray, bright_images: np.ndarray
) -> None:
    """The metric itself: an oracle map (the mask) deletes and inserts better than random."""
    model = MaskReader(mask).eval()
    ids = np.zeros(len(bright_images), np.int64)
    oracle = np.broadcast_to(mask.astype(np.float32), bright_images.shape).copy()
    noise = np.random.default_rng(0).random(bright_images.shape).astype(np.float32)
    good = deletion_insertion(model, bright_images, ids, oracle, steps=14)
    bad = deletion_insertion(model, bright_images, ids, noise, steps=14)
    assert good.fractions[0] == 0 and good.fractions[-1] == 1
    assert np.allclose(good.deletion[:, 0], good.insertion[:, -1])  # full image at both ends
    assert good.deletion_auc.mean() < bad.deletion_auc.mean()
    assert good.insertion_auc.mean() > bad.insertion_auc.mean()


def test_pixel_order_breaks_ties_at_random() -> None:
    """Equal attributions are ordered by a seeded random draw, not by pixel index."""
    order = pixel_order(np.zeros((1, 28, 28)), seed=1)[0]
    assert sorted(order.tolist()) == list(range(784))
    assert order.tolist() != list(range(784))


def test_the_best_method_finds_the_known_pixels(
    tmp_path: Path, mask: np.ndarray, bright_images: np.ndarray
) -> None:
    """On the synthetic model the most faithful method's top pixels are the mask's."""
    model = MaskReader(mask).eval()
    run = evaluate_faithfulness(
        model,
        bright_images,
        METHODS,
        options=FAST,
        background=np.zeros((4, 28, 28), np.uint8),
        steps=14,
        randomisation_images=4,
        randomisation_checkpoints=2,
    )
    report = run.report
    assert [r.method for r in report.methods] == list(METHODS)
    best = min(report.methods, key=lambda r: r.deletion_auc)
    assert best.deletion_auc < report.random.deletion_auc
    assert best.insertion_auc > report.random.insertion_auc
    maps = run.explanations[best.method].attributions
    k = int(mask.sum())
    for attribution in maps:
        top = np.argsort(-attribution.ravel(), kind="stable")[:k]
        assert mask.ravel()[top].mean() >= 0.9
    for r in report.methods:  # a linear model: its one layer re-initialised changes every map
        assert r.randomisation and r.randomisation[-1].spearman_abs < 0.9

    files = write_faithfulness(run, tmp_path / "out", image_dir=tmp_path / "out" / "img")
    for path in files.values():
        assert path.is_file() and path.stat().st_size > 0
    markdown = files["markdown"].read_text()
    assert "| random |" in markdown and "img/deletion_insertion.png" in markdown


def test_cascading_randomisation_reinitialises_from_the_top(trained: ServedModel) -> None:
    """Each checkpoint re-initialises more layers; the trained model is untouched."""
    before = {k: v.clone() for k, v in trained.state_dict().items()}
    steps = cascading_randomisation(trained, 3, seed=0)
    assert [depth for _, depth, _ in steps] == sorted({d for _, d, _ in steps})
    assert steps[0][0].endswith("head.2") or "head" in steps[0][0]
    last = steps[-1][2].state_dict()
    changed = [
        k for k, v in last.items() if v.dtype.is_floating_point and not torch.equal(v, before[k])
    ]
    assert any("features.0" in k for k in changed) and any("head" in k for k in changed)
    for key, value in trained.state_dict().items():
        assert torch.equal(value, before[key])
    [(_, depth, _)] = cascading_randomisation(trained, 1, seed=0)
    assert depth == steps[-1][1]  # one checkpoint: every layer re-initialised
