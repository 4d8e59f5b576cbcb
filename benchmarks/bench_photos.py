"""Real photos through the classifier: naive resizing against ``fmnist.imaging.preprocess``.

Run with ``.venv/bin/python benchmarks/bench_photos.py --model PATH.onnx`` (a model exported by
``fmnist train``, whose metadata holds the temperature and the OOD energy threshold).

Every photo of ``../shared/data/clothing-photos/<split>/CLASS/*.jpg`` (default split
``validation``, 341 photos) is turned into a 28x28 input twice: naively (grayscale, squashed to
28x28 with area averaging, no inversion, no background removal) and with
:func:`fmnist.imaging.preprocess.preprocess_bytes`. Both go through the model and
:func:`fmnist.evaluation.unknown.decide`. Per photo class it prints the share whose top-1 class is a
plausible Fashion-MNIST class, the share *answered* with a plausible class (not unknown), and the
share answered unknown (hat, shorts and skirt have no Fashion-MNIST class: unknown is the right
answer for them), plus the preprocessing time per photo. Figures go to
``benchmarks/results/photos.json``; ``--sheet PATH`` also draws a contact sheet (photo, naive
input, preprocessed input) of two photos per class. As a reference it also runs the Fashion-MNIST
test set (if installed) through the same unknown rule. About 20 s on one core.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageOps

from fmnist import CLASS_NAMES, IMAGE_SIZE
from fmnist.config import ServingSettings
from fmnist.evaluation.unknown import Verdict, decide, energy_threshold_from_metadata
from fmnist.imaging.decode import decode_image
from fmnist.imaging.preprocess import preprocess_bytes, preprocess_image
from fmnist.registry.onnx_runtime import OnnxClassifier
from fmnist.runtime_info import benchmark_machine

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "data" / "clothing-photos"
RESULTS = REPO / "benchmarks" / "results" / "photos.json"
MAX_PIXELS = 40_000_000
FASHION_MNIST_TEST = (
    Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"),
    REPO.parent / "shared" / "data" / "fashion-mnist" / "t10k-images-idx3-ubyte.gz",
)

PLAUSIBLE: dict[str, tuple[str, ...]] = {
    "dress": ("Dress",),
    "hat": (),
    "longsleeve": ("Pullover", "Shirt", "T-shirt/top"),
    "outwear": ("Coat", "Pullover"),
    "pants": ("Trouser",),
    "shirt": ("Shirt", "T-shirt/top"),
    "shoes": ("Sandal", "Sneaker", "Ankle boot"),
    "shorts": (),
    "skirt": (),
    "t-shirt": ("T-shirt/top",),
}
"""Photo class -> the Fashion-MNIST classes that are a right answer (none: unknown is right)."""


def naive_input(data: bytes) -> npt.NDArray[np.uint8]:
    """Grayscale and squash to 28x28: what a client that knows nothing about the model sends."""
    image = decode_image(data, max_pixels=MAX_PIXELS)
    small = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.uint8)


def classify(
    model: OnnxClassifier,
    images: npt.NDArray[np.uint8],
    fractions: npt.NDArray[np.float64] | None,
    min_confidence: float,
) -> tuple[list[Verdict], npt.NDArray[np.int64]]:
    """Verdicts and raw top-1 class ids for a stack of 28x28 inputs."""
    logits, probabilities = model.run(images)
    verdicts = decide(
        probabilities,
        logits,
        temperature=model.temperature or 1.0,
        energy_threshold=energy_threshold_from_metadata(model.metadata),
        min_confidence=min_confidence,
        foreground_fraction=fractions,
    )
    return verdicts, logits.argmax(axis=1).astype(np.int64)


def shares(
    labels: list[str], verdicts: list[Verdict], top1: npt.NDArray[np.int64]
) -> dict[str, dict[str, Any]]:
    """Per photo class: n, top-1 plausible, answered plausible, unknown and the top answers."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(PLAUSIBLE):
        idx = [i for i, label in enumerate(labels) if label == name]
        if not idx:
            continue
        ok = set(PLAUSIBLE[name])
        n = len(idx)
        answers = Counter(verdicts[i].label for i in idx)
        out[name] = {
            "n": n,
            "plausible": list(PLAUSIBLE[name]),
            "top1_plausible": sum(CLASS_NAMES[int(top1[i])] in ok for i in idx) / n,
            "answered_plausible": sum(verdicts[i].label in ok for i in idx) / n,
            "unknown": sum(verdicts[i].is_unknown for i in idx) / n,
            "low_confidence": sum(
                any(r.startswith("low confidence") for r in verdicts[i].reasons) for i in idx
            )
            / n,
            "out_of_distribution": sum(
                any(r.startswith("out of distribution") for r in verdicts[i].reasons) for i in idx
            )
            / n,
            "blank": sum("blank image" in verdicts[i].reasons for i in idx) / n,
            "top_answers": [f"{label} {count / n:.0%}" for label, count in answers.most_common(3)],
        }
    return out


