"""Accuracy against serving and training cost: the Pareto table of ``docs/benchmarks.md``.

Every model is measured here, on this machine, the same way, from its trained run folder (the
``weights.pt`` and ``history.json`` that ``fmnist train`` writes to ``HOME/runs/RUN_ID``):

* test accuracy on the official test split (10,000 images) with a 95% percentile bootstrap
  interval (1,000 resamples), and the ECE after the run's own temperature scaling;
* training CPU-minutes: the wall seconds of its epochs (``history.json``) times the threads it
  trained with; a distilled model also names its teacher, whose minutes are its own row;
* ONNX Runtime on one intra-op thread, exported and quantised as ``fmnist evaluate`` does
  (``export_onnx_checked``, static INT8 on 200 training images): median batch-1 latency, images/s
  at batch 256, file size, FP32 and INT8, and the INT8 model's own test accuracy;
* accuracy on the held-out real photos (``validation/`` of the clothing photos, through the
  server's photo preprocessing): the top class under the project's mapping and the strict one.

``--ensemble NAME=A,B,C`` soft-votes runs given by ``--run`` with weights of maximum validation
likelihood (``fmnist.models.mixture_weights``, as the leaderboard's ensemble). The Pareto front is
taken over test accuracy and FP32 batch-1 latency (``fmnist.evaluation.pareto``). Writes
``benchmarks/results/pareto.json`` and re-renders the generated sections that read it
(``benchmarks/pareto_report.py``)::

    python benchmarks/bench_pareto.py --home HOME --train   # the plan: trains what is missing
    python benchmarks/bench_pareto.py --run cnn=HOME/runs/ID --run vit=HOME/runs/ID \\
        --ensemble ensemble=cnn,vit --served cnn          # any trained runs
    python benchmarks/bench_pareto.py --render

``--home HOME --train`` trains the models of ``benchmarks/pareto_plan.py`` that ``HOME`` does not
have yet (resumable, one after the other, progress in ``HOME/logs``), then measures them all.

Run it on a quiet machine: the latencies are wall-clock medians.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pareto_plan
import torch
from torch import nn

from fmnist.atomic import atomic_write_text
from fmnist.config import load_settings
from fmnist.data.snapshot import Snapshot, load_snapshot, write_snapshot
from fmnist.data.sources import default_sources, load_raw
from fmnist.evaluation.bootstrap import bootstrap_intervals
from fmnist.evaluation.calibration import fit_temperature, softmax
from fmnist.models import build_ensemble, build_model, count_parameters, mixture_weights
from fmnist.pipelines.leaderboard_measure import measure_onnx, onnx_megabytes
from fmnist.platform.storage import FsspecStorage
from fmnist.realworld.harness_inputs import prepare
from fmnist.realworld.mapping import load_mapping
from fmnist.realworld.photos import scan_folder
from fmnist.registry.onnx_export import export_onnx_checked, quantize_int8
from fmnist.registry.onnx_runtime import OnnxClassifier
from fmnist.runtime_info import benchmark_machine
from fmnist.training.config import TrainConfig
from fmnist.training.trainer import predict_logits

HERE = Path(__file__).resolve().parent

REPO = HERE.parent
RESULT = HERE / "results" / "pareto.json"
PHOTOS = REPO.parent / "shared" / "data" / "clothing-photos" / "validation"
MAPPINGS = ("clothing-small", "clothing-small-strict")


@dataclass
class Trained:
    """One model to measure: the network, its temperature and where it came from."""

    name: str
    model: nn.Module
    temperature: float
    config: dict[str, Any]
    train_cpu_minutes: float
    train_wall_minutes: float
    epochs: int
    source: str
    members: list[dict[str, Any]] | None = None


def load_run(name: str, folder: Path, snapshot_id: str) -> Trained:
    """A trained run folder (``weights.pt`` and ``history.json``)."""
    weights = folder / "weights.pt" if folder.is_dir() else folder
    if not weights.is_file():
        raise SystemExit(f"error: {name}: no weights.pt in {folder}")
    saved = torch.load(weights, map_location="cpu", weights_only=True)
    if saved.get("snapshot_id") != snapshot_id:
        raise SystemExit(
            f"error: {weights}: trained on snapshot {saved.get('snapshot_id')}, not {snapshot_id}"
        )
    config = TrainConfig.model_validate(saved["config"])
    model = build_model(config.model, **config.model_options)
    model.load_state_dict(saved["state_dict"])
    history_file = weights.parent / "history.json"
    if not history_file.is_file():
        raise SystemExit(f"error: {name}: no history.json beside {weights}")
    history = json.loads(history_file.read_text(encoding="utf-8"))
    seconds = sum(float(epoch["seconds"]) for epoch in history)
    threads = config.threads or os.cpu_count() or 1
    return Trained(
        name=name,
        model=model.eval(),
        temperature=float(saved["temperature"]),
        config=config.model_dump(mode="json"),
        train_cpu_minutes=seconds * threads / 60,
        train_wall_minutes=seconds / 60,
        epochs=len(history),
        source=str(weights.parent),
    )


def log_probs(trained: Trained, images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Temperature-scaled log-probabilities of ``images``."""
    z = predict_logits(trained.model, images).astype(np.float64) / trained.temperature
    z -= z.max(axis=1, keepdims=True)
    out: npt.NDArray[np.float64] = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return out


