"""Drift benchmark: false-alarm rate, detection power and detection delay of the drift monitor.

Run with ``.venv/bin/python benchmarks/drift/run.py [--home DIR] [--quick]`` (see README.md).

Windows of Fashion-MNIST test images (never trained on) go through the monitor's own code path:
the served ONNX model of the champion and its reference as ``fmnist monitor drift`` finds them
(:func:`fmnist.monitoring.monitor.resolve_target`), the window's probabilities, embeddings and
input statistics from :func:`fmnist.monitoring.drift.window_features`, and the verdict of
:func:`fmnist.monitoring.drift.detect_drift` with the configured ``drift`` settings. Each image's
features are computed once per shift (the model is deterministic), and windows are drawn from
them; the first window of every cell is re-run from its pixels through
:func:`fmnist.monitoring.drift.check_window` and must give the identical result.

Writes ``benchmarks/results/drift.json`` and ``drift.csv`` and generates
``docs/drift-benchmark.md`` from the JSON (``--render`` regenerates the page alone).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shifts import FAMILIES, GOAL_CELLS, ShiftFamily, prior_window, removal_window

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_HOME = RESULTS / "drift-home"
PHOTOS = REPO.parent / "shared" / "data" / "clothing-photos"
DATA_DIR = REPO.parent / "shared" / "data" / "fashion-mnist"
DOC = REPO / "docs" / "drift-benchmark.md"
FMNIST = Path(sys.executable).parent / "fmnist"
LOW_GATES = {
    "FMNIST_GATES__MIN_ACCURACY": "0.5",
    "FMNIST_GATES__MIN_CLASS_RECALL": "0.0",
    "FMNIST_GATES__MAX_ECE": "0.2",
}
STREAM_STEP = 100
"""A stream is checked every this many new predictions."""
STREAM_CLEAN = 500
"""Clean predictions after the first full window, before the change point."""


def ensure_champion(home: Path) -> None:
    """Train and register the ``quick`` preset in ``home`` when it has no champion."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FMNIST_")}
    env["FMNIST_HOME"] = str(home)
    if DATA_DIR.is_dir():
        env["FMNIST_DATA_DIR"] = str(DATA_DIR)
    shown = subprocess.run(
        [str(FMNIST), "models", "show", "champion"], env=env, capture_output=True, check=False
    )
    if shown.returncode == 0:
        return
    print(f"no champion in {home}: training the quick preset first (minutes)", flush=True)
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(FMNIST), "pipeline", "run", "--preset", "quick", "--no-progress"],
        env={**env, **LOW_GATES},
        check=True,
    )


def load_photos(root: Path, splits: Sequence[str], cache: Path) -> npt.NDArray[np.uint8]:
    """Every photo of ``root/<split>/CLASS/*.jpg`` through the photo pipeline (cached)."""
    files = sorted(p for split in splits for p in (root / split).glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"no photos under {root} ({', '.join(splits)})")
    key = hashlib.sha256("\n".join(str(f.relative_to(root)) for f in files).encode()).hexdigest()
    if cache.is_file():
        with np.load(cache) as data:
            if str(data["key"]) == key:
                return np.asarray(data["pixels"])
    from fmnist.imaging.preprocess import preprocess_bytes

    print(f"preprocessing {len(files)} photos (cached in {cache})", flush=True)
    start = time.perf_counter()
    pixels = np.stack([preprocess_bytes(f.read_bytes()).pixels for f in files])
    print(f"  {(time.perf_counter() - start) / len(files) * 1e3:.1f} ms per photo", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, pixels=pixels, key=np.array(key))
    return pixels


@dataclass
class Pool:
    """Precomputed features of a set of images, with the images and their kinds."""

    features: Any  # WindowFeatures
    pixels: npt.NDArray[np.uint8]
    kinds: list[str]


