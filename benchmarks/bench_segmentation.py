"""Photo preprocessing time per photo: the colour model alone against GrabCut on top of it.

Run with ``.venv/bin/python benchmarks/bench_segmentation.py [--split validation] [--limit N]``.

Every photo of ``../shared/data/clothing-photos/<split>/CLASS/*.jpg`` (default ``validation``,
341 photos; measuring only) goes through :func:`fmnist.imaging.preprocess.preprocess_bytes`
with ``segmentation="colour"`` and ``"grabcut"`` (the default), JPEG decoding included, twice
each after one warm-up pass; the faster of the two runs of each photo is kept, which discounts
other jobs on a shared machine. Prints the median and 95th percentile of the wall and CPU time
(``time.thread_time``), the GrabCut step alone, and the load average; writes
``benchmarks/results/segmentation.json``, rendered into ``docs/real-photos.md``
(``real_photos.py``). The target is under 20 ms per photo. About 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fmnist.imaging.preprocess import preprocess_bytes
from fmnist.runtime_info import benchmark_machine

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "data" / "clothing-photos"
RESULTS = REPO / "benchmarks" / "results" / "segmentation.json"
TARGET_MS = 20.0


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(values), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "mean_ms": round(statistics.fmean(values), 2),
    }


def time_photo(data: bytes, segmentation: str, runs: int = 2) -> tuple[float, float]:
    """The fastest of ``runs`` (wall ms, CPU ms) of one photo's preprocessing."""
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.thread_time()
        preprocess_bytes(data, segmentation=segmentation)  # type: ignore[arg-type]
        best_wall = min(best_wall, (time.perf_counter() - wall) * 1e3)
        best_cpu = min(best_cpu, (time.thread_time() - cpu) * 1e3)
    return best_wall, best_cpu


def main() -> int:
    """Time both segmentations and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="clothing-photos folder")
    parser.add_argument("--split", default="validation", choices=("train", "validation"))
    parser.add_argument("--limit", type=int, default=0, help="photos in all (0: every photo)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    args = parser.parse_args()
    root = args.photos / args.split
    if not root.is_dir():
        parser.error(f"no photos at {root} (see ../shared/README.md)")
    files = sorted(root.glob("*/*.jpg"))
    if args.limit:
        files = files[:: max(1, len(files) // args.limit)][: args.limit]
    blobs = [f.read_bytes() for f in files]
    load_before = os.getloadavg()
    for data in blobs[:10]:  # warm-up: imports, OpenCV and allocator first use
        preprocess_bytes(data)
    results: dict[str, Any] = {}
    started = time.perf_counter()
    for segmentation in ("colour", "grabcut"):
        walls, cpus = [], []
        for data in blobs:
            wall, cpu = time_photo(data, segmentation)
            walls.append(wall)
            cpus.append(cpu)
        results[segmentation] = {"wall": _stats(walls), "cpu": _stats(cpus), "_cpu": cpus}
    extra = [
        g - c for g, c in zip(results["grabcut"]["_cpu"], results["colour"]["_cpu"], strict=True)
    ]
    results["grabcut_step_cpu"] = _stats(extra)
    for segmentation in ("colour", "grabcut"):
        del results[segmentation]["_cpu"]
    seconds = time.perf_counter() - started
    print(
        f"{len(files)} photos of {root} (JPEG decoding included; fastest of 2 runs each), "
        f"{seconds:.0f} s, load average before {load_before[0]:.2f}, after "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'segmentation':<14} {'wall median':>11} {'wall p95':>9} "
        f"{'CPU median':>11} {'CPU p95':>8}"
    )
    for segmentation in ("colour", "grabcut"):
        wall, cpu = results[segmentation]["wall"], results[segmentation]["cpu"]
        print(
            f"{segmentation:<14} {wall['median_ms']:>9.1f}ms {wall['p95_ms']:>7.1f}ms "
            f"{cpu['median_ms']:>9.1f}ms {cpu['p95_ms']:>6.1f}ms"
        )
    step = results["grabcut_step_cpu"]
    print(
        f"GrabCut step alone (CPU): median {step['median_ms']:.1f} ms, p95 {step['p95_ms']:.1f} ms"
    )
    met = results["grabcut"]["cpu"]["median_ms"] < TARGET_MS
    print(f"target: under {TARGET_MS:.0f} ms per photo (CPU median): {'met' if met else 'NOT met'}")
    payload = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": benchmark_machine("numpy", "pillow", "opencv-python-headless"),
        "photos": len(files),
        "split": args.split,
        "seconds": round(seconds, 1),
        "load_average_before": load_before,
        "target_ms": TARGET_MS,
        **results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.json}")
    if args.json.resolve() == RESULTS.resolve():
        from figures import refresh_after  # docs/real-photos.md (real_photos.py)

        refresh_after(RESULTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
