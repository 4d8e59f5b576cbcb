"""Batch-job benchmark: ``fmnist predict batch`` against bare ONNX Runtime on the same model.

Run with ``.venv/bin/python benchmarks/bench_batch.py [--onnx PATH] [--threads N]``.

Without ``--onnx`` it uses ``benchmarks/results/quick-model.onnx``, training the ``quick`` preset
(about a minute on 2 idle cores, torch needed) and exporting it with its temperature and OOD
threshold the first time. It then measures, interleaved and repeated (medians reported):

(a) bare ONNX Runtime: ``session.run`` on ready float32 batches of 256 test images, measured
    just before and just after each job run (the ratio uses those two);
(b) the whole batch job, from opening the input to the combined Parquet file (reading,
    decompressing, conversion, decisions, shard and final writes included; the model load is
    not), on the 10,000 test images from their gzipped IDX file and on all 70,000 images from
    an NPY file,

both with the same intra-op thread count (``batch.intra_op_threads``, 2). It prints images/s,
the ratio (a)/(b) and the job's share of (a), and writes ``benchmarks/results/batch.json``.
The figures mean something only on an otherwise idle machine: the load average is recorded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from fmnist import __version__
from fmnist.batch.model import BatchModel, load_onnx_model
from fmnist.batch.readers import open_input
from fmnist.batch.runner import run_batch
from fmnist.config import Settings, load_settings
from fmnist.data.idx import parse_idx, read_raw
from fmnist.registry.onnx_runtime import LOGITS, PROBABILITIES, to_model_input
from fmnist.runtime_info import cores_usable, cpu_model, load_average

RESULTS = Path(__file__).resolve().parent / "results"
CACHED_MODEL = RESULTS / "quick-model.onnx"
REPO = Path(__file__).resolve().parents[1]
BARE_BATCH = 256
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


def data_dir(settings: Settings) -> Path:
    """The first folder holding the gzipped IDX files."""
    candidates = [
        settings.data_dir,
        settings.debian_data_dir,
        REPO.parent / "shared" / "data" / "fashion-mnist",
    ]
    for folder in candidates:
        if folder is not None and (folder / TEST_IMAGES).is_file():
            return folder
    raise SystemExit(f"no {TEST_IMAGES} in any of {candidates}; set FMNIST_DATA_DIR")


def train_quick_model(settings: Settings, destination: Path) -> None:
    """Train the ``quick`` preset, calibrate it and export it like ``fmnist train`` does."""
    from fmnist.composition import build_services
    from fmnist.data.snapshot import load_snapshot, write_snapshot
    from fmnist.data.sources import default_sources, load_raw
    from fmnist.evaluation.calibration import energy_threshold, fit_temperature
    from fmnist.registry.onnx_export import export_onnx_checked
    from fmnist.training.config import make_config
    from fmnist.training.run import META_OOD_ENERGY_THRESHOLD, META_OOD_QUANTILE, OOD_QUANTILE
    from fmnist.training.trainer import predict_logits, train

    raw = load_raw(default_sources(settings, show_progress=False))
    with tempfile.TemporaryDirectory(prefix="fmnist-bench-batch-") as tmp:
        lake = build_services(settings).open_storage(str(Path(tmp) / "lake"))
        write_snapshot(lake, raw, settings.data, settings.validation)
        snapshot = load_snapshot(lake)
        print("training the quick preset (about a minute on 2 idle cores)...")
        result = train(make_config("quick"), snapshot, Path(tmp) / "ckpt.pt", show_progress=True)
        val_images, val_labels = snapshot.split("val")
        val_logits = predict_logits(result.model, val_images)
        temperature = fit_temperature(val_logits, val_labels)
        threshold = energy_threshold(val_logits, temperature, OOD_QUANTILE)
        export_onnx_checked(
            result.model,
            destination,
            snapshot.split("test")[0][:1000],
            temperature=temperature,
            metadata={
                META_OOD_ENERGY_THRESHOLD: f"{threshold:.6g}",
                META_OOD_QUANTILE: str(OOD_QUANTILE),
                "snapshot_id": snapshot.snapshot_id,
                "preset": "quick",
            },
        )
    print(f"exported {destination} (best val accuracy {result.best_val_accuracy:.4f})")


def bare_ort(model: BatchModel, images: np.ndarray, seconds: float = 2.0) -> float:
    """Images/s of ``session.run`` on ready float32 batches of 256 (after a warm-up)."""
    session = model.classifier.session
    name = model.classifier.input_name
    batches = [
        to_model_input(images[i : i + BARE_BATCH])
        for i in range(0, len(images) - BARE_BATCH + 1, BARE_BATCH)
    ]
    for batch in batches[:5]:
        session.run([LOGITS, PROBABILITIES], {name: batch})
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for batch in batches:
            session.run([LOGITS, PROBABILITIES], {name: batch})
            done += BARE_BATCH
    return done / (time.perf_counter() - start)


def job(model: BatchModel, source: Path, workdir: Path, min_confidence: float) -> dict[str, Any]:
    """Run the whole batch job once into a fresh output; images/s over its wall time."""
    output = workdir / f"out-{source.stem}.parquet"
    output.unlink(missing_ok=True)
    start = time.perf_counter()
    with open_input(source) as batch_input:
        result = run_batch(batch_input, output, model, min_confidence=min_confidence)
    wall = time.perf_counter() - start
    assert result.complete and result.rows == batch_input.num_rows
    return {
        "rows": result.rows,
        "unknown": result.unknown,
        "seconds": wall,
        "images_per_s": result.rows / wall,
        "output_mb": output.stat().st_size / 1e6,
    }


def main() -> int:
    """Measure and print the figures; write ``results/batch.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, help="exported model (default: the quick preset)")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: settings)")
    parser.add_argument("--batch-size", type=int, help="job batch size (default: settings)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of measurements")
    args = parser.parse_args()
    settings = load_settings().settings
    threads = args.threads or settings.batch.intra_op_threads
    batch_size = args.batch_size or settings.batch.batch_size

    onnx_path = args.onnx or CACHED_MODEL
    if args.onnx is None and not CACHED_MODEL.is_file():
        RESULTS.mkdir(parents=True, exist_ok=True)
        train_quick_model(settings, CACHED_MODEL)
    model = load_onnx_model(onnx_path, threads=threads, batch_size=batch_size)
    folder = data_dir(settings)
    test_images = parse_idx(read_raw(folder / TEST_IMAGES).content)
    load_before = load_average()

    bare: list[float] = []
    runs: dict[str, list[dict[str, Any]]] = {"idx_10k": [], "npy_70k": []}
    with tempfile.TemporaryDirectory(prefix="fmnist-bench-batch-") as tmp:
        work = Path(tmp)
        train_images = parse_idx(read_raw(folder / TRAIN_IMAGES).content)
        np.save(work / "all.npy", np.concatenate([train_images, test_images]))
        del train_images
        sources = {"idx_10k": folder / TEST_IMAGES, "npy_70k": work / "all.npy"}
        min_confidence = settings.serving.min_confidence
        for source in sources.values():  # warm the page cache and the code paths
            job(model, source, work, min_confidence)
        for round_ in range(args.repeats):
            line = []
            for name, source in sources.items():
                # Bare runs just before and after each job run, lasting about as long, so a
                # change in the load of a shared machine hits both sides of the ratio alike.
                expected = runs[name][-1]["seconds"] if runs[name] else 1.0
                before = bare_ort(model, test_images, seconds=min(3.0, expected))
                record = job(model, source, work, min_confidence)
                after = bare_ort(model, test_images, seconds=min(3.0, record["seconds"]))
                record["bare_around"] = (before + after) / 2
                record["share_of_bare"] = record["images_per_s"] / record["bare_around"]
                bare += [before, after]
                runs[name].append(record)
                line.append(
                    f"{name} {record['images_per_s']:,.0f} img/s vs bare "
                    f"{record['bare_around']:,.0f} ({record['share_of_bare']:.0%})"
                )
            print(f"round {round_ + 1}: " + "; ".join(line))
    load_after = load_average()

    bare_median = statistics.median(bare)
    jobs = {}
    for name, records in runs.items():
        rate = statistics.median(r["images_per_s"] for r in records)
        share = statistics.median(r["share_of_bare"] for r in records)
        jobs[name] = {
            "rows": records[0]["rows"],
            "images_per_s": round(rate),
            "seconds_median": round(statistics.median(r["seconds"] for r in records), 3),
            "share_of_bare": round(share, 3),
            "bare_over_job": round(1 / share, 3),
            "share_of_bare_runs": [round(r["share_of_bare"], 3) for r in records],
            "unknown": records[0]["unknown"],
            "output_mb": round(records[0]["output_mb"], 2),
        }
    figures = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": str(onnx_path),
        "model_version": model.version,
        "threads": threads,
        "job_batch_size": batch_size,
        "bare_batch_size": BARE_BATCH,
        "bare_ort_images_per_s": round(bare_median),
        "bare_ort_runs": [round(b) for b in bare],
        "jobs": jobs,
        "job_runs": {n: [round(r["images_per_s"]) for r in rs] for n, rs in runs.items()},
        "load_average_before": load_before,
        "load_average_after": load_after,
        "cpu": cpu_model(),
        "cores_usable": cores_usable(),
        "onnxruntime": ort.__version__,
        "fmnist": __version__,
    }
    print(f"\nmodel {onnx_path} ({model.version}); {threads} intra-op threads; CPU {cpu_model()}")
    print(f"(a) bare ONNX Runtime, batch {BARE_BATCH}: {bare_median:>10,.0f} images/s")
    for name, fig in jobs.items():
        print(
            f"(b) batch job {name:<8} (batch {batch_size}): {fig['images_per_s']:>10,} images/s"
            f"  (a)/(b) = {fig['bare_over_job']:.3f}: job = {fig['share_of_bare']:.1%} of bare "
            "(median over rounds of job / bare runs around it)"
        )
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batch.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {RESULTS / 'batch.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