def ensemble_of(name: str, members: list[Trained], snapshot: Snapshot) -> Trained:
    """Soft voting of ``members`` with validation-likelihood weights, temperature refitted."""
    val_images, val_labels = snapshot.split("val")
    stacked = np.stack([log_probs(m, val_images) for m in members])
    weights, _ = mixture_weights(stacked, val_labels)
    ensemble = build_ensemble(
        [m.model for m in members], weights, temperatures=[m.temperature for m in members]
    )
    temperature = fit_temperature(predict_logits(ensemble, val_images), val_labels)
    return Trained(
        name=name,
        model=ensemble.eval(),
        temperature=temperature,
        config={"model": "ensemble", "members": [m.name for m in members]},
        train_cpu_minutes=sum(m.train_cpu_minutes for m in members),
        train_wall_minutes=sum(m.train_wall_minutes for m in members),
        epochs=sum(m.epochs for m in members),
        source="soft voting of " + ", ".join(m.name for m in members),
        members=[
            {"model": m.name, "weight": round(float(w), 4)}
            for m, w in zip(members, weights, strict=True)
        ],
    )


def photo_inputs(folder: Path) -> tuple[list[str], npt.NDArray[np.uint8]]:
    """The photo classes and 28x28 inputs of every photo in ``folder`` (server preprocessing)."""
    mapping = load_mapping(REPO / "config" / "real-world" / f"{MAPPINGS[0]}.yaml")
    photos = scan_folder(folder, mapping)
    pixels = np.stack([prepare(p, "grabcut").pixels for p in photos])
    return [p.photo_class for p in photos], pixels


def photo_accuracy(top1: npt.NDArray[np.intp], classes: list[str]) -> dict[str, float]:
    """Share of mappable photos whose top class is right, per mapping."""
    out = {}
    for name in MAPPINGS:
        mapping = load_mapping(REPO / "config" / "real-world" / f"{name}.yaml")
        rows = [i for i, c in enumerate(classes) if mapping.is_mappable(c)]
        out[name] = round(
            sum(int(top1[i]) in mapping.targets(classes[i]) for i in rows) / len(rows), 4
        )
    return out


