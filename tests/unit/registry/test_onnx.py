"""ONNX export, parity, torch-free inference and INT8 quantisation on a small real CNN."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("onnxscript")
onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fmnist import CLASS_NAMES  # noqa: E402
from fmnist.data.loaders import to_tensor  # noqa: E402
from fmnist.data.sources import RawDataset  # noqa: E402
from fmnist.errors import ExportError  # noqa: E402
from fmnist.registry import onnx_export  # noqa: E402
from fmnist.registry.onnx_export import (  # noqa: E402
    InferenceModel,
    QuantizationReport,
    check_parity,
    evaluate_quantization,
    export_onnx,
    export_onnx_checked,
    quantize_int8,
)
from fmnist.registry.onnx_runtime import OnnxClassifier  # noqa: E402

N_TRAIN = 3_000


def small_cnn() -> nn.Module:
    """Conv-BN-ReLU-Pool x2 then two linear layers: about 220k parameters."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 5 * 5, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


@pytest.fixture(scope="module")
def trained(raw_dataset: RawDataset) -> nn.Module:
    """The small CNN after 200 Adam steps on 3,000 real training images (eval mode)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = small_cnn()
    x = to_tensor(raw_dataset.train_images[:N_TRAIN].copy())
    y = torch.from_numpy(raw_dataset.train_labels[:N_TRAIN].astype(np.int64))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        idx = torch.randint(0, N_TRAIN, (64,), generator=generator)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def test_images(raw_dataset: RawDataset) -> npt.NDArray[np.uint8]:
    """1,000 real test images."""
    return raw_dataset.test_images[:1_000]


@pytest.fixture(scope="module")
def exported(trained: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained CNN exported at temperature 1 with one extra metadata entry."""
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return export_onnx(trained, path, metadata={"run_id": "abc123"})


