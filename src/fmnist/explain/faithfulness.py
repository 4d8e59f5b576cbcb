"""Are the explanations any good? Deletion/insertion curves and the randomisation test.

* **Deletion** (lower area is better): pixels are set to black (the Fashion-MNIST background)
  from the most to the least attributed, ``steps`` equal shares at a time, and the served
  (temperature-scaled) probability of the explained class is recorded after each share; a
  faithful map makes it fall fast. **Insertion** (higher is better) starts from a black image
  and restores pixels in the same order. Areas under the curves (trapezoid over the share of
  pixels, 0-1) are compared with a baseline that ranks pixels at random (seeded). Ties in a map
  (LIME's superpixels, black pixels with no attribution) are broken at random, seeded.
* **Model-parameter randomisation** (Adebayo et al., 2018), **cascading**: the layers that hold
  parameters are re-initialised one after another from the output towards the input, and after
  each checkpoint the attributions for the same images and classes are compared with the
  trained model's by Spearman rank correlation: of absolute values on the garment's pixels
  (non-black input; the headline figure), of absolute values on all pixels, and signed. Black
  background pixels get no attribution from integrated gradients or occlusion whatever the
  weights (their input equals the baseline), so over all pixels those ties alone make any two
  maps correlate. A method whose maps barely change when the weights are destroyed explains
  the image, not the model.

:func:`evaluate_faithfulness` runs both on a seeded sample of images for several methods;
:func:`write_faithfulness` writes the JSON report, a Markdown table and PNG plots.
"""

from __future__ import annotations

import copy
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel
from torch import nn

from fmnist import CLASS_NAMES, IMAGE_SIZE
from fmnist.atomic import atomic_write_bytes, atomic_write_text
from fmnist.explain.core import ExplainOptions, Explanation, Method, check_method
from fmnist.explain.heatmap import heatmap_rgb
from fmnist.explain.methods import explain
from fmnist.platform.storage import Storage

PIXELS = IMAGE_SIZE * IMAGE_SIZE
FloatArray = npt.NDArray[np.float32]
UInt8Array = npt.NDArray[np.uint8]
RANDOM = "random"
"""The name of the random-attribution baseline in reports."""


# --------------------------------------------------------------------------------- data
def training_background(
    lake: Storage, snapshot_id: str | None, size: int, *, seed: int = 0
) -> UInt8Array:
    """``size`` training images of a snapshot in ``lake`` (the newest when ``snapshot_id`` is
    None), drawn without replacement with ``seed``: SHAP's background distribution."""
    from fmnist.data.snapshot import load_snapshot

    images, _ = load_snapshot(lake, snapshot_id).split("train")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(images), size=min(size, len(images)), replace=False))
    return np.ascontiguousarray(images[rows])


def seeded_sample(n_total: int, n: int, seed: int) -> npt.NDArray[np.int64]:
    """``n`` sorted row indices out of ``n_total``, drawn without replacement with ``seed``."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=min(n, n_total), replace=False)).astype(np.int64)


# --------------------------------------------------------------------------------- curves
def pixel_order(attributions: npt.NDArray[np.floating], seed: int = 0) -> npt.NDArray[np.int64]:
    """Per image, the flat pixel indices from the most to the least attributed (signed values;
    ties broken at random with ``seed``). Shape ``(N, 784)``."""
    a = np.asarray(attributions, dtype=np.float64).reshape(len(attributions), -1)
    tie_break = np.random.default_rng(seed).random(a.shape)
    return np.lexsort((tie_break, -a), axis=1).astype(np.int64)


def _probabilities(
    model: nn.Module, x: npt.NDArray[np.float32], class_ids: npt.NDArray[np.int64], batch: int
) -> FloatArray:
    """The served probability of ``class_ids`` for float ``(M, 28, 28)`` images in [0, 1]."""
    temperature = float(getattr(model, "temperature", 1.0))
    out = np.empty(len(x), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(x), batch):
            chunk = torch.from_numpy(x[start : start + batch])[:, None]
            logits = model(chunk)
            logits = logits[0] if isinstance(logits, tuple) else logits
            p = torch.softmax(logits / temperature, dim=-1)
            rows = torch.from_numpy(class_ids[start : start + batch])
            out[start : start + batch] = p.gather(1, rows[:, None])[:, 0].numpy()
    return out


@dataclass(frozen=True)
class Curves:
    """Deletion and insertion curves of ``N`` images at ``K + 1`` shares of the pixels."""

    fractions: FloatArray
    """``(K + 1,)`` share of pixels removed (deletion) or restored (insertion), 0 to 1."""
    deletion: FloatArray
    """``(N, K + 1)`` probability of the explained class."""
    insertion: FloatArray

    @property
    def deletion_auc(self) -> FloatArray:
        """Area under each image's deletion curve (lower: more faithful)."""
        return area(self.deletion, self.fractions)

    @property
    def insertion_auc(self) -> FloatArray:
        """Area under each image's insertion curve (higher: more faithful)."""
        return area(self.insertion, self.fractions)