def summary(per_class: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Photo-weighted totals over the classes with and without a Fashion-MNIST counterpart."""
    mapped = [v for v in per_class.values() if v["plausible"]]
    unmapped = [v for v in per_class.values() if not v["plausible"]]

    def weighted(rows: list[dict[str, Any]], key: str) -> float:
        total = sum(r["n"] for r in rows)
        return sum(r[key] * r["n"] for r in rows) / total if total else float("nan")

    return {
        "mapped_top1_plausible": weighted(mapped, "top1_plausible"),
        "mapped_answered_plausible": weighted(mapped, "answered_plausible"),
        "mapped_unknown": weighted(mapped, "unknown"),
        "mapped_answered_wrong": 1.0
        - weighted(mapped, "unknown")
        - weighted(mapped, "answered_plausible"),
        "unmapped_unknown": weighted(unmapped, "unknown"),
        "all_low_confidence": weighted(mapped + unmapped, "low_confidence"),
        "all_out_of_distribution": weighted(mapped + unmapped, "out_of_distribution"),
        "all_blank": weighted(mapped + unmapped, "blank"),
    }


def fashion_mnist_reference(model: OnnxClassifier, min_confidence: float) -> dict[str, Any]:
    """In-distribution cost of the unknown rule on the Fashion-MNIST test set, and the share
    of its images that preprocess_image passes through unchanged (empty if the data is absent).
    """
    path = next((p for p in FASHION_MNIST_TEST if p.is_file()), None)
    if path is None:
        return {}
    with gzip.open(path) as f:
        raw = f.read()
    images = np.frombuffer(raw[16:], dtype=np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    labels_path = path.with_name("t10k-labels-idx1-ubyte.gz")
    with gzip.open(labels_path) as f:
        labels = np.frombuffer(f.read()[8:], dtype=np.uint8)
    unchanged = 0
    for image in images:
        result = preprocess_image(Image.fromarray(image))
        unchanged += result.mode == "fashion_mnist" and np.array_equal(result.pixels, image)
    fractions = np.mean(images > 16, axis=(1, 2))
    verdicts, _ = classify(model, images, fractions, min_confidence)
    answered = [i for i, v in enumerate(verdicts) if not v.is_unknown]
    correct = sum(verdicts[i].class_id == int(labels[i]) for i in answered)
    return {
        "images": len(images),
        "passed_through_unchanged": unchanged / len(images),
        "unknown": 1 - len(answered) / len(images),
        "accuracy_answered": correct / max(len(answered), 1),
    }


def draw_sheet(
    path: Path, files: list[Path], naive: list[npt.NDArray[np.uint8]], ours: list[Any]
) -> None:
    """Two photos per class: photo, naive 28x28 input, preprocessed 28x28 input (upscaled)."""
    tile, cols = 96, 4
    picked: list[int] = []
    for name in sorted(PLAUSIBLE):
        picked += [i for i, f in enumerate(files) if f.parent.name == name][:2]
    rows = (len(picked) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * 3 * tile, rows * tile), (90, 90, 90))
    pen = ImageDraw.Draw(sheet)
    for k, i in enumerate(picked):
        x, y = (k % cols) * 3 * tile, (k // cols) * tile
        with Image.open(files[i]) as raw:
            photo = ImageOps.exif_transpose(raw).convert("RGB")
        photo.thumbnail((tile - 4, tile - 4))
        sheet.paste(photo, (x + 2, y + 2))
        for j, pixels in enumerate((naive[i], ours[i].pixels), start=1):
            big = Image.fromarray(pixels).resize((tile - 4, tile - 4), Image.Resampling.NEAREST)
            sheet.paste(big.convert("RGB"), (x + j * tile + 2, y + 2))
        pen.text((x + 4, y + 2), files[i].parent.name, fill=(255, 255, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    # An adaptive palette keeps the PNG small enough for the docs (about 150 KB).
    sheet.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(path, optimize=True)


def main() -> int:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="exported .onnx model")
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="clothing-photos folder")
    parser.add_argument("--split", default="validation", choices=("train", "validation"))
    parser.add_argument("--limit", type=int, default=0, help="photos per class (0: all)")
    parser.add_argument("--min-confidence", type=float, default=ServingSettings().min_confidence)
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    parser.add_argument("--sheet", type=Path, default=None, help="also draw a contact sheet")
    args = parser.parse_args()

    root = args.photos / args.split
    if not root.is_dir():
        parser.error(f"no photos at {root} (see ../shared/README.md)")
    files: list[Path] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name in PLAUSIBLE):
        found = sorted(folder.glob("*.jpg"))
        files += found[: args.limit] if args.limit else found
    labels = [f.parent.name for f in files]
    model = OnnxClassifier(args.model)

    naive, ours, naive_ms, ours_ms, ours_cpu_ms = [], [], [], [], []
    sizes: list[int] = []
    for f in files:
        data = f.read_bytes()
        start = time.perf_counter()
        naive.append(naive_input(data))
        naive_ms.append((time.perf_counter() - start) * 1e3)
        start, cpu = time.perf_counter(), time.thread_time()
        ours.append(preprocess_bytes(data))
        ours_ms.append((time.perf_counter() - start) * 1e3)
        ours_cpu_ms.append((time.thread_time() - cpu) * 1e3)
        with Image.open(f) as header:
            sizes.append(max(header.size))

    naive_verdicts, naive_top1 = classify(model, np.stack(naive), None, args.min_confidence)
    fractions = np.array([r.foreground_fraction for r in ours], dtype=np.float64)
    our_verdicts, our_top1 = classify(
        model, np.stack([r.pixels for r in ours]), fractions, args.min_confidence
    )
    naive_table = shares(labels, naive_verdicts, naive_top1)
    our_table = shares(labels, our_verdicts, our_top1)

    def timing(ms: list[float]) -> dict[str, float]:
        ordered = sorted(ms)
        return {
            "median_ms": statistics.median(ms),
            "p95_ms": ordered[int(0.95 * (len(ordered) - 1))],
            "mean_ms": statistics.fmean(ms),
        }

    print(
        f"{len(files)} photos ({args.split}), model {args.model.name} "
        f"(T={model.temperature}, energy threshold "
        f"{energy_threshold_from_metadata(model.metadata)}), min_confidence {args.min_confidence}"
    )
    print(
        f"{'class':<11} {'n':>3}  {'naive: top1 ok':>14} {'answered ok':>11} {'unknown':>7}"
        f"  {'ours: top1 ok':>13} {'answered ok':>11} {'unknown':>7}  top answers (ours)"
    )
    for name, row in our_table.items():
        base = naive_table[name]
        ok = "-" if not row["plausible"] else None
        print(
            f"{name:<11} {row['n']:>3}  {ok or format(base['top1_plausible'], '.0%'):>14} "
            f"{ok or format(base['answered_plausible'], '.0%'):>11} {base['unknown']:>7.0%}  "
            f"{ok or format(row['top1_plausible'], '.0%'):>13} "
            f"{ok or format(row['answered_plausible'], '.0%'):>11} {row['unknown']:>7.0%}  "
            f"{', '.join(row['top_answers'])}"
        )
    naive_sum, our_sum = summary(naive_table), summary(our_table)
    for key in naive_sum:
        print(f"{key:<28} naive {naive_sum[key]:6.1%}   ours {our_sum[key]:6.1%}")
    our_timing, naive_timing = timing(ours_ms), timing(naive_ms)
    our_cpu = timing(ours_cpu_ms)
    print(
        f"preprocess_bytes per photo (decode included, median longest side "
        f"{statistics.median(sizes):.0f} px): wall median {our_timing['median_ms']:.1f} ms, "
        f"p95 {our_timing['p95_ms']:.1f} ms; CPU median {our_cpu['median_ms']:.1f} ms, p95 "
        f"{our_cpu['p95_ms']:.1f} ms; naive decode+resize wall median "
        f"{naive_timing['median_ms']:.1f} ms (load average {os.getloadavg()[0]:.1f})"
    )
    inverted = sum(r.inverted for r in ours) / len(ours)
    blank = sum(r.foreground_fraction == 0 for r in ours) / len(ours)
    print(f"inverted {inverted:.0%} of photos; no garment found in {blank:.1%}")
    reference = fashion_mnist_reference(model, args.min_confidence)
    if reference:
        print(
            f"Fashion-MNIST test set: {reference['passed_through_unchanged']:.2%} passed through "
            f"unchanged; unknown {reference['unknown']:.1%}, accuracy of the answered "
            f"{reference['accuracy_answered']:.2%}"
        )

    results = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": benchmark_machine("numpy", "pillow", "onnxruntime"),
        "model": str(args.model),
        "temperature": model.temperature,
        "energy_threshold": energy_threshold_from_metadata(model.metadata),
        "min_confidence": args.min_confidence,
        "split": args.split,
        "photos": len(files),
        "fashion_mnist_test": reference,
        "naive": {"per_class": naive_table, "summary": naive_sum, "timing": naive_timing},
        "preprocessed": {
            "per_class": our_table,
            "summary": our_sum,
            "timing": our_timing,
            "cpu_timing": our_cpu,
            "inverted_share": inverted,
            "blank_share": blank,
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.json}")
    if args.sheet is not None:
        draw_sheet(args.sheet, files, naive, ours)
        print(f"wrote {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
