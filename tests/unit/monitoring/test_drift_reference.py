"""Reference statistics and embeddings extracted from exported ONNX graphs of every kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("onnxscript")
torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fmnist.data.loaders import to_tensor  # noqa: E402
from fmnist.data.sources import RawDataset  # noqa: E402
from fmnist.evaluation.drift_reference import (  # noqa: E402
    INK_THRESHOLD,
    compute_reference,
    input_statistics,
    load_reference,
    save_reference,
)
from fmnist.models import build_ensemble, build_model  # noqa: E402
from fmnist.registry.onnx_embedding import OnnxEmbedder  # noqa: E402
from fmnist.registry.onnx_export import export_onnx  # noqa: E402
from fmnist.registry.onnx_runtime import OnnxClassifier  # noqa: E402

ARCHITECTURES = {
    "cnn": {"widths": (8, 16), "convs_per_stage": 1},
    "resnet": {"widths": (8, 16), "blocks_per_stage": 1},
    "vit": {"patch_size": 7, "dim": 16, "depth": 1, "heads": 2},
    "mlp": {"hidden": 32},
}


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, **ARCHITECTURES[name]).eval()


def _penultimate(model: nn.Module, images: npt.NDArray[np.uint8]) -> np.ndarray:
    """The input of the model's last ``nn.Linear``, captured with a forward hook in PyTorch."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    seen: list[torch.Tensor] = []
    handle = last.register_forward_hook(lambda _m, args, _out: seen.append(args[0]))
    try:
        with torch.no_grad():
            model(to_tensor(images.copy()))
    finally:
        handle.remove()
    return seen[0].reshape(len(images), -1).numpy()


@pytest.fixture(scope="module")
def images(raw_dataset: RawDataset) -> npt.NDArray[np.uint8]:
    """300 real validation-like images (from the training set)."""
    return raw_dataset.train_images[:300]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each architecture, and a two-member ensemble, exported at temperature 1.5."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("graphs")
    paths = {
        name: export_onnx(_model(name), out / f"{name}.onnx", temperature=1.5)
        for name in ARCHITECTURES
    }
    ensemble = build_ensemble([_model("cnn"), _model("mlp")])
    paths["ensemble"] = export_onnx(ensemble, out / "ensemble.onnx")
    return paths


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_embedding_is_the_input_of_the_final_linear_layer(
    name: str, exported: dict[str, Path], images: npt.NDArray[np.uint8]
) -> None:
    embedder = OnnxEmbedder(exported[name])
    assert embedder.source.kind == "penultimate"
    probs, embeddings = embedder.features(images)
    np.testing.assert_allclose(
        probs, OnnxClassifier(exported[name]).predict_proba(images), atol=1e-6
    )
    expected = _penultimate(_model(name), images)
    assert embeddings.shape == expected.shape
    np.testing.assert_allclose(embeddings, expected, atol=2e-4, rtol=1e-3)


def test_ensemble_falls_back_to_logits_and_says_so(
    exported: dict[str, Path], images: npt.NDArray[np.uint8]
) -> None:
    embedder = OnnxEmbedder(exported["ensemble"])
    assert embedder.source.kind == "logits"
    assert "no single final linear layer" in embedder.source.note
    _, embeddings = embedder.features(images)
    np.testing.assert_allclose(
        embeddings, OnnxClassifier(exported["ensemble"]).predict_logits(images), atol=1e-6
    )
    reference = compute_reference(exported["ensemble"], images, pca_dims=32)
    assert reference.info.embedding_kind == "logits"
    assert reference.info.pca_dims == 10  # at most the logits' width


def test_reference_round_trip_and_contents(
    exported: dict[str, Path], images: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, len(images))
    reference = compute_reference(exported["cnn"], images, labels, pca_dims=8, max_rows=200)
    info = reference.info
    assert info.n == 200 and reference.probabilities.shape == (200, 10)
    assert reference.embeddings.shape == (200, 8) and info.embedding_dim == 16 * 7 * 7
    assert info.accuracy == pytest.approx(
        float((reference.probabilities.argmax(1) == reference.labels).mean())
    )
    assert 0 < info.pca_explained_variance <= 1.0
    assert info.photo_share is None and info.ink_threshold == INK_THRESHOLD
    # The stored projection reproduces the stored embeddings from the model's raw ones.
    embedder = OnnxEmbedder(exported["cnn"])
    assert embedder.sha256 == info.onnx_sha256
    npz, meta = save_reference(reference.with_model("fmnist-classifier", 3), tmp_path / "ref")
    assert npz.is_file() and meta.is_file()
    loaded = load_reference(tmp_path / "ref")
    assert loaded.info.model_name == "fmnist-classifier" and loaded.info.model_version == 3
    np.testing.assert_array_equal(loaded.probabilities, reference.probabilities)
    np.testing.assert_array_equal(loaded.embeddings, reference.embeddings)
    assert loaded.labels is not None
    np.testing.assert_array_equal(loaded.labels, reference.labels)
    full = compute_reference(exported["cnn"], images, pca_dims=8)
    _, raw = embedder.features(images)
    np.testing.assert_allclose(full.pca.transform(raw), full.embeddings, atol=1e-5)
    assert full.labels is None and full.info.accuracy is None


def test_input_statistics() -> None:
    image = np.zeros((2, 28, 28), dtype=np.uint8)
    image[0, :14] = 255  # top half white
    image[1, 0, :7] = INK_THRESHOLD  # at the threshold: not ink
    stats = input_statistics(image)
    np.testing.assert_allclose(stats["mean_intensity"], [0.5, 7 * INK_THRESHOLD / 255 / 784])
    np.testing.assert_allclose(stats["ink_fraction"], [0.5, 0.0])
    with pytest.raises(ValueError, match="uint8"):
        input_statistics(image.astype(np.float32))
