"""Every architecture, and an ensemble of them, exports to one ONNX graph with parity."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch
from torch import nn

pytest.importorskip("onnxscript")
onnx = pytest.importorskip("onnx")

from fmnist.data.loaders import to_tensor  # noqa: E402
from fmnist.data.sources import RawDataset  # noqa: E402
from fmnist.errors import QuantizationError  # noqa: E402
from fmnist.models import build_ensemble  # noqa: E402
from fmnist.registry.onnx_export import (  # noqa: E402
    ParityReport,
    export_onnx_checked,
    quantize_int8,
)
from fmnist.registry.onnx_runtime import OnnxClassifier  # noqa: E402

from .zoo_configs import SMALL, make_nontrivial, small_model  # noqa: E402

N_PARITY = 200


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def parity_images(raw_dataset: RawDataset) -> npt.NDArray[np.uint8]:
    """200 real test images."""
    return raw_dataset.test_images[:N_PARITY]


@pytest.fixture(scope="module")
def stat_batches(raw_dataset: RawDataset) -> list[torch.Tensor]:
    """Four normalised batches of 64 real training images, for batch-norm statistics."""
    images = raw_dataset.train_images[:256].copy()
    return [to_tensor(images[i : i + 64]) for i in range(0, 256, 64)]


def prepared(name: str, batches: list[torch.Tensor], seed: int = 0) -> nn.Module:
    model = small_model(name, seed=seed)
    make_nontrivial(model, batches)
    return model


def assert_parity(report: ParityReport, path: Path, images: npt.NDArray[np.uint8]) -> None:
    assert report.passed, report
    assert report.n == N_PARITY
    assert report.max_abs_prob_diff < 1e-5
    assert report.argmax_agreement == 1.0
    # The outputs are not near-uniform, so the comparison means something.
    assert OnnxClassifier(path).predict_proba(images).max(axis=1).mean() > 0.3


@pytest.mark.parametrize("name", sorted(SMALL))
def test_architecture_exports_with_parity(
    name: str,
    tmp_path: Path,
    parity_images: npt.NDArray[np.uint8],
    stat_batches: list[torch.Tensor],
) -> None:
    model = prepared(name, stat_batches)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / f"{name}.onnx"
    report = export_onnx_checked(model, path, parity_images, temperature=1.3)
    assert_parity(report, path, parity_images)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_ensemble_exports_as_one_graph_with_parity(
    tmp_path: Path, parity_images: npt.NDArray[np.uint8], stat_batches: list[torch.Tensor]
) -> None:
    members = [
        prepared(name, stat_batches, seed) for seed, name in enumerate(["cnn", "resnet", "vit"])
    ]
    ensemble = build_ensemble(members, [0.5, 0.3, 0.2], tta=True, temperatures=[1.0, 1.5, 0.8])
    path = tmp_path / "ensemble.onnx"
    report = export_onnx_checked(ensemble, path, parity_images)
    assert_parity(report, path, parity_images)
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == ["logits", "probabilities"]
    assert {"Conv", "Softmax"} <= {node.op_type for node in graph.node}
    assert not any(node.op_type in ("Loop", "If") for node in graph.node)
    # With temperature 1 the file serves the ensemble's average probabilities.
    with torch.no_grad():
        expected = ensemble.member_log_probs(to_tensor(parity_images[:8].copy())).exp()
    average = (torch.tensor([0.5, 0.3, 0.2])[:, None, None] * expected).sum(0).numpy()
    np.testing.assert_allclose(
        OnnxClassifier(path).predict_proba(parity_images[:8]), average, atol=1e-5
    )


def test_vit_with_conv_stem_exports_with_parity(
    tmp_path: Path, parity_images: npt.NDArray[np.uint8], stat_batches: list[torch.Tensor]
) -> None:
    model = small_model("vit", patch_size=4, stem="conv")
    make_nontrivial(model, stat_batches)
    path = tmp_path / "vit-conv.onnx"
    assert_parity(export_onnx_checked(model, path, parity_images), path, parity_images)


def test_ensemble_graph_quantizes_to_int8(
    tmp_path: Path, parity_images: npt.NDArray[np.uint8], stat_batches: list[torch.Tensor]
) -> None:
    """ORT's symbolic shape inference fails on this graph; quantisation must still work."""
    members = [prepared(name, stat_batches, seed) for seed, name in enumerate(["cnn", "resnet"])]
    ensemble = build_ensemble(members, [0.6, 0.4], tta=True, temperatures=[1.0, 1.2])
    path = tmp_path / "ensemble.onnx"
    export_onnx_checked(ensemble, path, parity_images)
    int8 = quantize_int8(path, tmp_path / "ensemble.int8.onnx", parity_images[:64])
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert "QuantizeLinear" in ops
    fp32_pred = OnnxClassifier(path).predict(parity_images)
    agreement = (OnnxClassifier(int8).predict(parity_images) == fp32_pred).mean()
    assert agreement > 0.9


def test_quantization_failure_is_a_quantization_error_and_writes_nothing(
    tmp_path: Path, parity_images: npt.NDArray[np.uint8], stat_batches: list[torch.Tensor]
) -> None:
    path = tmp_path / "cnn.onnx"
    export_onnx_checked(prepared("cnn", stat_batches), path, parity_images)
    model = onnx.load(str(path))
    model.graph.node[0].input[0] = "no_such_tensor"  # a graph ORT cannot even pre-process
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    out = tmp_path / "broken.int8.onnx"
    with pytest.raises(QuantizationError, match=r"INT8 .* of broken\.onnx failed"):
        quantize_int8(broken, out, parity_images[:64])
    assert not out.exists()
