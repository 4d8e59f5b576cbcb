"""Export trained classifiers to self-contained ONNX files, check parity, quantise to INT8.

The exported graph is :class:`InferenceModel`: it takes float32 pixels in [0, 1] with shape
``(N, 1, 28, 28)``, applies the training normalisation itself and returns raw ``logits`` and
temperature-scaled ``probabilities``, so serving never re-implements preprocessing. Every export
through :func:`export_onnx_checked` is compared with the PyTorch model on real images and is not
published when they disagree. Inference on the files lives in the torch-free
:mod:`fmnist.registry.onnx_runtime`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import onnx
import torch
from pydantic import BaseModel
from torch import nn

from fmnist import CLASS_NAMES, IMAGE_SIZE, __version__
from fmnist.atomic import atomic_write_bytes
from fmnist.data.loaders import PIXEL_MEAN, PIXEL_STD
from fmnist.errors import ExportError, QuantizationError
from fmnist.registry.onnx_runtime import (
    INPUT_DESCRIPTION,
    INPUT_NAME,
    LOGITS,
    META_CLASS_NAMES,
    META_FORMAT_VERSION,
    META_INPUT,
    META_NORMALIZATION,
    META_OUTPUTS,
    META_PREFIX,
    META_QUANTIZATION,
    META_TEMPERATURE,
    PROBABILITIES,
    OnnxClassifier,
    to_model_input,
)

logger = logging.getLogger(__name__)

FORMAT_VERSION = "1"
"""Version of the input/output contract recorded in ``fmnist.format_version``."""

_TORCH_BATCH = 512


def _check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not (math.isfinite(t) and t > 0.0):
        raise ValueError(f"temperature must be a finite positive number, got {temperature}")
    return t


def _check_uint8_images(images: npt.NDArray[np.uint8], what: str) -> None:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE,) * 2:
        raise ValueError(
            f"{what} must be uint8 (N, {IMAGE_SIZE}, {IMAGE_SIZE}), got {images.dtype} "
            f"{images.shape}"
        )
    if len(images) == 0:
        raise ValueError(f"{what} is empty")


class InferenceModel(nn.Module):
    """A trained classifier as served: [0, 1] pixels in, logits and probabilities out.

    ``image`` is float32 ``(N, 1, 28, 28)`` holding ``raw / 255``; the model normalises it with
    the training statistics and returns ``(logits, softmax(logits / temperature))``.
    """

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor
    temperature: torch.Tensor

    def __init__(self, model: nn.Module, temperature: float = 1.0) -> None:
        """Wrap ``model`` (which expects normalised input) with a fixed softmax temperature."""
        super().__init__()
        self.model = model
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD), persistent=False)
        self.register_buffer(
            "temperature", torch.tensor(_check_temperature(temperature)), persistent=False
        )

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return raw logits and temperature-scaled probabilities, both ``(N, classes)``."""
        logits = self.model((image - self.pixel_mean) / self.pixel_std)
        return logits, torch.softmax(logits / self.temperature, dim=-1)


def _inference_copy(model: nn.Module, temperature: float) -> InferenceModel:
    """A CPU float32 eval-mode copy, so the caller's model (device, mode) is left untouched."""
    wrapped = InferenceModel(copy.deepcopy(model), temperature)
    return wrapped.to(device="cpu", dtype=torch.float32).eval()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress chatter and deprecation noise, restoring state after."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _export_proto(wrapped: InferenceModel, opset: int) -> onnx.ModelProto:
    example = torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE)  # batch 2: 1 would be specialised
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                wrapped,
                (example,),
                None,
                input_names=[INPUT_NAME],
                output_names=[LOGITS, PROBABILITIES],
                dynamic_shapes={"image": {0: torch.export.Dim("batch")}},
                opset_version=opset,
                external_data=False,
                dynamo=True,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:  # ORT raises bare Exceptions
        raise ExportError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from exc
    if program is None:  # pragma: no cover - only when writing to a file
        raise ExportError("torch.onnx.export returned no program")
    proto: onnx.ModelProto = program.model_proto
    return proto