def onnx_accuracy(path: Path, images: npt.NDArray[np.uint8], labels: npt.NDArray[Any]) -> float:
    """Test accuracy of an exported model run by ONNX Runtime."""
    classifier = OnnxClassifier(path, intra_op_threads=1)
    probs = np.concatenate(
        [classifier.predict_proba(images[i : i + 1000]) for i in range(0, len(images), 1000)]
    )
    return round(float((probs.argmax(axis=1) == labels).mean()), 4)


def measure(
    trained: Trained,
    snapshot: Snapshot,
    photos: tuple[list[str], npt.NDArray[np.uint8]] | None,
    work: Path,
    names: dict[str, str],
) -> dict[str, Any]:
    """Every column of the Pareto table for one model."""
    images, labels = snapshot.split("test")
    train_images = snapshot.split("train")[0]
    probs = softmax(predict_logits(trained.model, images), trained.temperature)
    intervals = bootstrap_intervals(probs, labels, resamples=1000)
    fp32, int8 = work / f"{trained.name}.onnx", work / f"{trained.name}.int8.onnx"
    export_onnx_checked(trained.model, fp32, images[:200], temperature=trained.temperature)
    quantize_int8(fp32, int8, train_images[:200])
    serving: dict[str, Any] = {}
    for precision, path in (("fp32", fp32), ("int8", int8)):
        latency, throughput = measure_onnx(path, images[:64])
        serving[precision] = {
            "batch1_ms": round(latency, 4),
            "images_per_s_256": round(throughput, 1),
            "onnx_mb": round(onnx_megabytes(path), 3),
            "test_accuracy": onnx_accuracy(path, images, labels),
        }
    row: dict[str, Any] = {
        "model": trained.name,
        "architecture": trained.config["model"],
        "parameters": count_parameters(trained.model),
        "test_accuracy": round(intervals.accuracy.estimate, 4),
        "test_accuracy_ci95": [round(intervals.accuracy.low, 4), round(intervals.accuracy.high, 4)],
        "ece": round(intervals.ece.estimate, 4),
        "train_cpu_minutes": round(trained.train_cpu_minutes, 1),
        "train_wall_minutes": round(trained.train_wall_minutes, 1),
        "epochs": trained.epochs,
        "serving": serving,
        "source": trained.source,
        "recipe": recipe(trained.config, names),
    }
    if trained.members is not None:
        row["members"] = trained.members
    if trained.config.get("distill"):
        row["teachers"] = [
            names.get(_run_id(t), _run_id(t)) for t in trained.config["distill"]["teachers"]
        ]
    if photos is not None:
        classes, pixels = photos
        classifier = OnnxClassifier(fp32, intra_op_threads=1)
        row["photo_accuracy"] = photo_accuracy(
            classifier.predict_proba(pixels).argmax(axis=1), classes
        )
    return row


def _run_id(reference: str) -> str:
    """The run id in a teacher reference (a run id, its folder or its ``weights.pt``)."""
    path = Path(reference)
    return path.parent.name if path.name == "weights.pt" else path.name


def recipe(config: dict[str, Any], names: dict[str, str]) -> str:
    """A one-line description of how the model was trained (``names``: run id -> row name)."""
    if config["model"] == "ensemble":
        return "soft voting of " + ", ".join(config["members"])
    parts = [config["model"], f"{config['epochs']} epochs"]
    if config["model_options"]:
        parts.append(", ".join(f"{k}={v}" for k, v in sorted(config["model_options"].items())))
    augment = config["augment"]
    if augment["erasing_p"]:
        parts.append(f"random erasing {augment['erasing_p']}")
    if config.get("distill"):
        distill = config["distill"]
        teachers = ", ".join(names.get(_run_id(t), _run_id(t)[:8]) for t in distill["teachers"])
        parts.append(
            f"distilled from {teachers} (T={distill['temperature']}, alpha={distill['alpha']})"
        )
    return "; ".join(parts)


