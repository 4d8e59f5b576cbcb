"""Per-variant serving throughput for the cost report: ONNX Runtime on 1 thread, FP32 and INT8.

Run with ``.venv/bin/python benchmarks/bench_variants.py [--quick]`` (about 2 minutes on 2
cores; ``--quick`` measures fewer repeats). Writes ``benchmarks/results/variants.json``, the
input of ``fmnist cost report`` (``--variants``).

The variants are the project's own: the default CNN (``fmnist train``'s ``default`` preset),
the quick CNN (``--preset quick``, the model ``benchmarks/bench_http.py`` serves) and the
soft-voting ensemble of the members the committed leaderboard's ensemble row names
(``docs/benchmarks.json``; the leaderboard's default members when it has none), each built by
the model factories (``fmnist.models.build_model``, ``build_ensemble``) with their
**initialised, untrained weights**: the time a forward pass takes does not depend on the
weights' values. Each is exported by ``fmnist.registry.onnx_export.export_onnx_checked`` (with
its parity check) and quantised by ``quantize_int8`` (static INT8, calibrated on 200 training
images), as ``fmnist evaluate`` does. Measured per variant with one intra-op thread: latency at
batch 1 (median) and images/s at batches 1, 32 and 256 (median batch time).

Also measured, for the image-size and payload levers: the bytes of a 28x28 PNG against the
same image as a JSON array, and the size of this environment's ``site-packages`` (the full
image's Python layer; ``results/serve_only.json`` holds the serving-only one).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from bench_onnx import median_s
from PIL import Image
from torch import nn

from fmnist.atomic import atomic_write_text
from fmnist.models import build_ensemble, build_model, count_parameters
from fmnist.registry.onnx_export import export_onnx_checked, quantize_int8
from fmnist.registry.onnx_runtime import OnnxClassifier, to_model_input
from fmnist.runtime_info import benchmark_machine
from fmnist.training.config import leaderboard_config, make_config

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "variants.json"
LEADERBOARD = HERE.parent / "docs" / "benchmarks.json"
DEFAULT_MEMBERS = ("cnn", "resnet", "vit")
"""The leaderboard's default ensemble members (``fmnist.pipelines.leaderboard``)."""


def images(n: int) -> tuple[npt.NDArray[np.uint8], str]:
    """``n`` Fashion-MNIST training images when the dataset is here, else random pixels."""
    try:
        from fmnist.config import load_settings
        from fmnist.data.sources import default_sources, load_raw

        raw = load_raw(default_sources(load_settings().settings))
        return raw.train_images[:n].copy(), "Fashion-MNIST training images"
    except Exception as exc:  # any missing source: fall back, and say so
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), f"random pixels ({exc})"


def ensemble_members() -> tuple[list[str], str]:
    """The members of the committed leaderboard's ensemble row, or the default members."""
    if LEADERBOARD.is_file():
        rows = json.loads(LEADERBOARD.read_text(encoding="utf-8"))
        for row in rows:
            if row.get("model") == "ensemble" and row.get("members"):
                names = [m["model"] for m in row["members"]]
                return names, f"the ensemble row of docs/benchmarks.json ({row['run_id']})"
    return list(DEFAULT_MEMBERS), "the leaderboard's default members"


def models() -> dict[str, tuple[nn.Module, str]]:
    """Variant name -> (untrained model in eval mode, how it was built)."""
    torch.manual_seed(0)
    out: dict[str, tuple[nn.Module, str]] = {}
    for name, preset in (("cnn", "default"), ("cnn-quick", "quick")):
        cfg = make_config(preset)
        out[name] = (
            build_model(cfg.model, **cfg.model_options).eval(),
            f"preset {preset!r}: {cfg.model} {cfg.model_options or '(defaults)'}",
        )
    names, source = ensemble_members()
    members = []
    for member in names:
        cfg = leaderboard_config(member)
        members.append(build_model(cfg.model, **cfg.model_options).eval())
    out["ensemble"] = (
        build_ensemble(members),
        f"soft voting of {', '.join(names)} (from {source}), equal weights, no TTA",
    )
    return out