def export_onnx(
    model: nn.Module,
    path: Path,
    *,
    temperature: float = 1.0,
    opset: int = 18,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Export ``InferenceModel(model, temperature)`` to one self-contained ONNX file.

    The graph has input ``image`` (float32 ``[N,1,28,28]`` in [0, 1], dynamic batch) and outputs
    ``logits`` and ``probabilities``; weights are embedded (no ``.onnx.data``). Metadata records
    the temperature, input contract, normalisation and class names, plus ``metadata`` (keys must
    not start with ``fmnist.``). The file is checked with ``onnx.checker`` and written
    atomically; the caller's model is not modified. Raises :class:`ExportError` on failure.
    """
    extra = dict(metadata or {})
    clashes = sorted(k for k in extra if k.startswith(META_PREFIX))
    if clashes:
        raise ValueError(f"metadata keys starting with {META_PREFIX!r} are reserved: {clashes}")
    t = _check_temperature(temperature)
    wrapped = _inference_copy(model, t)
    example = torch.zeros(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        logits, _ = wrapped(example)
    if logits.ndim != 2 or logits.shape[1] != len(CLASS_NAMES):
        raise ExportError(
            f"model returns logits of shape {tuple(logits.shape)} for a batch of 2; "
            f"expected (2, {len(CLASS_NAMES)})"
        )
    proto = _export_proto(wrapped, opset)
    props = {
        **extra,
        META_FORMAT_VERSION: FORMAT_VERSION,
        META_TEMPERATURE: repr(t),
        META_INPUT: INPUT_DESCRIPTION,
        META_OUTPUTS: (
            f"{LOGITS} float32 [N,{len(CLASS_NAMES)}] raw; "
            f"{PROBABILITIES} float32 [N,{len(CLASS_NAMES)}] = softmax({LOGITS} / temperature)"
        ),
        META_NORMALIZATION: json.dumps({"mean": PIXEL_MEAN, "std": PIXEL_STD}),
        META_CLASS_NAMES: json.dumps(list(CLASS_NAMES)),
        "fmnist.version": __version__,
        "fmnist.torch_version": torch.__version__,
    }
    onnx.helper.set_model_props(proto, props)
    proto.doc_string = "Fashion-MNIST classifier exported by fmnist"
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"exported ONNX model is invalid: {exc}") from exc
    atomic_write_bytes(path, proto.SerializeToString())
    return path


class ParityReport(BaseModel):
    """How closely an ONNX file reproduces the PyTorch model on the same images."""

    n: int
    max_abs_prob_diff: float
    max_abs_logit_diff: float
    argmax_agreement: float
    max_prob_diff_allowed: float
    min_agreement_required: float
    passed: bool


def _torch_outputs(
    model: nn.Module, x: npt.NDArray[np.float32], temperature: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    wrapped = _inference_copy(model, temperature)
    logits, probs = [], []
    with torch.inference_mode():
        for start in range(0, len(x), _TORCH_BATCH):
            z, p = wrapped(torch.from_numpy(x[start : start + _TORCH_BATCH]))
            logits.append(z.numpy())
            probs.append(p.numpy())
    return np.concatenate(logits), np.concatenate(probs)


def check_parity(
    model: nn.Module,
    onnx_path: Path,
    images_uint8: npt.NDArray[np.uint8],
    *,
    temperature: float = 1.0,
    max_prob_diff: float = 1e-4,
    min_agreement: float = 0.999,
) -> ParityReport:
    """Compare PyTorch fp32 (eval mode, CPU) with ONNX Runtime on ``images_uint8 (N, 28, 28)``.

    Passes when the largest absolute probability difference is at most ``max_prob_diff`` and
    the predicted classes agree on at least ``min_agreement`` of the images (NaNs fail).
    """
    _check_uint8_images(images_uint8, "parity images")
    x = to_model_input(images_uint8)
    ref_logits, ref_probs = _torch_outputs(model, x, temperature)
    ort_logits, ort_probs = OnnxClassifier(onnx_path).run(x)
    if ort_logits.shape != ref_logits.shape:
        raise ExportError(
            f"{onnx_path}: ONNX logits shape {ort_logits.shape} != torch {ref_logits.shape}"
        )

    def max_diff(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        return float("inf") if not np.isfinite(d).all() else float(d.max())

    prob_diff = max_diff(ort_probs, ref_probs)
    agreement = float((ort_logits.argmax(1) == ref_logits.argmax(1)).mean())
    return ParityReport(
        n=len(x),
        max_abs_prob_diff=prob_diff,
        max_abs_logit_diff=max_diff(ort_logits, ref_logits),
        argmax_agreement=agreement,
        max_prob_diff_allowed=max_prob_diff,
        min_agreement_required=min_agreement,
        passed=prob_diff <= max_prob_diff and agreement >= min_agreement,
    )


def export_onnx_checked(
    model: nn.Module,
    path: Path,
    images_uint8: npt.NDArray[np.uint8],
    *,
    temperature: float = 1.0,
    opset: int = 18,
    max_prob_diff: float = 1e-4,
    min_agreement: float = 0.999,
    metadata: Mapping[str, str] | None = None,
) -> ParityReport:
    """Export, then check parity on ``images_uint8``; publish ``path`` only if parity passes.

    The file is exported to a temporary name in the same folder and renamed into place after
    the check, so a failing export raises :class:`ExportError` and leaves no new file (an
    existing file at ``path`` is kept).
    """
    _check_uint8_images(images_uint8, "parity images")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".onnx")
    tmp = Path(name)
    try:
        os.close(fd)  # the name is reserved; export_onnx replaces the file atomically
        export_onnx(model, tmp, temperature=temperature, opset=opset, metadata=metadata)
        report = check_parity(
            model,
            tmp,
            images_uint8,
            temperature=temperature,
            max_prob_diff=max_prob_diff,
            min_agreement=min_agreement,
        )
        if not report.passed:
            raise ExportError(
                f"ONNX export of {path.name} failed the parity check on {report.n} images: "
                f"max |prob diff| {report.max_abs_prob_diff:.3g} (allowed {max_prob_diff:g}), "
                f"argmax agreement {report.argmax_agreement:.4f} (required {min_agreement:g}); "
                "nothing was written"
            )
        tmp.replace(path)
        return report
    finally:
        tmp.unlink(missing_ok=True)


class QuantizationReport(BaseModel):
    """FP32 against INT8: accuracy, latency at one batch size, file size, and the verdict."""

    n: int
    fp32_accuracy: float
    int8_accuracy: float
    accuracy_drop_points: float
    prediction_agreement: float
    batch_size: int
    threads: int
    fp32_ms_per_image: float
    int8_ms_per_image: float
    speedup: float
    fp32_mb: float
    int8_mb: float
    max_drop_points: float
    accepted: bool


def _calibration_reader(input_name: str, images: npt.NDArray[np.uint8], batch: int) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._x = to_model_input(images)
            self._start = 0

        def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
            if self._start >= len(self._x):
                return None
            chunk = self._x[self._start : self._start + batch]
            self._start += batch
            return {input_name: chunk}

        def rewind(self) -> None:
            self._start = 0

    return _Reader()


def _pre_process(source: Path, target: Path, quant_pre_process: Any) -> None:
    """ONNX Runtime's pre-processing, without symbolic shape inference if that fails.

    Symbolic shape inference cannot follow every graph (an ensemble's concatenated members
    defeat it); the plain ONNX shape inference that remains is enough for quantisation.
    """
    try:
        quant_pre_process(str(source), str(target))
    except Exception as exc:  # ORT raises bare Exceptions
        logger.info("symbolic shape inference failed (%s); retrying without it", exc)
        try:
            quant_pre_process(str(source), str(target), skip_symbolic_shape=True)
        except Exception as retry:
            raise QuantizationError(
                f"INT8 pre-processing of {source.name} failed: {retry}"
            ) from retry


def quantize_int8(
    onnx_path: Path,
    out_path: Path,
    calibration_images_uint8: npt.NDArray[np.uint8] | None,
    *,
    method: Literal["static", "dynamic"] = "static",
) -> Path:
    """Quantise an exported FP32 model to INT8 with ONNX Runtime and write it atomically.

    ``static`` (default): QDQ format, int8 activations and per-channel int8 weights, calibrated
    by min/max over ``calibration_images_uint8 (N, 28, 28)`` (a few hundred training images
    suffice). ``dynamic``: int8 weights of the fully-connected layers only, activations quantised
    at run time; needs no calibration images. In both, the softmax and the layer producing
    ``logits`` stay in float so probabilities keep full resolution. Metadata is carried over
    and ``fmnist.quantization`` added. Raises :class:`QuantizationError` when ONNX Runtime
    cannot quantise the graph; nothing is written then.
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in ("static", "dynamic"):
        raise ValueError(f"method must be 'static' or 'dynamic', got {method!r}")
    if method == "static":
        if calibration_images_uint8 is None:
            raise ValueError("static quantisation needs calibration images")
        _check_uint8_images(calibration_images_uint8, "calibration images")
    source = onnx.load(str(onnx_path))
    with tempfile.TemporaryDirectory(prefix="fmnist-quant-") as tmp_dir:
        pre, out = Path(tmp_dir) / "pre.onnx", Path(tmp_dir) / "int8.onnx"
        _pre_process(onnx_path, pre, quant_pre_process)
        try:
            note = _quantize(pre, out, calibration_images_uint8, method)
            quantized = onnx.load(str(out))
        except Exception as exc:  # ORT raises bare Exceptions
            raise QuantizationError(f"INT8 quantisation of {onnx_path.name} failed: {exc}") from exc
    props = {p.key: p.value for p in source.metadata_props}
    onnx.helper.set_model_props(quantized, {**props, META_QUANTIZATION: note})
    quantized.doc_string = source.doc_string
    onnx.checker.check_model(quantized)
    atomic_write_bytes(out_path, quantized.SerializeToString())
    return out_path


def _quantize(
    pre: Path,
    out: Path,
    calibration_images_uint8: npt.NDArray[np.uint8] | None,
    method: Literal["static", "dynamic"],
) -> str:
    """Run ONNX Runtime's quantiser on the pre-processed ``pre``; returns a note on how."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.registry import QDQRegistry

    graph = onnx.load(str(pre)).graph
    head = [n.name for n in graph.node if LOGITS in n.output]
    if calibration_images_uint8 is not None and method == "static":
        quantize_static(
            str(pre),
            str(out),
            _calibration_reader(graph.input[0].name, calibration_images_uint8, 64),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=[op for op in QDQRegistry if op != "Softmax"],
            nodes_to_exclude=head,
            calibrate_method=CalibrationMethod.MinMax,
            reduce_range=True,
        )
        return (
            f"int8 static QDQ, per-channel 7-bit weights (no saturation on CPUs without VNNI), "
            f"min/max calibration on "
            f"{len(calibration_images_uint8)} images"
        )
    quantize_dynamic(
        str(pre),
        str(out),
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
        nodes_to_exclude=head,
    )
    return "int8 dynamic, fully-connected weights"


def evaluate_quantization(
    fp32_path: Path,
    int8_path: Path,
    images: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.integer],
    max_drop_points: float = 0.3,
    *,
    batch_size: int = 256,
    repeats: int = 7,
    threads: int = 1,
) -> QuantizationReport:
    """Compare the FP32 and INT8 files on labelled images and decide whether INT8 is accepted.

    Accuracy is measured on all ``images``; latency is the median over ``repeats`` timed runs
    (alternating models, after warm-up) of one batch of ``batch_size`` with ``threads`` threads.
    INT8 is accepted when it loses less than ``max_drop_points`` accuracy points. Sizes in MB
    (10^6 bytes).
    """
    _check_uint8_images(images, "evaluation images")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    fp32 = OnnxClassifier(fp32_path, intra_op_threads=threads)
    int8 = OnnxClassifier(int8_path, intra_op_threads=threads)
    y = np.asarray(labels).astype(np.int64)
    pred32, pred8 = fp32.predict(images), int8.predict(images)
    right32, right8 = int((pred32 == y).sum()), int((pred8 == y).sum())

    reps = -(-batch_size // len(images))
    batch = to_model_input(np.concatenate([images] * reps)[:batch_size])
    timings: dict[str, list[float]] = {"fp32": [], "int8": []}
    clfs = {"fp32": fp32, "int8": int8}
    for i in range(repeats + 2):
        for key, clf in clfs.items():
            start = time.perf_counter()
            clf.session.run([LOGITS], {clf.input_name: batch})
            if i >= 2:  # the first two rounds warm up
                timings[key].append(time.perf_counter() - start)
    ms32 = statistics.median(timings["fp32"]) * 1e3 / batch_size
    ms8 = statistics.median(timings["int8"]) * 1e3 / batch_size
    n = len(images)
    drop = (right32 - right8) * 100.0 / n  # from counts: exact at the threshold
    return QuantizationReport(
        n=n,
        fp32_accuracy=right32 / n,
        int8_accuracy=right8 / n,
        accuracy_drop_points=drop,
        prediction_agreement=float((pred32 == pred8).mean()),
        batch_size=batch_size,
        threads=threads,
        fp32_ms_per_image=ms32,
        int8_ms_per_image=ms8,
        speedup=ms32 / ms8,
        fp32_mb=fp32_path.stat().st_size / 1e6,
        int8_mb=int8_path.stat().st_size / 1e6,
        max_drop_points=max_drop_points,
        accepted=drop < max_drop_points,
    )