@pytest.fixture(scope="module")
def quantized(
    exported: Path, raw_dataset: RawDataset, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Static INT8 version of ``exported``, calibrated on 500 unseen training images."""
    calibration = raw_dataset.train_images[N_TRAIN : N_TRAIN + 500]
    out = tmp_path_factory.mktemp("int8") / "model.int8.onnx"
    return quantize_int8(exported, out, calibration)


def test_export_round_trip(exported: Path) -> None:
    assert exported.is_file()
    assert sorted(p.name for p in exported.parent.iterdir()) == ["model.onnx"]  # no .onnx.data
    proto = onnx.load(str(exported))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["logits", "probabilities"]
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value
    clf = OnnxClassifier(exported)
    rng = np.random.default_rng(0)
    for n in (1, 37):
        probs = clf.predict_proba(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        assert probs.shape == (n, 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_inference_model_matches_training_normalisation(
    trained: nn.Module, test_images: npt.NDArray[np.uint8]
) -> None:
    images = test_images[:64]
    with torch.no_grad():
        expected = trained(to_tensor(images.copy()))
        x = torch.from_numpy(images.copy()).to(torch.float32).div(255.0).unsqueeze(1)
        logits, probs = InferenceModel(trained, temperature=2.0)(x)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(probs, torch.softmax(expected / 2.0, dim=1))
    with pytest.raises(ValueError, match="temperature"):
        InferenceModel(trained, temperature=0.0)


def test_parity_passes_on_real_images(
    trained: nn.Module, exported: Path, test_images: npt.NDArray[np.uint8]
) -> None:
    report = check_parity(trained, exported, test_images)
    assert report.passed, report
    assert report.n == 1_000
    assert report.max_abs_prob_diff <= 1e-4
    assert report.max_abs_logit_diff < 1e-3
    assert report.argmax_agreement >= 0.999


def test_parity_against_a_different_model_fails(
    exported: Path, test_images: npt.NDArray[np.uint8]
) -> None:
    torch.manual_seed(1)
    report = check_parity(small_cnn().eval(), exported, test_images[:200])
    assert not report.passed
    assert report.max_abs_prob_diff > 1e-2
    assert report.argmax_agreement < 0.9


def test_failed_parity_raises_and_leaves_no_file(
    trained: nn.Module,
    test_images: npt.NDArray[np.uint8],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_export = onnx_export._export_proto

    def corrupting_export(wrapped: InferenceModel, opset: int) -> onnx.ModelProto:
        proto = real_export(wrapped, opset)
        weight = next(t for t in proto.graph.initializer if len(t.dims) == 4)
        values = onnx.numpy_helper.to_array(weight) * 1.5
        weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
        return proto

    monkeypatch.setattr(onnx_export, "_export_proto", corrupting_export)
    path = tmp_path / "out" / "model.onnx"
    with pytest.raises(ExportError, match="parity"):
        export_onnx_checked(trained, path, test_images[:200])
    assert list(path.parent.iterdir()) == []

    path.write_bytes(b"previous good model")
    with pytest.raises(ExportError):
        export_onnx_checked(trained, path, test_images[:200])
    assert path.read_bytes() == b"previous good model"
    assert list(path.parent.iterdir()) == [path]


def test_checked_export_of_train_mode_channels_last_model(
    trained: nn.Module, test_images: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    model = copy.deepcopy(trained).to(memory_format=torch.channels_last).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    path = tmp_path / "cl.onnx"
    report = export_onnx_checked(model, path, test_images)
    assert report.passed and report.max_abs_prob_diff <= 1e-4
    # BatchNorm ran in eval mode inside the export; the caller's model is untouched.
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cl.onnx"]
    with torch.no_grad():
        expected = trained(to_tensor(test_images[:50].copy())).numpy()
    np.testing.assert_allclose(
        OnnxClassifier(path).predict_logits(test_images[:50]), expected, atol=1e-4
    )


def test_temperature_scales_probabilities_not_logits(
    trained: nn.Module, exported: Path, test_images: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    hot = export_onnx(trained, tmp_path / "hot.onnx", temperature=2.5)
    images = test_images[:100]
    base, scaled = OnnxClassifier(exported), OnnxClassifier(hot)
    assert scaled.temperature == 2.5
    logits, probs = scaled.run(images)
    np.testing.assert_allclose(logits, base.predict_logits(images), atol=1e-5)
    assert np.abs(probs - base.predict_proba(images)).max() > 0.05
    z = logits.astype(np.float64) / 2.5
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, expected / expected.sum(axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_array_equal(scaled.predict(images), base.predict(images))
    assert check_parity(trained, hot, images, temperature=2.5).passed
    assert not check_parity(trained, hot, images, temperature=1.0).passed


def test_metadata_read_back(exported: Path) -> None:
    clf = OnnxClassifier(exported)
    assert clf.temperature == 1.0
    assert clf.class_names == CLASS_NAMES
    assert clf.num_classes == 10
    assert clf.metadata["fmnist.input"] == "float32 [N,1,28,28] in [0,1]"
    assert json.loads(clf.metadata["fmnist.class_names"]) == list(CLASS_NAMES)
    assert json.loads(clf.metadata["fmnist.normalization"]) == {"mean": 0.286, "std": 0.353}
    assert clf.metadata["run_id"] == "abc123"


def test_reserved_metadata_and_bad_models_are_rejected(trained: nn.Module, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reserved"):
        export_onnx(trained, tmp_path / "m.onnx", metadata={"fmnist.temperature": "3"})
    with pytest.raises(ExportError, match="logits of shape"):
        export_onnx(nn.Sequential(nn.Flatten(), nn.Linear(784, 3)), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):
        OnnxClassifier(tmp_path / "missing.onnx")


def test_classifier_accepts_uint8_and_float_input(
    exported: Path, test_images: npt.NDArray[np.uint8]
) -> None:
    images = test_images[:300]
    clf = OnnxClassifier(exported, batch_size=64)
    as_float = images.astype(np.float32)[:, None] / 255.0
    np.testing.assert_array_equal(clf.predict_proba(images), clf.predict_proba(as_float))
    np.testing.assert_array_equal(clf.predict(images), clf.predict(as_float))
    big_batches = OnnxClassifier(exported).predict_logits(images)
    np.testing.assert_allclose(clf.predict_logits(images), big_batches, atol=1e-5)
    assert clf.predict(images).dtype == np.int64
    assert clf.predict_proba(images[:0]).shape == (0, 10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        clf.predict(images.astype(np.float32))
    with pytest.raises(TypeError, match="dtype"):
        clf.predict(images.astype(np.int32))
    with pytest.raises(ValueError, match="shaped"):
        clf.predict(np.zeros((2, 3, 28, 28), dtype=np.uint8))


def test_static_int8_is_smaller_and_accurate(
    exported: Path,
    quantized: Path,
    raw_dataset: RawDataset,
    test_images: npt.NDArray[np.uint8],
) -> None:
    labels = raw_dataset.test_labels[:1_000]
    report = evaluate_quantization(exported, quantized, test_images, labels, repeats=3)
    assert isinstance(report, QuantizationReport)
    assert report.int8_mb < report.fp32_mb / 2
    assert report.fp32_accuracy > 0.7
    assert report.accuracy_drop_points == pytest.approx(
        (report.fp32_accuracy - report.int8_accuracy) * 100
    )
    assert abs(report.accuracy_drop_points) < 2.0
    assert report.prediction_agreement > 0.97
    assert report.speedup == pytest.approx(report.fp32_ms_per_image / report.int8_ms_per_image)
    assert report.accepted == (report.accuracy_drop_points < 0.3)
    clf = OnnxClassifier(quantized)
    assert clf.temperature == 1.0 and clf.metadata["run_id"] == "abc123"
    assert clf.metadata["fmnist.quantization"].startswith("int8 static")
    ops = {n.op_type for n in onnx.load(str(quantized)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    np.testing.assert_allclose(clf.predict_proba(test_images[:10]).sum(axis=1), 1.0, atol=1e-5)


def test_dynamic_int8_and_argument_checks(
    exported: Path, raw_dataset: RawDataset, test_images: npt.NDArray[np.uint8], tmp_path: Path
) -> None:
    out = quantize_int8(exported, tmp_path / "dyn.onnx", None, method="dynamic")
    assert out.stat().st_size < exported.stat().st_size / 2
    labels = raw_dataset.test_labels[:1_000]
    fp32 = float((OnnxClassifier(exported).predict(test_images) == labels).mean())
    int8 = float((OnnxClassifier(out).predict(test_images) == labels).mean())
    assert abs(fp32 - int8) < 0.02
    with pytest.raises(ValueError, match="calibration"):
        quantize_int8(exported, tmp_path / "x.onnx", None)
    with pytest.raises(ValueError, match="method"):
        quantize_int8(exported, tmp_path / "x.onnx", test_images, method="fp16")  # type: ignore[arg-type]


def test_onnx_runtime_module_does_not_import_torch(exported: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from fmnist.registry.onnx_runtime import OnnxClassifier\n"
        f"clf = OnnxClassifier({str(exported)!r})\n"
        "assert clf.predict_proba(np.zeros((3, 28, 28), np.uint8)).shape == (3, 10)\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx'))\n"
        "assert not leaked, leaked\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
