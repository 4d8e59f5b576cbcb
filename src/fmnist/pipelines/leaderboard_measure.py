"""What the leaderboard measures of an exported model, and on which machine.

The exported ONNX file is measured with ONNX Runtime: its size, the median latency of batch-1
calls and the throughput at batch :data:`THROUGHPUT_BATCH`.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

THROUGHPUT_BATCH = 256


def onnx_megabytes(path: Path) -> float:
    """Size of an ONNX model in MB (10^6 bytes), external weight data included."""
    total = path.stat().st_size
    data = path.with_name(path.name + ".data")
    if data.is_file():
        total += data.stat().st_size
    return total / 1e6


def measure_onnx(
    path: Path,
    images: npt.NDArray[np.uint8],
    *,
    threads: int = 1,
    latency_runs: int = 500,
    throughput_seconds: float = 3.0,
) -> tuple[float, float]:
    """``(median batch-1 latency in ms, images per second at batch 256)`` with ONNX Runtime.

    Inputs are converted beforehand, so this times the model only; warm-up calls are not
    counted. ``threads`` is ONNX Runtime's intra-op thread count.
    """
    from fmnist.registry.onnx_runtime import PROBABILITIES, OnnxClassifier, to_model_input

    classifier = OnnxClassifier(path, intra_op_threads=threads)
    session, name = classifier.session, classifier.input_name
    singles = [to_model_input(images[i : i + 1]) for i in range(min(64, len(images)))]
    for x in singles[:20]:
        session.run([PROBABILITIES], {name: x})
    timings = []
    for i in range(latency_runs):
        x = singles[i % len(singles)]
        start = time.perf_counter()
        session.run([PROBABILITIES], {name: x})
        timings.append(time.perf_counter() - start)
    latency_ms = statistics.median(timings) * 1000

    reps = -(-THROUGHPUT_BATCH // len(images))
    batch = to_model_input(np.concatenate([images] * reps)[:THROUGHPUT_BATCH])
    for _ in range(2):
        session.run([PROBABILITIES], {name: batch})
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < throughput_seconds:
        session.run([PROBABILITIES], {name: batch})
        calls += 1
    throughput = calls * THROUGHPUT_BATCH / (time.perf_counter() - start)
    return latency_ms, throughput


def machine_info() -> dict[str, str]:
    """The machine the leaderboard was measured on."""
    from fmnist.runtime_info import hardware, package_versions
    from fmnist.training.precision import cpu_supports_bf16

    versions = package_versions()
    return hardware() | {
        "bf16": "native" if cpu_supports_bf16() else "emulated",
        "torch": versions.get("torch", "absent"),
        "onnxruntime": versions.get("onnxruntime", "absent"),
        "scikit-learn": versions.get("scikit-learn", "absent"),
    }
