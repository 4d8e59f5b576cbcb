"""Training benchmark: train a preset on the real snapshot and measure time and test accuracy.

Run with ``.venv/bin/python benchmarks/bench_train.py [--preset default|quick] [--threads N]``.
Trains with the same code as ``fmnist train`` (without MLflow, so only training is timed),
evaluates the best weights in fp32 on the official 10,000 test images, and writes
``benchmarks/results/train-<variant>.json`` (``train-quick-auto-cl.json`` is rendered into
``docs/lifecycle.md`` and the README). The machine should be otherwise idle: with 2 torch
threads, another busy process on one core slows training several-fold.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from fmnist.config import load_settings
from fmnist.data.snapshot import load_snapshot, write_snapshot
from fmnist.data.sources import default_sources, load_raw
from fmnist.platform.storage import FsspecStorage
from fmnist.runtime_info import benchmark_machine, cpu_model
from fmnist.training.config import PRESETS, make_config
from fmnist.training.trainer import predict_logits, train

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    """Train, evaluate and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default=None)
    parser.add_argument("--channels-last", choices=("on", "off"), default=None)
    args = parser.parse_args()

    settings = load_settings().settings
    raw = load_raw(default_sources(settings, show_progress=False))
    channels_last = None if args.channels_last is None else args.channels_last == "on"
    config = make_config(
        args.preset,
        threads=args.threads,
        seed=args.seed,
        precision=args.precision,
        channels_last=channels_last,
    )
    variant = f"{args.preset}-{config.precision}-{'cl' if config.channels_last else 'nchw'}"
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        lake = FsspecStorage(str(Path(tmp) / "lake"))
        write_snapshot(lake, raw, settings.data, settings.validation)
        snapshot = load_snapshot(lake)
        start = time.perf_counter()
        result = train(config, snapshot, Path(tmp) / "checkpoint.pt", show_progress=True)
        wall = time.perf_counter() - start
        images, labels = snapshot.split("test")
        accuracy = float((predict_logits(result.model, images).argmax(1) == labels).mean())

    figures = {
        "preset": args.preset,
        "variant": variant,
        "channels_last": config.channels_last,
        "model": config.model,
        "model_options": config.model_options,
        "parameters": result.parameters,
        "epochs": len(result.history),
        "precision": result.precision,
        "threads": result.threads,
        "train_seconds": round(result.train_seconds, 1),
        "wall_seconds_including_checkpoints": round(wall, 1),
        "epoch_seconds_median": round(float(np.median([r.seconds for r in result.history])), 2),
        "best_val_accuracy": round(result.best_val_accuracy, 4),
        "test_accuracy": round(accuracy, 4),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "machine": benchmark_machine("torch"),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_train.py " + " ".join(sys.argv[1:]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"train-{variant}.json").write_text(json.dumps(figures, indent=2) + "\n")
    from figures import refresh_after  # the quick preset's row in docs/lifecycle.md, README

    refresh_after(RESULTS / f"train-{variant}.json")
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
