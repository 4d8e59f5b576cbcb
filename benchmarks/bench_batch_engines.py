"""Batch engines: the default job (threads, shards) against the same job on Apache Beam.

Run with ``.venv/bin/python benchmarks/bench_batch_engines.py [--onnx PATH] [--rounds N]``.

Both engines predict the 10,000 test images from their gzipped IDX file into Parquet with the
same model (without ``--onnx``: ``results/quick-model.onnx``, trained by ``bench_batch.py``'s
helper the first time), reading, decisions and writing included, the model load not. Rounds
alternate the engines (A/B/A/B...) so drifting load hits both; medians are reported, with the
share of identical labels. Writes ``results/batch_engines.json`` with the CPU, cores, load
average and versions, and renders its table into ``docs/pipelines.md`` (``--report-only``
renders the last result file again without measuring).
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

import pyarrow.parquet as pq

from fmnist import __version__
from fmnist.batch.beam_job import pipeline_options, run_beam_batch
from fmnist.batch.model import load_onnx_model
from fmnist.batch.readers import open_input
from fmnist.batch.runner import run_batch
from fmnist.config import load_settings
from fmnist.runtime_info import cores_usable, cpu_model, load_average

RESULTS = Path(__file__).resolve().parent / "results"
DOC = Path(__file__).resolve().parents[1] / "docs" / "pipelines.md"
BEGIN, END = "<!-- batch_engines: begin -->", "<!-- batch_engines: end -->"
MIN_CONFIDENCE = 0.5


def render(result: dict[str, Any]) -> str:
    """The Markdown section of ``docs/pipelines.md`` for one result file."""
    machine = result["machine"]
    lines = [
        BEGIN,
        f"Measured {result['measured_at']} on {machine['cpu']} ({machine['cores']} cores, load "
        f"{machine['load_average']}) by `benchmarks/bench_batch_engines.py`, median of "
        f"{result['rounds']} alternating rounds, {result['rows']:,} test images from the "
        f"gzipped IDX file (reading, decisions and the Parquet write included):",
        "",
        "| engine | images/s | seconds |",
        "|---|---:|---:|",
    ]
    for engine, figures in result["engines"].items():
        lines.append(
            f"| {engine} | {figures['images_per_s']:,.0f} | {figures['seconds_median']:.2f} |"
        )
    lines += [
        "",
        f"The default engine is {result['default_over_beam']:.1f}x faster here; the two wrote "
        f"identical labels for {result['identical_labels']:.2%} of the rows.",
        END,
    ]
    return "\n".join(lines)


def write_doc(result: dict[str, Any]) -> None:
    """Replace the generated section of ``docs/pipelines.md``."""
    text = DOC.read_text()
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    DOC.write_text(text[:start] + render(result) + text[stop:])


def default_engine(model_path: Path, source: Path, output: Path) -> float:
    """Seconds of the default job (2 ONNX Runtime threads, as ``batch.intra_op_threads``)."""
    model = load_onnx_model(model_path, threads=2, batch_size=1024)
    output.unlink(missing_ok=True)
    start = time.perf_counter()
    with open_input(source) as batch_input:
        run_batch(batch_input, output, model, min_confidence=MIN_CONFIDENCE)
    return time.perf_counter() - start


def beam_engine(model_path: Path, source: Path, output: Path) -> float:
    """Seconds of the Beam job on the DirectRunner (pipeline construction included)."""
    output.unlink(missing_ok=True)
    start = time.perf_counter()
    with open_input(source) as batch_input:
        rows = batch_input.num_rows
    run_beam_batch(
        lambda: open_input(source),
        rows,
        model_path,
        output,
        name="bench",
        version="1",
        min_confidence=MIN_CONFIDENCE,
        options=pipeline_options("DirectRunner"),
    )
    return time.perf_counter() - start


def main() -> int:
    """Measure, print and write ``results/batch_engines.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", type=Path, default=RESULTS / "quick-model.onnx")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--report-only", action="store_true", help="Render the last result.")
    args = parser.parse_args()
    if args.report_only:
        write_doc(json.loads((RESULTS / "batch_engines.json").read_text()))
        return 0
    settings = load_settings().settings
    if not args.onnx.is_file():
        from bench_batch import train_quick_model  # type: ignore[import-not-found]

        RESULTS.mkdir(parents=True, exist_ok=True)
        train_quick_model(settings, args.onnx)
    from bench_batch import data_dir  # type: ignore[import-not-found]

    source = data_dir(settings) / "t10k-images-idx3-ubyte.gz"
    seconds: dict[str, list[float]] = {"default": [], "beam": []}
    with tempfile.TemporaryDirectory(prefix="fmnist-bench-engines-") as tmp:
        outputs = {e: Path(tmp) / f"{e}.parquet" for e in seconds}
        for _ in range(args.rounds):
            seconds["default"].append(default_engine(args.onnx, source, outputs["default"]))
            seconds["beam"].append(beam_engine(args.onnx, source, outputs["beam"]))
        tables = {e: pq.read_table(p).sort_by("input_ref") for e, p in outputs.items()}
    labels = [tables[e].column("label").to_pylist() for e in ("default", "beam")]
    same = sum(a == b for a, b in zip(*labels, strict=True)) / len(labels[0])
    rows = len(labels[0])
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": cores_usable(), "load_average": load_average()},
        "versions": {"fmnist": __version__, "apache_beam": _version("apache-beam")},
        "rows": rows,
        "rounds": args.rounds,
        "identical_labels": same,
        "engines": {
            engine: {
                "seconds_median": statistics.median(values),
                "images_per_s": rows / statistics.median(values),
                "seconds": values,
            }
            for engine, values in seconds.items()
        },
    }
    ratio = result["engines"]["default"]["images_per_s"] / result["engines"]["beam"]["images_per_s"]
    result["default_over_beam"] = ratio
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batch_engines.json").write_text(json.dumps(result, indent=2))
    write_doc(result)
    for engine, figures in result["engines"].items():
        print(f"{engine:8s} {figures['images_per_s']:>9,.0f} images/s (median of {args.rounds})")
    print(f"default / beam: {ratio:.2f}x; identical labels {same:.4%} of {rows:,}")
    return 0


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


if __name__ == "__main__":
    raise SystemExit(main())