def area(curves: npt.NDArray[np.floating], fractions: npt.NDArray[np.floating]) -> FloatArray:
    """Trapezoidal area under each row of ``curves`` over ``fractions``."""
    y = np.asarray(curves, dtype=np.float64)
    x = np.asarray(fractions, dtype=np.float64)
    widths = np.diff(x)
    result: FloatArray = ((y[:, 1:] + y[:, :-1]) * 0.5 * widths).sum(axis=1).astype(np.float32)
    return result


def deletion_insertion(
    model: nn.Module,
    images: UInt8Array,
    class_ids: npt.NDArray[np.integer],
    attributions: npt.NDArray[np.floating],
    *,
    steps: int = 28,
    seed: int = 0,
    batch: int = 512,
) -> Curves:
    """Deletion and insertion curves of ``images`` ranked by ``attributions`` (see module)."""
    n = len(images)
    if attributions.shape != (n, IMAGE_SIZE, IMAGE_SIZE) or len(class_ids) != n:
        raise ValueError(
            f"{n} images need ({n}, 28, 28) attributions and {n} class ids, got "
            f"{attributions.shape} and {len(class_ids)}"
        )
    order = pixel_order(attributions, seed)
    counts = np.rint(np.linspace(0, PIXELS, steps + 1)).astype(np.int64)
    x = images.reshape(n, PIXELS).astype(np.float32) / np.float32(255.0)
    # rank[i, p]: position of pixel p in image i's order
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(PIXELS)[None].repeat(n, 0), axis=1)
    removed = rank[:, None, :] < counts[None, :, None]  # (N, K+1, 784)
    deleted = np.where(removed, np.float32(0.0), x[:, None, :])
    inserted = np.where(removed, x[:, None, :], np.float32(0.0))
    ids = np.repeat(np.asarray(class_ids, dtype=np.int64), steps + 1)
    shape = (n * (steps + 1), IMAGE_SIZE, IMAGE_SIZE)
    deletion = _probabilities(model, deleted.reshape(shape), ids, batch).reshape(n, steps + 1)
    insertion = _probabilities(model, inserted.reshape(shape), ids, batch).reshape(n, steps + 1)
    return Curves((counts / PIXELS).astype(np.float32), deletion, insertion)


# --------------------------------------------------------------------------------- randomisation
def spearman(
    a: npt.NDArray[np.floating],
    b: npt.NDArray[np.floating],
    mask: npt.NDArray[np.bool_] | None = None,
) -> FloatArray:
    """Spearman rank correlation of each pair of maps ``a[i]``, ``b[i]`` (NaN: a constant map),
    over the pixels where ``mask[i]`` is true (default: every pixel)."""
    from scipy.stats import rankdata

    flat_a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    flat_b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    if mask is None:
        return _rank_correlation(rankdata(flat_a, axis=1), rankdata(flat_b, axis=1))
    keep = np.asarray(mask, dtype=bool).reshape(len(a), -1)
    out = np.full(len(a), np.nan, dtype=np.float32)
    for i in range(len(a)):
        if keep[i].sum() > 2:
            ra = rankdata(flat_a[i, keep[i]])[None]
            rb = rankdata(flat_b[i, keep[i]])[None]
            out[i] = _rank_correlation(ra, rb)[0]
    return out