def make_pool(target: Any, pixels: npt.NDArray[np.uint8], kind: str) -> Pool:
    """Features of ``pixels`` through the monitor's path (:func:`window_features`)."""
    from fmnist.monitoring.drift import window_features

    kinds = [kind] * len(pixels)
    features = window_features(target.reference, target.embedder, pixels, input_kinds=kinds)
    return Pool(features, pixels, kinds)


def concat(pools: Sequence[tuple[Pool, npt.NDArray[np.intp]]]) -> tuple[Any, Any]:
    """The features and the raw window of rows picked from several pools."""
    from fmnist.monitoring.drift import Window, WindowFeatures

    parts = [pool.features.take(idx) for pool, idx in pools]
    features = WindowFeatures(
        *(
            np.concatenate([getattr(p, f) for p in parts])
            for f in ("probabilities", "embeddings", "mean_intensity", "ink_fraction", "photo")
        ),
        None,
    )
    window = Window(
        pixels=np.concatenate([pool.pixels[idx] for pool, idx in pools]),
        input_kinds=[pool.kinds[i] for pool, idx in pools for i in idx],
    )
    return features, window


class Bench:
    """The pools, the reference and the settings of one benchmark run."""

    def __init__(self, target: Any, settings: Any, test: Pool, labels: Any, photos: Pool) -> None:
        """Hold what every cell needs."""
        self.target, self.settings = target, settings
        self.test, self.labels, self.photos = test, labels, photos
        self.shifted: dict[tuple[str, float], Pool] = {}
        self.verified = 0
        self.windows_run = 0
        self.detect_seconds = 0.0

    def pool_for(self, family: ShiftFamily, intensity: float, seed: int) -> Pool:
        """The test set under a pixel shift (computed once)."""
        key = (family.name, intensity)
        if key not in self.shifted:
            assert family.pixels is not None
            rng = np.random.default_rng([seed, hash(family.name) % 10_000, int(intensity * 100)])
            pixels = family.pixels(self.test.pixels, intensity, rng)
            self.shifted[key] = make_pool(self.target, pixels, "upload")
        return self.shifted[key]

    def draw(
        self, family: ShiftFamily | None, intensity: float, size: int, rng: np.random.Generator
    ) -> list[tuple[Pool, npt.NDArray[np.intp]]]:
        """The rows of one window (``family`` None: unshifted)."""
        n = len(self.labels)
        if family is None:
            return [(self.test, rng.choice(n, size, replace=False))]
        if family.name == "class_prior":
            return [(self.test, prior_window(self.labels, size, intensity, rng))]
        if family.name == "class_removal":
            return [(self.test, removal_window(self.labels, size, intensity, rng))]
        if family.name == "photos":
            k = round(intensity * size)
            photos = rng.choice(len(self.photos.pixels), k, replace=k > len(self.photos.pixels))
            return [(self.test, rng.choice(n, size - k, replace=False)), (self.photos, photos)]
        pool = self.pool_for(family, intensity, 0)
        return [(pool, rng.choice(n, size, replace=False))]

    def detect(self, rows: list[tuple[Pool, npt.NDArray[np.intp]]], verify: bool) -> Any:
        """The verdict on one window; with ``verify`` also from its pixels (must agree)."""
        from fmnist.monitoring.drift import check_window, detect_drift

        features, window = concat(rows)
        start = time.perf_counter()
        result = detect_drift(self.target.reference, features, self.settings)
        self.detect_seconds += time.perf_counter() - start
        self.windows_run += 1
        if verify:
            again, _ = check_window(
                self.target.reference, self.target.embedder, window, self.settings
            )
            mine = [(t.name, t.p_value, t.fired) for t in result.tests]
            theirs = [(t.name, t.p_value, t.fired) for t in again.tests]
            if mine != theirs or result.drift_detected != again.drift_detected:
                raise SystemExit(f"precomputed and end-to-end results differ:\n{mine}\n{theirs}")
            self.verified += 1
        return result


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """95% Wilson interval of ``k`` successes in ``n``."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def run_cell(
    bench: Bench, family: ShiftFamily | None, intensity: float, size: int, windows: int, seed: int
) -> dict[str, Any]:
    """``windows`` windows of one cell: the share detected, and each test's firing rate."""
    rng = np.random.default_rng(seed)
    detected = 0
    fired: dict[str, int] = {}
    for i in range(windows):
        result = bench.detect(bench.draw(family, intensity, size, rng), verify=i == 0)
        detected += result.drift_detected
        for t in result.tests:
            fired[t.name] = fired.get(t.name, 0) + int(t.fired)
    return {
        "shift": "none" if family is None else family.name,
        "intensity": intensity,
        "unit": "" if family is None else family.unit,
        "window": size,
        "windows": windows,
        "detected": detected,
        "rate": detected / windows,
        "ci95": wilson(detected, windows),
        "test_fire_rate": {k: v / windows for k, v in fired.items()},
    }


