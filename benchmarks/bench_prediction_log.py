"""Cost of the durable prediction log: ``PredictionLog.append`` and the API's journal per fsync
policy, and the reads.

Run with ``.venv/bin/python benchmarks/bench_prediction_log.py [--single N] [--batches N]``.

For each policy (``off``, ``normal``, ``full``) on a fresh SQLite file in a temporary folder on the
repository's disk: ``append`` of one record (median, p95, p99, max in microseconds), of 1,000
records in one transaction (median milliseconds and microseconds per record), and records/s with 4
threads appending one record each call; then one-record appends from two processes at once, about
1,000 per second each (``normal``). The API's path: one frame encoded and written to the journal
per record (median, p95, p99), and the mover's records/s into SQLite. Then, on 10,000 logged
records: ``window_arrays(last=10000)`` and ``window(last=1000)`` (live rows), ``compact`` of those
rows into Parquet, and ``window_arrays`` again over the compacted rows. Records carry real-sized
payloads (784 pixel bytes, ten probabilities). Prints a table and writes
``results/prediction_log.json``. About 30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from fmnist import CLASS_NAMES
from fmnist.monitoring.journal import PredictionJournal, replay_journals
from fmnist.monitoring.journal_frames import encode_frame
from fmnist.monitoring.log_schema import COLUMNS, to_row
from fmnist.monitoring.prediction_log import FsyncPolicy, PredictionLog
from fmnist.monitoring.records import PredictionRecord
from fmnist.runtime_info import benchmark_machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "prediction_log.json"
POLICIES: tuple[FsyncPolicy, ...] = ("off", "normal", "full")


def make_records(n: int, start: datetime, seed: int = 0) -> list[PredictionRecord]:
    """``n`` realistic records one millisecond apart from ``start``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, 10))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pixels = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
    return [
        PredictionRecord(
            request_id=str(uuid.uuid4()),
            timestamp=(start + timedelta(milliseconds=i)).isoformat(),
            model_name="fmnist-classifier",
            model_version=3,
            model_alias="champion",
            arm="",
            input_kind="upload",
            input_digest=f"{i:064x}",
            pixels=pixels[i].tobytes(),
            probabilities=tuple(float(p) for p in probs[i]),
            predicted_class=CLASS_NAMES[int(probs[i].argmax())],
            confidence=float(probs[i].max()),
            latency_ms=1.2,
            client_id="",
            route="/v1/predict",
        )
        for i in range(n)
    ]


def _percentiles(samples_us: list[float]) -> dict[str, float]:
    ordered = sorted(samples_us)
    return {
        "median_us": round(statistics.median(ordered), 1),
        "p95_us": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "p99_us": round(ordered[int(0.99 * (len(ordered) - 1))], 1),
        "max_us": round(ordered[-1], 1),
    }


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_policy(policy: FsyncPolicy, root: Path, single: int, batches: int) -> dict[str, Any]:
    """Append costs of one fsync policy on a fresh log."""
    folder = Path(tempfile.mkdtemp(prefix=f"log-{policy}-", dir=root))
    log = PredictionLog(folder / "predictions.db", folder / "segments", fsync=policy)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    warm = make_records(200, start, seed=1)
    for record in warm:
        log.append([record])
    records = make_records(single, start, seed=2)
    one = [_timed(partial(log.append, [r])) * 1e6 for r in records]
    batch_records = [make_records(1000, start, seed=10 + b) for b in range(batches)]
    big = [_timed(partial(log.append, b)) * 1e3 for b in batch_records]

    threaded = make_records(4 * 500, start, seed=99)

    def worker(part: list[PredictionRecord]) -> None:
        for record in part:
            log.append([record])

    threads = [threading.Thread(target=worker, args=(threaded[i::4],)) for i in range(4)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    threaded_rate = len(threaded) / (time.perf_counter() - began)
    log.close()
    return {
        "append_1": _percentiles(one),
        "append_1000_median_ms": round(statistics.median(big), 2),
        "append_1000_us_per_record": round(statistics.median(big) * 1e3 / 1000, 2),
        "threads_4_records_per_s": round(threaded_rate),
    }


def _paced_appends(folder: str, seed: int, n: int, out: Any) -> None:
    """One server-like process: ``n`` one-record appends about 1 ms apart; send the times."""
    log = PredictionLog(Path(folder) / "predictions.db", Path(folder) / "segments")
    samples = []
    for record in make_records(n, datetime.now(UTC), seed=seed):
        samples.append(_timed(partial(log.append, [record])) * 1e6)
        time.sleep(0.001)
    out.send(_percentiles(samples))


def bench_processes(root: Path, n: int, processes: int = 2) -> list[dict[str, float]]:
    """One-record appends from ``processes`` processes at once (about 1,000/s each), as
    ``serving.workers`` server processes do."""
    folder = Path(tempfile.mkdtemp(prefix="log-procs-", dir=root))
    PredictionLog(folder / "predictions.db", folder / "segments").close()
    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe(duplex=False) for _ in range(processes)]
    workers = [
        context.Process(target=_paced_appends, args=(str(folder), 100 + i, n, send))
        for i, (_, send) in enumerate(pipes)
    ]
    for worker in workers:
        worker.start()
    figures = [receive.recv() for receive, _ in pipes]
    for worker in workers:
        worker.join()
    return figures