def _rank_correlation(ra: npt.NDArray[np.float64], rb: npt.NDArray[np.float64]) -> FloatArray:
    """Pearson correlation of each row pair of ranks."""
    ra = ra - ra.mean(axis=1, keepdims=True)
    rb = rb - rb.mean(axis=1, keepdims=True)
    denominator = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = ((ra * rb).sum(axis=1) / denominator).astype(np.float32)
    return result


def parameter_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that hold parameters of their own, from the output towards the input."""
    layers = [
        (name, module)
        for name, module in model.named_modules()
        if any(True for _ in module.parameters(recurse=False))
    ]
    return layers[::-1]


def _reinitialise(module: nn.Module) -> None:
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        reset()
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            # reset_parameters makes batch norm the identity: draw its affine part instead.
            nn.init.normal_(module.weight, 1.0, 0.5)
            nn.init.normal_(module.bias, 0.0, 0.5)
        return
    for parameter in module.parameters(recurse=False):
        nn.init.normal_(parameter, 0.0, 0.02)


def cascading_randomisation(
    model: nn.Module, checkpoints: int = 4, *, seed: int = 0
) -> list[tuple[str, int, nn.Module]]:
    """Copies of ``model`` with more and more layers re-initialised from the top (cascading).

    Returns ``(last layer re-initialised, layers re-initialised, model)`` for up to
    ``checkpoints`` evenly spaced depths from the output layer alone to every layer; the last
    one always has every layer re-initialised.
    """
    layers = parameter_layers(model)
    if not layers:
        raise ValueError("the model has no parameters to randomise")
    if checkpoints < 1:
        raise ValueError(f"checkpoints must be at least 1, got {checkpoints}")
    spaced = np.linspace(1, len(layers), checkpoints) if checkpoints > 1 else [len(layers)]
    depths = sorted({max(1, round(d)) for d in spaced})
    generator = torch.random.fork_rng()
    out = []
    with generator, torch.no_grad():
        torch.manual_seed(seed)
        randomised = copy.deepcopy(model)
        modules = dict(randomised.named_modules())
        done = 0
        for depth in depths:
            for name, _ in layers[done:depth]:
                target = modules.get(name)
                _reinitialise(target if target is not None else randomised)
            done = depth
            label = layers[depth - 1][0] or type(model).__name__
            out.append((label, depth, copy.deepcopy(randomised).eval()))
    return out


# --------------------------------------------------------------------------------- report
class RandomisationStep(BaseModel):
    """Attributions after re-initialising the top ``layers`` parameterised layers: mean
    Spearman correlation with the trained model's maps, of absolute values on the garment's
    pixels (non-black input), of absolute values on every pixel, and of signed values."""

    layer: str
    layers: int
    spearman_abs_garment: float
    spearman_abs: float
    spearman_signed: float


class MethodResult(BaseModel):
    """Faithfulness of one method (or of the random baseline)."""

    method: str
    deletion_auc: float
    deletion_auc_sem: float
    insertion_auc: float
    insertion_auc_sem: float
    seconds_per_image: float | None
    deletion_curve: list[float]
    insertion_curve: list[float]
    randomisation: list[RandomisationStep] = []
    params: dict[str, Any] = {}

    @property
    def spearman_randomised(self) -> float | None:
        """Spearman (absolute values, garment pixels) with every layer re-initialised."""
        return self.randomisation[-1].spearman_abs_garment if self.randomisation else None


class FaithfulnessReport(BaseModel):
    """What ``fmnist explain evaluate`` measured."""

    model: dict[str, Any]
    snapshot_id: str | None
    split: str
    samples: int
    indices: list[int]
    seed: int
    steps: int
    fractions: list[float]
    randomisation: str
    randomisation_images: int
    layers: int
    methods: list[MethodResult]
    random: MethodResult
    command: str
    created_at: str
    machine: dict[str, str] = {}


def _sem(values: FloatArray) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def _method_result(
    method: str, curves: Curves, seconds: float | None, params: dict[str, Any]
) -> MethodResult:
    d, i = curves.deletion_auc, curves.insertion_auc
    return MethodResult(
        method=method,
        deletion_auc=float(d.mean()),
        deletion_auc_sem=_sem(d),
        insertion_auc=float(i.mean()),
        insertion_auc_sem=_sem(i),
        seconds_per_image=seconds,
        deletion_curve=[round(float(v), 5) for v in curves.deletion.mean(axis=0)],
        insertion_curve=[round(float(v), 5) for v in curves.insertion.mean(axis=0)],
        params=params,
    )


def _explain_in_chunks(
    model: nn.Module,
    images: UInt8Array,
    method: Method,
    targets: npt.NDArray[np.int64],
    background: UInt8Array | None,
    options: ExplainOptions,
    chunk: int = 32,
) -> Explanation:
    parts = [
        explain(
            model,
            images[s : s + chunk],
            method,
            targets=targets[s : s + chunk],
            background=background,
            options=options,
        )
        for s in range(0, len(images), chunk)
    ]
    return Explanation(
        method=method,
        class_ids=np.concatenate([p.class_ids for p in parts]),
        attributions=np.concatenate([p.attributions for p in parts]),
        seconds=sum(p.seconds for p in parts),
        params=parts[0].params,
        details=parts[-1].details,
    )


def count_steps(methods: Sequence[str], randomisation_checkpoints: int) -> int:
    """Units of work :func:`evaluate_faithfulness` reports through ``on_step``."""
    return 1 + len(methods) * (2 + randomisation_checkpoints)


@dataclass
class FaithfulnessRun:
    """A report and what it was computed from (for plots)."""

    report: FaithfulnessReport
    images: UInt8Array
    class_ids: npt.NDArray[np.int64]
    explanations: dict[str, Explanation] = field(default_factory=dict)


def evaluate_faithfulness(
    model: nn.Module,
    images: UInt8Array,
    methods: Sequence[str],
    *,
    options: ExplainOptions | None = None,
    background: UInt8Array | None = None,
    steps: int = 28,
    seed: int = 0,
    randomisation_images: int = 20,
    randomisation_checkpoints: int = 4,
    indices: Sequence[int] | None = None,
    snapshot_id: str | None = None,
    split: str = "test",
    model_info: dict[str, Any] | None = None,
    command: str = "",
    on_step: Callable[[str], None] | None = None,
) -> FaithfulnessRun:
    """Deletion/insertion AUC of each method against random attributions, and the cascading
    randomisation test on the first ``randomisation_images`` images, for the predicted class.
    """
    chosen = [check_method(m) for m in methods]
    options = options or ExplainOptions(seed=seed)
    step = on_step or (lambda _description: None)
    from fmnist.explain.model import predicted_classes

    class_ids = predicted_classes(model, images)
    rng = np.random.default_rng(seed)
    random_maps = rng.random((len(images), IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    random_curves = deletion_insertion(
        model, images, class_ids, random_maps, steps=steps, seed=seed
    )
    random_result = _method_result(RANDOM, random_curves, None, {"seed": seed})
    step("random baseline")
    n_random = min(randomisation_images, len(images))
    randomised = cascading_randomisation(model, randomisation_checkpoints, seed=seed)
    run = FaithfulnessRun(
        report=FaithfulnessReport(
            model=model_info or {},
            snapshot_id=snapshot_id,
            split=split,
            samples=len(images),
            indices=list(indices) if indices is not None else list(range(len(images))),
            seed=seed,
            steps=steps,
            fractions=[float(f) for f in random_curves.fractions],
            randomisation="cascading",
            randomisation_images=n_random,
            layers=len(parameter_layers(model)),
            methods=[],
            random=random_result,
            command=command,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ),
        images=images,
        class_ids=class_ids,
    )
    for method in chosen:
        started = time.perf_counter()
        result = _explain_in_chunks(model, images, method, class_ids, background, options)
        seconds = (time.perf_counter() - started) / len(images)
        step(f"{method}: explained")
        curves = deletion_insertion(
            model, images, class_ids, result.attributions, steps=steps, seed=seed
        )
        step(f"{method}: curves")
        method_result = _method_result(method, curves, seconds, result.params)
        reference = result.attributions[:n_random]
        garment = images[:n_random] > 0
        for layer, depth, broken in randomised:
            other = _explain_in_chunks(
                broken,
                images[:n_random],
                method,
                class_ids[:n_random],
                background,
                options,
            )
            method_result.randomisation.append(
                RandomisationStep(
                    layer=layer,
                    layers=depth,
                    spearman_abs_garment=float(
                        np.nanmean(spearman(np.abs(reference), np.abs(other.attributions), garment))
                    ),
                    spearman_abs=float(
                        np.nanmean(spearman(np.abs(reference), np.abs(other.attributions)))
                    ),
                    spearman_signed=float(np.nanmean(spearman(reference, other.attributions))),
                )
            )
            step(f"{method}: randomised {depth} layers")
        for _ in range(randomisation_checkpoints - len(randomised)):
            step(f"{method}: randomisation")
        run.report.methods.append(method_result)
        run.explanations[method] = result
    return run


# --------------------------------------------------------------------------------- outputs
def markdown_table(report: FaithfulnessReport) -> str:
    """The faithfulness table (Markdown)."""
    lines = [
        "| method | deletion AUC (lower is better) | insertion AUC (higher is better) | "
        "Spearman with every layer randomised: abs on garment / abs on all pixels / signed "
        "(lower is better) | seconds per image |",
        "|---|---|---|---|---|",
    ]
    for r in [*report.methods, report.random]:
        last = r.randomisation[-1] if r.randomisation else None
        rand = (
            f"{last.spearman_abs_garment:.3f} / {last.spearman_abs:.3f} / "
            f"{last.spearman_signed:.3f}"
            if last is not None
            else "n/a"
        )
        secs = f"{r.seconds_per_image:.4f}" if r.seconds_per_image is not None else "n/a"
        lines.append(
            f"| {r.method} | {r.deletion_auc:.4f} ± {r.deletion_auc_sem:.4f} | "
            f"{r.insertion_auc:.4f} ± {r.insertion_auc_sem:.4f} | {rand} | {secs} |"
        )
    return "\n".join(lines) + "\n"


def randomisation_table(report: FaithfulnessReport) -> str:
    """Mean Spearman (absolute values, garment pixels) per cascade checkpoint and method."""
    if not report.methods or not report.methods[0].randomisation:
        return ""
    steps = report.methods[0].randomisation
    header = "| method | " + " | ".join(f"top {s.layers} ({s.layer})" for s in steps) + " |"
    lines = [header, "|---|" + "---|" * len(steps)]
    for r in report.methods:
        lines.append(
            f"| {r.method} | "
            + " | ".join(f"{s.spearman_abs_garment:.3f}" for s in r.randomisation)
            + " |"
        )
    return "\n".join(lines) + "\n"


def report_markdown(report: FaithfulnessReport, images: dict[str, str] | None = None) -> str:
    """The whole report as Markdown (tables, then the figures named in ``images``)."""
    model = report.model
    name = model.get("name", "model")
    version = model.get("version", "")
    lines = [
        f"# Faithfulness of the explanations: {name} {version}".rstrip(),
        "",
        f"Command: `{report.command}`" if report.command else "",
        "",
        f"{report.samples} {report.split} images of snapshot {report.snapshot_id} (seeded sample, "
        f"seed {report.seed}), each explained for its predicted class. Deletion/insertion: "
        f"{report.steps} steps, pixels set to black / restored from black; the score is the "
        "served probability of the explained class. Randomisation: cascading from the output "
        f"layer ({report.layers} parameterised layers), on the first "
        f"{report.randomisation_images} images. Measured {report.created_at}.",
        "",
        markdown_table(report),
        "Spearman rank correlation of absolute attributions on the garment's pixels (non-black "
        "input) with the trained model's maps, as layers are re-initialised from the top:",
        "",
        randomisation_table(report),
    ]
    for title, file in (images or {}).items():
        lines += [f"![{title}]({file})", ""]
    return "\n".join(lines)


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def curves_png(report: FaithfulnessReport) -> bytes:
    """Mean deletion and insertion curves of every method and the random baseline."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), layout="constrained")
    x = np.asarray(report.fractions)
    for col, (kind, better) in enumerate((("deletion", "lower"), ("insertion", "higher"))):
        ax = fig.add_subplot(1, 2, col + 1)
        for r in [*report.methods, report.random]:
            y = r.deletion_curve if kind == "deletion" else r.insertion_curve
            auc = r.deletion_auc if kind == "deletion" else r.insertion_auc
            style = "--" if r.method == RANDOM else "-"
            ax.plot(x, y, style, label=f"{r.method} ({auc:.3f})")
        ax.set_xlabel(f"share of pixels {'removed' if kind == 'deletion' else 'restored'}")
        ax.set_ylabel("probability of the explained class")
        ax.set_title(f"{kind.capitalize()} (AUC, {better} is better)")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    return _png(fig)