def stream_rows(
    bench: Bench, family: ShiftFamily, intensity: float, length: int, rng: np.random.Generator
) -> list[tuple[Pool, npt.NDArray[np.intp]]]:
    """``length`` shifted predictions in stream order."""
    if family.name == "class_prior":
        classes = rng.choice(10, 3, replace=False)
        focused = np.flatnonzero(np.isin(bench.labels, classes))
        return [(bench.test, rng.choice(focused, length, replace=True))]
    if family.name == "photos":
        is_photo = rng.random(length) < intensity
        rows: list[tuple[Pool, npt.NDArray[np.intp]]] = []
        for photo in is_photo:
            pool = bench.photos if photo else bench.test
            rows.append((pool, rng.integers(0, len(pool.pixels), 1)))
        return rows
    pool = bench.pool_for(family, intensity, 0)
    return [(pool, rng.integers(0, len(bench.labels), length))]


def run_stream(
    bench: Bench, family: ShiftFamily, intensity: float, size: int, seed: int
) -> dict[str, Any]:
    """Clean traffic, then the shift: checks every STREAM_STEP predictions over the last
    ``size``; the delay is the number of shifted predictions seen at the first alarm."""
    rng = np.random.default_rng(seed)
    clean = size + STREAM_CLEAN
    rows: list[tuple[Pool, npt.NDArray[np.intp]]] = [
        (bench.test, np.array([i])) for i in rng.choice(len(bench.labels), clean, replace=False)
    ]
    for pool, idx in stream_rows(bench, family, intensity, 2 * size, rng):
        rows.extend((pool, np.array([i])) for i in idx)
    false_alarms, delay = 0, None
    for end in range(size, len(rows) + 1, STREAM_STEP):
        merged = _merge(rows[end - size : end])
        detected = bench.detect(merged, verify=False).drift_detected
        if end <= clean:
            false_alarms += detected
        elif detected:
            delay = end - clean
            break
    return {"false_alarms_before_change": false_alarms, "delay": delay}


def _merge(
    rows: list[tuple[Pool, npt.NDArray[np.intp]]],
) -> list[tuple[Pool, npt.NDArray[np.intp]]]:
    """Consecutive single rows of the same pool as one index array (stream order kept)."""
    merged: list[tuple[Pool, list[int]]] = []
    for pool, idx in rows:
        if merged and merged[-1][0] is pool:
            merged[-1][1].extend(int(i) for i in idx)
        else:
            merged.append((pool, [int(i) for i in idx]))
    return [(pool, np.asarray(idx)) for pool, idx in merged]


