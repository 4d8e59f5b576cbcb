"""Data-layer benchmark: load + verify + parse, validation, snapshot write and load.

Run with ``.venv/bin/python benchmarks/bench_data.py`` (or ``make bench``). Prints a table and
writes the figures to ``benchmarks/results/data.json``. Uses the data source that the settings
resolve (``FMNIST_DATA_DIR``, user cache, Debian package, download); snapshots go to temporary
lakes that are deleted afterwards, so nothing is written under ``FMNIST_HOME``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fmnist.config import Settings, load_settings
from fmnist.data.snapshot import load_snapshot, write_snapshot
from fmnist.data.sources import RawDataset, default_sources, load_raw
from fmnist.data.validation import validate_splits
from fmnist.platform.storage import FsspecStorage
from fmnist.runtime_info import benchmark_machine

RUNS = 5
Format = Literal["parquet", "npz"]
FORMATS: tuple[Format, ...] = ("parquet", "npz")
RESULTS = Path(__file__).resolve().parent / "results" / "data.json"


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    """Run ``fn`` ``runs`` times; return the wall times in seconds and the last result."""
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def summary(times: list[float]) -> dict[str, Any]:
    """Median, min and the raw runs, in seconds."""
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "runs": len(times),
        "all_s": times,
    }


def bench_snapshot(raw: RawDataset, settings: Settings, fmt: Format) -> dict[str, Any]:
    """Cold writes (a fresh temporary lake per run) and loads of one snapshot format."""
    chosen = settings.model_copy(deep=True)
    chosen.data.snapshot_format = fmt
    write_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="fmnist-bench-") as tmp:
        for run in range(RUNS):
            storage = FsspecStorage(str(Path(tmp) / f"lake-{run}"))
            start = time.perf_counter()
            manifest, _ = write_snapshot(storage, raw, chosen.data, chosen.validation)
            write_times.append(time.perf_counter() - start)
        load_times, snap = timed(lambda: load_snapshot(storage, manifest.snapshot_id), RUNS)
        on_disk = {
            p.name: p.stat().st_size
            for p in (Path(tmp) / f"lake-{RUNS - 1}" / "snapshots" / manifest.snapshot_id).iterdir()
        }
    assert snap.manifest.counts == {"train": 54_000, "val": 6_000, "test": 10_000}, (
        snap.manifest.counts
    )
    data_files = {k: v for k, v in on_disk.items() if k not in ("manifest.json", "validation.json")}
    return {
        "snapshot_id": manifest.snapshot_id,
        "write": summary(write_times),
        "load": summary(load_times),
        "files_bytes": on_disk,
        "data_bytes": sum(data_files.values()),
        "total_bytes": sum(on_disk.values()),
    }


def main() -> int:
    """Measure, print a table and write the JSON results."""
    started = time.perf_counter()
    settings = load_settings().settings
    info = benchmark_machine("numpy", "pyarrow")
    print(
        f"machine: {info['cpu']}, {info['cores_usable']} usable of {info['cores_online']} cores; "
        f"python {info['python']}, numpy {info['numpy']}, pyarrow {info['pyarrow']}; "
        f"load average {info['load_average'][0]:.2f} (other work on the cores slows every step)"
    )

    load_times, raw = timed(lambda: load_raw(default_sources(settings)), RUNS)
    print(f"source: {raw.source}")
    splits = {
        "train": (raw.train_images, raw.train_labels),
        "test": (raw.test_images, raw.test_labels),
    }
    validate_times, report = timed(lambda: validate_splits(splits, settings.validation), RUNS)
    snapshots = {fmt: bench_snapshot(raw, settings, fmt) for fmt in FORMATS}

    rows: list[tuple[str, str, str]] = [
        (
            "load + SHA-256 + parse, 70,000 images",
            f"{statistics.median(load_times):.3f}",
            f"{min(load_times):.3f}",
        ),
        (
            f"validate train + test ({len(report.checks)} checks)",
            f"{statistics.median(validate_times):.3f}",
            f"{min(validate_times):.3f}",
        ),
    ]
    for fmt, res in snapshots.items():
        rows.append(
            (
                f"snapshot write, {fmt} (split + validate + encode, cold lake)",
                f"{res['write']['median_s']:.3f}",
                f"{res['write']['min_s']:.3f}",
            )
        )
        rows.append(
            (
                f"snapshot load, {fmt} (read + SHA-256 + decode)",
                f"{res['load']['median_s']:.3f}",
                f"{res['load']['min_s']:.3f}",
            )
        )
    width = max(len(r[0]) for r in rows)
    print(f"\n{'step':<{width}}  {'median s':>9}  {'min s':>7}   ({RUNS} runs each)")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 7}")
    for name, median, best in rows:
        print(f"{name:<{width}}  {median:>9}  {best:>7}")

    print("\nsnapshot size on disk (bytes):")
    for fmt, res in snapshots.items():
        files = ", ".join(f"{k} {v:,}" for k, v in sorted(res["files_bytes"].items()))
        print(
            f"  {fmt:<8} data {res['data_bytes']:>11,} ({res['data_bytes'] / 2**20:.1f} MiB); "
            f"total {res['total_bytes']:,}  [{files}]"
        )
    raw_bytes = sum(a.nbytes for a in (*splits["train"], *splits["test"]))
    print(f"  raw uint8 arrays in memory: {raw_bytes:,} bytes ({raw_bytes / 2**20:.1f} MiB)")

    elapsed = time.perf_counter() - started
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_data.py",
        "machine": info,
        "source": raw.source,
        "content_hash": raw.content_hash,
        "images": int(len(raw.train_labels) + len(raw.test_labels)),
        "load_verify_parse": summary(load_times),
        "validate_train_test": summary(validate_times),
        "validation_passed": report.passed,
        "snapshots": snapshots,
        "raw_array_bytes": raw_bytes,
        "benchmark_wall_s": elapsed,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS} ({elapsed:.1f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