def randomisation_png(report: FaithfulnessReport) -> bytes:
    """Spearman correlation with the trained model's maps along the cascade."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.4), layout="constrained")
    ax = fig.add_subplot()
    for r in report.methods:
        ax.plot(
            [s.layers for s in r.randomisation],
            [s.spearman_abs_garment for s in r.randomisation],
            "o-",
            label=r.method,
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel(f"layers re-initialised from the output (of {report.layers})")
    ax.set_ylabel("Spearman, |attributions| on the garment")
    ax.set_title("Cascading model-parameter randomisation")
    ax.set_ylim(-0.2, 1.02)
    ax.legend(fontsize=7)
    return _png(fig)


def examples_png(run: FaithfulnessRun, rows: int = 6) -> bytes:
    """A grid: the first ``rows`` images and each method's heatmap of them."""
    from matplotlib.figure import Figure

    methods = list(run.explanations)
    n = min(rows, len(run.images))
    fig = Figure(figsize=(1.3 * (1 + len(methods)), 1.35 * n + 0.3), layout="constrained")
    for i in range(n):
        image = run.images[i]
        ax = fig.add_subplot(n, 1 + len(methods), i * (1 + len(methods)) + 1)
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.set_axis_off()
        ax.set_title(CLASS_NAMES[int(run.class_ids[i])], fontsize=7)
        for j, method in enumerate(methods):
            ax = fig.add_subplot(n, 1 + len(methods), i * (1 + len(methods)) + j + 2)
            ax.imshow(heatmap_rgb(image, run.explanations[method].attributions[i], scale=4))
            ax.set_axis_off()
            if i == 0:
                ax.set_title(method.replace("_", " "), fontsize=7)
    return _png(fig)


def write_faithfulness(
    run: FaithfulnessRun, out: Path, *, image_dir: Path | None = None
) -> dict[str, Path]:
    """Write ``faithfulness.json``, ``faithfulness.md`` and the PNG plots (atomically).

    Plots go to ``image_dir`` (default ``out``); the Markdown links them relative to ``out``.
    """
    import os

    image_dir = image_dir or out
    files = {
        "curves": image_dir / "deletion_insertion.png",
        "randomisation": image_dir / "randomisation.png",
        "examples": image_dir / "examples.png",
    }
    atomic_write_bytes(files["curves"], curves_png(run.report))
    atomic_write_bytes(files["randomisation"], randomisation_png(run.report))
    atomic_write_bytes(files["examples"], examples_png(run))
    links = {
        "Deletion and insertion curves": os.path.relpath(files["curves"], out),
        "Cascading randomisation": os.path.relpath(files["randomisation"], out),
        "Example heatmaps": os.path.relpath(files["examples"], out),
    }
    files["json"] = out / "faithfulness.json"
    files["markdown"] = out / "faithfulness.md"
    atomic_write_text(files["json"], run.report.model_dump_json(indent=2))
    atomic_write_text(files["markdown"], report_markdown(run.report, links))
    return files
