"""Compute benchmark: training FLOPs per image and what the published recipes would cost here.

Run with ``.venv/bin/python benchmarks/bench_compute.py [--leaderboard docs/benchmarks.json]
[--epochs 200]``. For each leaderboard architecture (its preset's options) and for two
reference networks from the literature, built from this repository's pre-activation ResNet
(a WRN-28-10-shaped network, about 36M parameters, and a ResNet-18-shaped one, about 11M),
it counts the FLOPs of one training step per image (forward + backward, exact, with
``torch.utils.flop_counter``) and projects the training time on this machine by scaling the
measured seconds per epoch of the leaderboard's CNN row by the FLOP ratio. The projection is a
ratio, so it carries the CNN's measured efficiency over to the larger network (large
convolutions usually run at least as efficiently, so it is an estimate, not a bound). Writes
``benchmarks/results/compute.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fmnist.models import build_model, count_parameters
from fmnist.runtime_info import benchmark_machine
from fmnist.training.config import LEADERBOARD_PRESETS, make_config

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
TRAIN_IMAGES = 54_000
"""Training images per epoch in the default snapshot (60,000 minus the validation split)."""

REFERENCES: dict[str, tuple[str, dict[str, Any]]] = {
    "wrn-28-10 (shape)": (
        "resnet",
        {"widths": (160, 320, 640), "blocks_per_stage": 4, "dropout": 0.0},
    ),
    "resnet-18 (shape)": (
        "resnet",
        {"widths": (64, 128, 256, 512), "blocks_per_stage": 2, "dropout": 0.0},
    ),
}
"""Reference networks of the published results, in this repository's ResNet family."""


def train_flops_per_image(model: nn.Module, batch: int = 8) -> float:
    """FLOPs of one forward + backward pass per image (counted, not estimated)."""
    model.train()
    x = torch.randn(batch, 1, 28, 28)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x).sum().backward()
    return counter.get_total_flops() / batch


def cnn_seconds_per_epoch(leaderboard: Path) -> tuple[float, dict[str, Any]]:
    """Measured training seconds per epoch of the leaderboard's ``cnn`` row, and the row."""
    rows = json.loads(leaderboard.read_text())
    row = next((r for r in rows if r["model"] == "cnn"), None)
    if row is None or not row.get("epochs"):
        raise SystemExit(f"{leaderboard}: no cnn row with epochs; run `fmnist benchmark` first")
    return float(row["train_seconds"]) / int(row["epochs"]), row


def main() -> None:
    """Count, project and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leaderboard", type=Path, default=ROOT / "docs" / "benchmarks.json")
    parser.add_argument("--epochs", type=int, default=200, help="epochs of the projected runs")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)

    networks: dict[str, nn.Module] = {}
    for name, preset in LEADERBOARD_PRESETS.items():
        config = make_config(preset)
        networks[name] = build_model(config.model, **config.model_options)
    for name, (family, options) in REFERENCES.items():
        networks[name] = build_model(family, **options)

    seconds_per_epoch, cnn_row = cnn_seconds_per_epoch(args.leaderboard)
    cnn_flops = train_flops_per_image(networks["cnn"])
    rows = []
    for name, model in networks.items():
        flops = train_flops_per_image(model)
        epoch_s = seconds_per_epoch * flops / cnn_flops
        rows.append(
            {
                "model": name,
                "params": count_parameters(model),
                "train_mflops_per_image": round(flops / 1e6, 2),
                "flops_vs_cnn": round(flops / cnn_flops, 2),
                "projected_seconds_per_epoch": round(epoch_s, 1),
                "projected_hours_for_epochs": round(epoch_s * args.epochs / 3600, 1),
            }
        )
    figures = {
        "basis": (
            f"cnn row of {args.leaderboard.name}: {cnn_row['train_seconds']} s for "
            f"{cnn_row['epochs']} epochs ({cnn_row['precision']}, {cnn_row.get('threads')} "
            f"threads) = {seconds_per_epoch:.1f} s per epoch of {TRAIN_IMAGES:,} images"
        ),
        "basis_measured_at": cnn_row.get("measured_at"),
        "basis_machine": cnn_row.get("machine"),
        "epochs": args.epochs,
        "rows": rows,
        "machine": benchmark_machine("torch"),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_compute.py " + " ".join(sys.argv[1:]),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "compute.json").write_text(json.dumps(figures, indent=2) + "\n")
    from figures import refresh_after  # docs/model-zoo.md's table

    refresh_after(RESULTS / "compute.json")
    print(figures["basis"])
    header = ("model", "params", "train MFLOPs/img", "x cnn", "s/epoch", f"h/{args.epochs} ep")
    print("  ".join(f"{h:>18}" for h in header))
    for row in rows:
        values = list(row.values())
        print("  ".join(f"{v:>18,}" if isinstance(v, int) else f"{v!s:>18}" for v in values))


if __name__ == "__main__":
    main()
