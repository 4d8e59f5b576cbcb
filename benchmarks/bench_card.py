"""Responsible evaluation and model card of one trained run: figures and time per part.

Run with ``FMNIST_HOME=HOME .venv/bin/python benchmarks/bench_card.py RUN_FOLDER [--out DIR]``.

``RUN_FOLDER`` holds a run's ``model.onnx`` and ``weights.pt`` (``<home>/runs/<run_id>``); the
test and validation splits come from the data snapshot the weights name, in ``HOME``'s lake.
The script scores the ONNX file on the 10,000 test images, runs
:func:`fmnist.evaluation.responsible.responsible_evaluation` with the current settings (the same
call as ``fmnist evaluate``), renders both model cards into ``--out`` (default
``benchmarks/results/card/``) and prints the seconds of each part, the behavioural tests, the
weakest slices and the bootstrap intervals; the figures go to ``benchmarks/results/card.json``.
Nothing is written to the run folder or to MLflow.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fmnist import CLASS_NAMES
from fmnist.config import load_settings
from fmnist.data.snapshot import load_snapshot
from fmnist.evaluation.calibration import softmax
from fmnist.evaluation.gates import apply_gates
from fmnist.evaluation.metrics import evaluate_logits
from fmnist.evaluation.model_card import write_model_cards
from fmnist.evaluation.plots import confusion_matrix_png, reliability_diagram_png
from fmnist.evaluation.responsible import responsible_evaluation
from fmnist.platform.storage import FsspecStorage
from fmnist.registry.onnx_runtime import OnnxClassifier
from fmnist.runtime_info import benchmark_machine

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    """Parse the arguments, evaluate, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_folder", type=Path, help="folder with model.onnx and weights.pt")
    parser.add_argument("--out", type=Path, default=RESULTS / "card", help="card folder")
    args = parser.parse_args()

    settings = load_settings().settings
    state = torch.load(args.run_folder / "weights.pt", map_location="cpu", weights_only=False)
    snapshot = load_snapshot(FsspecStorage(settings.resolved_lake_url), state["snapshot_id"])
    images, labels = snapshot.split("test")
    classifier = OnnxClassifier(args.run_folder / "model.onnx")
    logits = classifier.predict_logits(images)
    report = evaluate_logits(logits, labels, temperature=classifier.temperature)
    out: Path = args.out
    figures = {
        "confusion_matrix": confusion_matrix_png(
            report.confusion, CLASS_NAMES, out / "confusion_matrix.png"
        ),
        "reliability_diagram": reliability_diagram_png(
            softmax(logits), labels, out / "reliability_diagram.png", classifier.temperature
        ),
    }
    result = responsible_evaluation(
        settings.evaluation,
        images=images,
        labels=labels,
        probs=softmax(logits, classifier.temperature or 1.0),
        predict=classifier.predict,
        report=report,
        class_names=CLASS_NAMES,
        out=out,
        reference=snapshot.split("val"),
        model_folder=args.run_folder,
        figures=figures,
        data_counts=snapshot.manifest.counts,
        data_source=snapshot.manifest.source,
    )
    started = time.perf_counter()
    cards = write_model_cards(
        out,
        name="bench",
        run_id=args.run_folder.name,
        snapshot_id=snapshot.snapshot_id,
        config=state["config"],
        training={},
        report=report,
        decision=apply_gates(report, settings.gates),
        details=result.details,
    )
    card_seconds = time.perf_counter() - started

    details = result.details
    assert details.behavioural and details.slices and details.intervals
    print(
        f"model {args.run_folder} ({state['config'].get('model')}), accuracy {report.accuracy:.4f}"
    )
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()))
    print(f"seconds: responsible total {result.seconds:.2f}, both cards {card_seconds:.2f}")
    for r in details.behavioural.invariance:
        verdict = "pass" if r.passed else "FAIL"
        print(
            f"  {r.name:<11} change rate {r.change_rate:.4f} (<= {r.max_change_rate:.2f}) {verdict}"
        )
    mft = details.behavioural.functionality
    if mft is not None:
        print(f"  clear examples: {mft.correct}/{mft.n} = {mft.pass_rate:.4f}")
    for s in details.slices.worst_slices():
        print(f"  worst slice {s.name}: accuracy {s.accuracy:.4f} ({s.gap:+.4f}), n {s.n}")
    iv = details.intervals
    for name in ("accuracy", "macro_f1", "ece"):
        i = getattr(iv, name)
        print(f"  {name}: {i.estimate:.4f} [{i.low:.4f}, {i.high:.4f}]")
    print("  card sizes: " + ", ".join(f"{p.name} {p.stat().st_size:,} B" for p in cards.values()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": benchmark_machine(),
        "run_folder": str(args.run_folder),
        "accuracy": report.accuracy,
        "seconds": result.timings | {"total": result.seconds, "cards": card_seconds},
        "metrics": result.metrics,
    }
    (RESULTS / "card.json").write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
