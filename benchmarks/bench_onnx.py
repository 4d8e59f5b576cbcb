"""Inference benchmark: PyTorch eager against ONNX Runtime FP32 and INT8 on the CPU.

Run with ``.venv/bin/python benchmarks/bench_onnx.py [--model PATH] [--threads N]``.

``--model`` is a pickled ``nn.Module`` (``torch.save(model, path)``) or an ``.onnx`` file exported
by ``fmnist.registry.onnx_export`` (then the PyTorch row is skipped). Without it a small CNN is
trained for a few seconds on 3,000 real images. The script exports (with the parity check),
quantises to static INT8 on 500 calibration images, then prints latency at batch 1 and
throughput at batch 256 for each engine, INT8 accuracy against FP32 on 2,000 test images, and
writes the figures to ``benchmarks/results/onnx.json``, rendered into ``docs/lifecycle.md``
(``lifecycle_report.py``) and the README's table. About 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import torch
from torch import nn

from fmnist.config import load_settings
from fmnist.data.loaders import to_tensor
from fmnist.data.sources import RawDataset, default_sources, load_raw
from fmnist.models import build_model
from fmnist.registry.onnx_export import (
    InferenceModel,
    evaluate_quantization,
    export_onnx_checked,
    quantize_int8,
)
from fmnist.registry.onnx_runtime import OnnxClassifier, to_model_input
from fmnist.runtime_info import benchmark_machine, cpu_model

RESULTS = Path(__file__).resolve().parent / "results" / "onnx.json"
N_TRAIN = 3_000


def train_small_cnn(raw: RawDataset, steps: int = 300) -> nn.Module:
    """A few hundred Adam steps on the first 3,000 training images (enough to be meaningful).

    The model is the zoo's CNN cut to two one-convolution stages (32 and 64 channels).
    """
    torch.manual_seed(0)
    model = build_model("cnn", widths=(32, 64), convs_per_stage=1)
    x = to_tensor(raw.train_images[:N_TRAIN].copy())
    y = torch.from_numpy(raw.train_labels[:N_TRAIN].astype(np.int64))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        idx = torch.randint(0, N_TRAIN, (64,))
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def median_s(fn: Callable[[], object], runs: int, warmup: int = 3) -> float:
    """Median wall time of ``fn`` in seconds after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def engine_figures(run: Callable[[npt.NDArray[np.float32]], object], x: Any) -> dict[str, float]:
    """Latency at batch 1 (ms, median of 200) and throughput at batch 256 (images/s)."""
    one, batch = x[:1], x[:256]
    latency = median_s(lambda: run(one), 200)
    per_batch = median_s(lambda: run(batch), 15)
    return {"batch1_latency_ms": latency * 1e3, "batch256_images_per_s": 256 / per_batch}


def main() -> int:
    """Run the benchmark, print a table and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="pickled nn.Module or exported .onnx file")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    args = parser.parse_args()
    began = time.perf_counter()
    torch.set_num_threads(args.threads)
    raw = load_raw(default_sources(load_settings().settings))
    test_x, test_y = raw.test_images[:2_000], raw.test_labels[:2_000]
    calibration = raw.train_images[N_TRAIN : N_TRAIN + 500]

    model: nn.Module | None = None
    with tempfile.TemporaryDirectory(prefix="fmnist-bench-onnx-") as tmp:
        fp32_path, int8_path = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        if args.model is not None and args.model.suffix == ".onnx":
            fp32_path = args.model
            source = str(args.model)
        else:
            if args.model is not None:
                model = torch.load(args.model, weights_only=False, map_location="cpu")
                if not isinstance(model, nn.Module):
                    parser.error(f"{args.model} does not hold a pickled nn.Module")
                source = str(args.model)
            else:
                model = train_small_cnn(raw)
                source = "small CNN trained on the fly (300 steps, 3,000 images)"
            model = model.eval()
            parity = export_onnx_checked(model, fp32_path, test_x[:1_000])
            print(
                f"export parity on {parity.n} images: max |prob diff| "
                f"{parity.max_abs_prob_diff:.2e}, max |logit diff| "
                f"{parity.max_abs_logit_diff:.2e}, argmax agreement {parity.argmax_agreement:.4f}"
            )
        quantize_int8(fp32_path, int8_path, calibration)
        quant = evaluate_quantization(
            fp32_path, int8_path, test_x, test_y, repeats=15, threads=args.threads
        )

        x = to_model_input(test_x[:256])
        engines: dict[str, dict[str, float]] = {}
        if model is not None:
            wrapped = InferenceModel(model).eval()
            xt = torch.from_numpy(x)

            def torch_run(batch: Any) -> object:
                with torch.inference_mode():
                    return wrapped(batch)

            engines["pytorch eager fp32"] = engine_figures(torch_run, xt)
        for name, path in (("onnxruntime fp32", fp32_path), ("onnxruntime int8", int8_path)):
            clf = OnnxClassifier(path, intra_op_threads=args.threads)
            session: ort.InferenceSession = clf.session
            feed_name = clf.input_name

            def ort_run(batch: Any, s: ort.InferenceSession = session, n: str = feed_name) -> Any:
                return s.run(None, {n: batch})

            engines[name] = engine_figures(ort_run, x)

    print(f"\nmodel: {source}; threads: {args.threads}; CPU: {cpu_model()}")
    print(f"{'engine':<22}{'batch-1 latency (ms)':>22}{'batch-256 (images/s)':>22}")
    for name, fig in engines.items():
        print(f"{name:<22}{fig['batch1_latency_ms']:>22.3f}{fig['batch256_images_per_s']:>22,.0f}")
    print(
        f"\nINT8 vs FP32 on {quant.n} test images: accuracy {quant.fp32_accuracy:.4f} -> "
        f"{quant.int8_accuracy:.4f} (drop {quant.accuracy_drop_points:+.2f} points, "
        f"{'accepted' if quant.accepted else 'rejected'} at < {quant.max_drop_points}), "
        f"agreement {quant.prediction_agreement:.4f}; batch 256: "
        f"{quant.fp32_ms_per_image * 1e3:.1f} -> {quant.int8_ms_per_image * 1e3:.1f} us/image "
        f"(speed-up x{quant.speedup:.2f}); size {quant.fp32_mb:.3f} -> {quant.int8_mb:.3f} MB"
    )
    elapsed = time.perf_counter() - began
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": benchmark_machine("torch", "onnxruntime"),
        "model": source,
        "threads": args.threads,
        "engines": engines,
        "quantization": quant.model_dump(),
        "elapsed_s": elapsed,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS} ({elapsed:.1f} s in all)")
    from figures import refresh_after  # docs/lifecycle.md's table and the README's

    refresh_after(RESULTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