def bench_reads(root: Path) -> dict[str, float]:
    """Window reads over 10,000 live records, compaction, and reads over compacted ones."""
    folder = Path(tempfile.mkdtemp(prefix="log-reads-", dir=root))
    log = PredictionLog(folder / "predictions.db", folder / "segments")
    start = datetime(2024, 5, 1, tzinfo=UTC)
    for b in range(10):
        log.append(make_records(1000, start + timedelta(seconds=10 * b), seed=b))
    figures = {
        "window_arrays_10000_live_ms": _timed(lambda: log.window_arrays(10_000)) * 1e3,
        "window_1000_live_ms": _timed(lambda: log.window(1000)) * 1e3,
        "compact_10000_ms": _timed(lambda: log.compact(start.date() + timedelta(days=1))) * 1e3,
        "window_arrays_10000_compacted_ms": _timed(lambda: log.window_arrays(10_000)) * 1e3,
    }
    log.close()
    return {k: round(v, 1) for k, v in figures.items()}


def bench_journal(policy: FsyncPolicy, root: Path, single: int) -> dict[str, Any]:
    """The API's write path under one fsync policy: encode one frame and ``write`` it to the
    journal (per record), then the mover's rate into SQLite (one pass over those frames)."""
    folder = Path(tempfile.mkdtemp(prefix=f"journal-{policy}-", dir=root))
    log = PredictionLog(folder / "predictions.db", folder / "segments", fsync=policy)
    journal = PredictionJournal(log, start_mover=False)
    rows = [to_row(r) for r in make_records(single, datetime(2024, 5, 1, tzinfo=UTC), seed=3)]
    times = []
    for row in rows:
        began = time.perf_counter()
        journal.write(encode_frame(**dict(zip(COLUMNS[1:], row, strict=True))))
        times.append((time.perf_counter() - began) * 1e6)
    moved = _timed(lambda: replay_journals(log))
    journal.close()
    log.close()
    return {"write_1": _percentiles(times), "mover_records_per_s": round(single / moved)}


def main() -> None:
    """Measure, print, and write ``results/prediction_log.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=3000, help="one-record appends timed")
    parser.add_argument("--batches", type=int, default=20, help="1,000-record appends timed")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    args = parser.parse_args()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=RESULTS.parent) as tmp:
        policies = {p: bench_policy(p, Path(tmp), args.single, args.batches) for p in POLICIES}
        journals = {p: bench_journal(p, Path(tmp), args.single) for p in POLICIES}
        processes = bench_processes(Path(tmp), args.single)
        reads = bench_reads(Path(tmp))
    print(
        f"{'fsync':8} {'1 rec median':>13} {'p95':>8} {'p99':>8} {'max':>9} "
        f"{'1000 rec':>10} {'per rec':>8} {'4 threads':>10}"
    )
    for policy, fig in policies.items():
        one = fig["append_1"]
        print(
            f"{policy:8} {one['median_us']:>10.1f} us {one['p95_us']:>8.1f} {one['p99_us']:>8.1f} "
            f"{one['max_us']:>9.1f} {fig['append_1000_median_ms']:>7.2f} ms "
            f"{fig['append_1000_us_per_record']:>5.2f} us {fig['threads_4_records_per_s']:>6}/s"
        )
    for policy, fig in journals.items():
        one = fig["write_1"]
        print(
            f"journal ({policy}): encode + write of one record median {one['median_us']} us, "
            f"p95 {one['p95_us']}, p99 {one['p99_us']}; mover {fig['mover_records_per_s']:,}/s"
        )
    for i, fig in enumerate(processes):
        print(
            f"process {i + 1} of {len(processes)} (1 rec, ~1,000/s each, fsync normal): "
            f"median {fig['median_us']} us, p95 {fig['p95_us']}, p99 {fig['p99_us']}, "
            f"max {fig['max_us']}"
        )
    for key, value in reads.items():
        print(f"{key}: {value} ms")
    payload = {
        "benchmark": "prediction_log",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": benchmark_machine("numpy", "pyarrow"),
        "single_appends": args.single,
        "batches": args.batches,
        "policies": policies,
        "journal": journals,
        "two_processes_normal": processes,
        "reads": reads,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