def measure(path: Path, x: npt.NDArray[np.float32], repeats: int) -> dict[str, Any]:
    """Latency at batch 1 and images/s at batches 1, 32 and 256, one intra-op thread."""
    clf = OnnxClassifier(path, intra_op_threads=1)
    session, feed = clf.session, clf.input_name

    def run(batch: npt.NDArray[np.float32]) -> object:
        return session.run(None, {feed: batch})

    one = median_s(lambda: run(x[:1]), repeats * 20)
    per_batch = {b: median_s(lambda b=b: run(x[:b]), repeats) for b in (32, 256)}
    return {
        "batch1_latency_ms": round(one * 1e3, 4),
        "images_per_s": {
            "1": round(1 / one, 1),
            "32": round(32 / per_batch[32], 1),
            "256": round(256 / per_batch[256], 1),
        },
        "onnx_mb": round(path.stat().st_size / 1e6, 3),
    }


def payload_bytes(sample: npt.NDArray[np.uint8]) -> dict[str, float]:
    """Mean bytes of one image as a PNG upload and as a JSON array of pixels."""
    png, js = [], []
    for image in sample:
        buffer = io.BytesIO()
        Image.fromarray(image, mode="L").save(buffer, format="PNG")
        png.append(len(buffer.getvalue()))
        js.append(len(json.dumps({"pixels": image.tolist()}).encode()))
    return {"png": round(float(np.mean(png)), 1), "json": round(float(np.mean(js)), 1)}


def site_packages_mb() -> float:
    """Size of this environment's site-packages (the full image's Python layer)."""
    root = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    total = 0
    for folder, _, files in os.walk(root / "site-packages"):
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                total += path.stat().st_size
    return round(total / 1e6, 1)


def main() -> int:
    """Export, quantise and time every variant; write ``results/variants.json``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", type=Path, default=RESULT, help="the result file")
    args = parser.parse_args()
    began = time.perf_counter()
    torch.set_num_threads(1)
    repeats = 5 if args.quick else 15
    pixels, pixels_source = images(456)
    x = to_model_input(pixels[:256])
    variants: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fmnist-bench-variants-") as tmp:
        for name, (model, built) in models().items():
            fp32, int8 = Path(tmp) / f"{name}.onnx", Path(tmp) / f"{name}.int8.onnx"
            export_onnx_checked(model, fp32, pixels[:200])
            quantize_int8(fp32, int8, pixels[256:456])
            for precision, path in (("fp32", fp32), ("int8", int8)):
                key = f"{name}-{precision}"
                variants[key] = {
                    "model": name,
                    "precision": precision,
                    "built": built,
                    "parameters": count_parameters(model),
                } | measure(path, x, repeats)
                fig = variants[key]
                print(
                    f"{key:<16} batch-1 {fig['batch1_latency_ms']:8.3f} ms   "
                    + "   ".join(f"b{b} {v:>9,.0f}/s" for b, v in fig["images_per_s"].items())
                )
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": benchmark_machine("torch", "onnxruntime"),
        "command": "python benchmarks/bench_variants.py" + (" --quick" if args.quick else ""),
        "method": (
            "ONNX Runtime, 1 intra-op thread, CPU; models built by the project's factories with "
            "initialised (untrained) weights - throughput does not depend on the weights' values "
            "- exported by fmnist.registry.onnx_export.export_onnx_checked and quantised by "
            "quantize_int8 (static INT8, 200 calibration images); latency: median of "
            f"{repeats * 20} batch-1 runs; images/s: median of {repeats} batches"
        ),
        "inputs": pixels_source,
        "threads": 1,
        "variants": variants,
        "payload_bytes": payload_bytes(pixels[:100]),
        "site_packages_mb": site_packages_mb(),
        "seconds": round(time.perf_counter() - began, 1),
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