def render(results: dict[str, Any]) -> str:
    """docs/drift-benchmark.md from the results (the only way the page is written)."""
    s = results["settings"]
    lines = [
        "# Drift benchmark",
        "",
        "Generated by `benchmarks/drift/run.py` from `benchmarks/results/drift.json`; do not edit "
        "by hand (`python benchmarks/drift/run.py --render` regenerates it).",
        "",
        f"Run {results['finished_at']} ({results['mode']} mode) on {results['machine']['cpu']} "
        f"({results['machine']['cores_usable']} usable cores), {results['elapsed_s']:.0f} s. "
        f"Model: {results['model']['name']} v{results['model']['version']} "
        f"({results['model']['test_accuracy']} test accuracy), reference: "
        f"{results['reference']['n']} validation images ({results['reference']['origin']}), "
        f"embedding {results['reference']['embedding_kind']} "
        f"({results['reference']['embedding_dim']} -> {results['reference']['pca_dims']} dims by "
        f"PCA, {results['reference']['pca_explained_variance']:.0%} of the variance).",
        "",
        f"Settings: alpha {s['alpha']}, Holm's correction over the tests that ran, MMD with "
        f"{s['mmd_permutations']} permutations against {s['mmd_reference_size']} reference "
        f"embeddings. Every window is a random draw (without replacement) from the 10,000 test "
        f"images, shifted as the row says; {results['verified_end_to_end']} windows were re-run "
        "from their pixels through `check_window` and gave identical results.",
        "",
        "The monitor (`fmnist monitor drift`, `src/fmnist/monitoring/drift.py`) compares a "
        "window of logged inputs with the reference of the model version, both seen through "
        "the served ONNX model: per-class KS on the softmax outputs (BBSD, Bonferroni over the "
        "classes), MMD on the PCA-reduced penultimate embeddings (permutation test), chi-square "
        "on the predicted classes, KS on confidence, entropy, mean intensity and ink fraction, "
        "and live accuracy when feedback exists (none here: this benchmark is label-free). "
        "`drift_detected` is Holm's correction over the tests at `alpha`. "
        f"One check took {results['detect_ms_per_window']:.0f} ms on average (all window "
        "sizes, features precomputed).",
        "",
        "## False alarms on unshifted windows",
        "",
        "| window | windows | false alarms | rate | 95% interval | goal |",
        "|---:|---:|---:|---:|---|---|",
    ]
    for row in results["false_alarms"]:
        lo, hi = row["ci95"]
        ok = "met" if row["rate"] <= s["alpha"] else "**missed**"
        lines.append(
            f"| {row['window']:,} | {row['windows']} | {row['detected']} | {row['rate']:.3f} | "
            f"{lo:.3f}-{hi:.3f} | <= {s['alpha']}: {ok} |"
        )
    sizes = sorted({c["window"] for c in results["cells"]})
    lines += [
        "",
        "## Detection power (share of shifted windows detected)",
        "",
        "Goal: >= 0.9 at window 1,000 for the medium shifts (marked *).",
        "",
        "| shift | intensity | " + " | ".join(f"window {w:,}" for w in sizes) + " |",
        "|---|---|" + "---:|" * len(sizes),
    ]
    cells: dict[tuple[str, float], dict[int, dict[str, Any]]] = {}
    for c in results["cells"]:
        cells.setdefault((c["shift"], c["intensity"]), {})[c["window"]] = c
    for (shift, intensity), by_size in cells.items():
        goal = GOAL_CELLS.get(shift) == intensity
        unit = next(iter(by_size.values()))["unit"]
        rates = " | ".join(f"{by_size[w]['rate']:.2f}" if w in by_size else "-" for w in sizes)
        lines.append(f"| {shift}{' *' if goal else ''} | {intensity:g} ({unit}) | {rates} |")
    lines += [
        "",
        "## Which tests fire (window 1,000, medium shifts)",
        "",
        "Share of windows in which each test fired after the correction.",
        "",
    ]
    tests = sorted(
        {
            t
            for c in results["cells"]
            for t, rate in c["test_fire_rate"].items()
            if rate > 0 or t not in ("live_accuracy", "photo_share")
        }
    )
    lines += ["| shift | " + " | ".join(tests) + " |", "|---|" + "---:|" * len(tests)]
    for c in results["cells"]:
        if c["window"] == max(sizes) and GOAL_CELLS.get(c["shift"]) == c["intensity"]:
            rates = " | ".join(f"{c['test_fire_rate'].get(t, 0):.2f}" for t in tests)
            lines.append(f"| {c['shift']} | {rates} |")
    lines += [
        "",
        "## Detection delay in a stream",
        "",
        f"Each stream holds one full window and {STREAM_CLEAN} more clean predictions, then the "
        f"shift; the monitor checks the last `window` predictions every {STREAM_STEP}. Delay: "
        "shifted predictions seen when the first alarm fires (in steps of "
        f"{STREAM_STEP}).",
        "",
        "| shift | window | streams | detected | median delay | max delay | "
        "false alarms before the change |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["streams"]:
        delays = [d for d in row["delays"] if d is not None]
        med = f"{int(np.median(delays))}" if delays else "-"
        mx = f"{max(delays)}" if delays else "-"
        lines.append(
            f"| {row['shift']} {row['intensity']:g} | {row['window']:,} | {row['streams']} | "
            f"{len(delays)} | {med} | {mx} | {row['false_alarms_before_change']} of "
            f"{row['checks_before_change']} checks |"
        )
    goals = results["goals"]
    lines += [
        "",
        "## Goals",
        "",
        f"- False alarms <= {s['alpha']} at every window size: "
        f"{'met' if goals['false_alarms_met'] else '**missed**'}.",
        f"- Power >= 0.9 at window 1,000 for the medium shifts: "
        f"{'met' if goals['power_met'] else '**missed**'} "
        f"({', '.join(f'{k} {v:.2f}' for k, v in goals['power'].items())}).",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and write the results and the page."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="fmnist home (champion)")
    parser.add_argument("--model", default="champion", help="alias, version or name@ref")
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="clothing-photos folder")
    parser.add_argument("--quick", action="store_true", help="few windows, medium shifts only")
    parser.add_argument("--windows", type=int, default=None, help="windows per cell (100)")
    parser.add_argument("--null-windows", type=int, default=None, help="unshifted windows (300)")
    parser.add_argument("--streams", type=int, default=None, help="streams per shift (10)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "drift.json")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--render", action="store_true", help="only regenerate the page")
    args = parser.parse_args(argv)
    if args.render:
        args.doc.write_text(render(json.loads(args.out.read_text())))
        print(f"wrote {args.doc}")
        return
    windows = args.windows or (20 if args.quick else 100)
    null_windows = args.null_windows or (40 if args.quick else 300)
    streams = args.streams or (3 if args.quick else 10)
    sizes = [s for s in args.sizes if not args.quick or s in (100, 1000)]
    started = time.perf_counter()

    home = args.home.resolve()
    ensure_champion(home)
    for name in [k for k in os.environ if k.startswith("FMNIST_")]:
        del os.environ[name]
    os.environ["FMNIST_HOME"] = str(home)
    from fmnist.composition import build_services
    from fmnist.config import load_settings
    from fmnist.data.snapshot import load_snapshot
    from fmnist.monitoring.monitor import resolve_target
    from fmnist.runtime_info import benchmark_machine

    settings = load_settings().settings
    services = build_services(settings)
    target = resolve_target(services, args.model)
    info = services.registry(target.reference.info.model_name).get(
        str(target.reference.info.model_version)
    )
    images, labels = load_snapshot(services.storage, info.tags["snapshot_id"]).split("test")
    splits = ("validation",) if args.quick else ("train", "validation")
    photo_pixels = load_photos(
        args.photos, splits, RESULTS / f"drift-photos-{'-'.join(splits)}.npz"
    )
    bench = Bench(
        target,
        settings.drift,
        make_pool(target, images, "upload"),
        labels,
        make_pool(target, photo_pixels, "photo"),
    )
    print(
        f"model {info.name} v{info.version}; reference {target.reference.info.n} images "
        f"({target.origin}); {len(images)} test images, {len(photo_pixels)} photos",
        flush=True,
    )

    false_alarms = []
    for i, size in enumerate(sizes):
        cell = run_cell(bench, None, 0.0, size, null_windows, args.seed * 1000 + i)
        false_alarms.append(cell)
        print(
            f"unshifted window {size}: {cell['detected']}/{null_windows} false alarms", flush=True
        )
    cells = []
    for f, family in enumerate(FAMILIES):
        intensities = (family.medium,) if args.quick else family.intensities
        for intensity in intensities:
            for i, size in enumerate(sizes):
                seed = (
                    args.seed * 1000 + 100 * (f + 1) + 10 * family.intensities.index(intensity) + i
                )
                cell = run_cell(bench, family, intensity, size, windows, seed)
                cells.append(cell)
                print(
                    f"{family.name} {intensity:g} window {size}: power {cell['rate']:.2f}",
                    flush=True,
                )
    stream_rows_out = []
    by_name = {f.name: f for f in FAMILIES}
    for g, (name, intensity) in enumerate(GOAL_CELLS.items()):
        for size in [s for s in (500, 1000) if s in sizes]:
            outcomes = [  # every stream has its own clean prefix
                run_stream(bench, by_name[name], intensity, size, args.seed * 7919 + 100 * g + k)
                for k in range(streams)
            ]
            stream_rows_out.append(
                {
                    "shift": name,
                    "intensity": intensity,
                    "window": size,
                    "streams": streams,
                    "delays": [o["delay"] for o in outcomes],
                    "false_alarms_before_change": sum(
                        o["false_alarms_before_change"] for o in outcomes
                    ),
                    "checks_before_change": streams * (STREAM_CLEAN // STREAM_STEP + 1),
                }
            )
            print(
                f"stream {name} window {size}: delays {stream_rows_out[-1]['delays']}", flush=True
            )

    alpha = settings.drift.alpha
    power = {
        f"{c['shift']} {c['intensity']:g}": c["rate"]
        for c in cells
        if c["window"] == max(sizes) and GOAL_CELLS.get(c["shift"]) == c["intensity"]
    }
    ref = target.reference.info
    results = {
        "benchmark": "drift",
        "mode": "quick" if args.quick else "full",
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed_s": time.perf_counter() - started,
        "machine": benchmark_machine("numpy", "scipy", "onnxruntime"),
        "settings": settings.drift.model_dump(mode="json"),
        "model": {
            "name": info.name,
            "version": info.version,
            "test_accuracy": info.tags.get("test_accuracy", "?"),
        },
        "reference": {
            "n": ref.n,
            "origin": target.origin.replace(f"{REPO}/", ""),
            "embedding_kind": ref.embedding_kind,
            "embedding_dim": ref.embedding_dim,
            "pca_dims": ref.pca_dims,
            "pca_explained_variance": ref.pca_explained_variance,
            "accuracy": ref.accuracy,
        },
        "photos": len(photo_pixels),
        "verified_end_to_end": bench.verified,
        "windows_run": bench.windows_run,
        "detect_ms_per_window": 1e3 * bench.detect_seconds / max(bench.windows_run, 1),
        "false_alarms": false_alarms,
        "cells": cells,
        "streams": stream_rows_out,
        "goals": {
            "false_alarms_met": all(c["rate"] <= alpha for c in false_alarms),
            "power": power,
            "power_met": bool(power) and all(v >= 0.9 for v in power.values()),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    with args.out.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["shift", "intensity", "unit", "window", "windows", "detected", "rate"])
        for c in false_alarms + cells:
            writer.writerow(
                [
                    c["shift"],
                    c["intensity"],
                    c["unit"],
                    c["window"],
                    c["windows"],
                    c["detected"],
                    f"{c['rate']:.4f}",
                ]
            )
    args.doc.write_text(render(results))
    print(
        f"wrote {args.out}, {args.out.with_suffix('.csv')} and {args.doc} in "
        f"{results['elapsed_s']:.0f} s ({results['detect_ms_per_window']:.0f} ms per window); "
        f"goals: false alarms {'met' if results['goals']['false_alarms_met'] else 'MISSED'}, "
        f"power {'met' if results['goals']['power_met'] else 'MISSED'}",
        flush=True,
    )


if __name__ == "__main__":
    main()