def plan_runs(args: argparse.Namespace) -> None:
    """Fill ``args.run``, ``args.ensemble`` and ``args.served`` from the plan's home (training
    the missing models first with ``--train``)."""
    home = args.home.resolve()
    if args.train:
        runs = pareto_plan.train_missing(home, Path(sys.executable).with_name("fmnist"))
    else:
        runs = pareto_plan.recorded(home)
    missing = [name for name, _ in pareto_plan.PLAN if name not in runs]
    if missing:
        raise SystemExit(f"error: {home}: not trained yet: {', '.join(missing)} (add --train)")
    args.run = [f"{name}={home / 'runs' / runs[name]}" for name, _ in pareto_plan.PLAN]
    name, members = pareto_plan.ENSEMBLE
    args.ensemble = [f"{name}={','.join(members)}"]
    args.served = args.served or pareto_plan.SERVED


def main(argv: list[str] | None = None) -> int:
    """Measure the models, write ``results/pareto.json`` and re-render its sections."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--home", type=Path, help="measure the plan's models recorded in this home (pareto_plan)"
    )
    parser.add_argument("--train", action="store_true", help="with --home: train missing models")
    parser.add_argument("--run", action="append", default=[], metavar="NAME=FOLDER")
    parser.add_argument("--ensemble", action="append", default=[], metavar="NAME=A,B,...")
    parser.add_argument("--served", help="the model make demo serves (a --run name)")
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="held-out labelled photos")
    parser.add_argument("--render", action="store_true", help="re-render from the result file")
    args = parser.parse_args(argv)
    import pareto_report  # imports figures, which the tests load their own way

    if args.render:
        pareto_report.write_sections()
        return 0
    if args.home is not None:
        plan_runs(args)
    elif args.train:
        parser.error("--train needs --home")
    if not args.run:
        parser.error("give --home HOME or at least one --run NAME=FOLDER")
    began = time.perf_counter()
    torch.set_num_threads(1)
    settings = load_settings().settings
    raw = load_raw(default_sources(settings, show_progress=False))
    photos = photo_inputs(args.photos) if args.photos.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="fmnist-pareto-") as tmp:
        work = Path(tmp)
        lake = FsspecStorage(str(work / "lake"))
        write_snapshot(lake, raw, settings.data, settings.validation)
        snapshot = load_snapshot(lake)
        runs: dict[str, Trained] = {}
        for spec in args.run:
            name, _, folder = spec.partition("=")
            runs[name] = load_run(name, Path(folder), snapshot.snapshot_id)
        models = list(runs.values())
        names = {Path(t.source).name: t.name for t in models}
        for spec in args.ensemble:
            name, _, members = spec.partition("=")
            models.append(ensemble_of(name, [runs[m] for m in members.split(",")], snapshot))
        rows = []
        for trained in models:
            row = measure(trained, snapshot, photos, work, names)
            fp32 = row["serving"]["fp32"]
            print(
                f"{row['model']:<20} {row['test_accuracy']:.2%}  b1 {fp32['batch1_ms']:.3f} ms  "
                f"b256 {fp32['images_per_s_256']:,.0f}/s  train {row['train_cpu_minutes']} CPU-min"
            )
            rows.append(row)
    command = "python benchmarks/bench_pareto.py " + (
        "--home HOME --train"
        if args.home is not None
        else " ".join([f"--run {s}" for s in args.run] + [f"--ensemble {s}" for s in args.ensemble])
    )
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": benchmark_machine("torch", "onnxruntime"),
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "command": command + (f" --served {args.served}" if args.served else ""),
        "snapshot_id": snapshot.snapshot_id,
        "served": args.served,
        "photos": (
            {"folder": str(args.photos), "count": len(photos[0]), "preprocessing": "grabcut"}
            if photos
            else None
        ),
        "rows": rows,
        "seconds": round(time.perf_counter() - began, 1),
    }
    atomic_write_text(RESULT, json.dumps(result, indent=2) + "\n")
    pareto_report.write_sections()
    print(f"wrote {RESULT} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
