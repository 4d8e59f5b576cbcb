"""The jobs behind ``fmnist explain``: explain image files, evaluate faithfulness.

Both load a registered version (``serving.model_ref`` by default) from the registry, rebuild its
PyTorch form with :func:`~fmnist.explain.model.load_served_model` (checked against its ONNX
file) and use the ``explain`` settings; a pipeline can call them directly.
"""

from __future__ import annotations

import base64
import json
import shlex
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from fmnist import CLASS_NAMES
from fmnist.atomic import atomic_write_bytes, atomic_write_text
from fmnist.explain.core import ExplainError, ExplainOptions, Method, check_method
from fmnist.explain.faithfulness import (
    FaithfulnessRun,
    evaluate_faithfulness,
    seeded_sample,
    training_background,
    write_faithfulness,
)
from fmnist.explain.heatmap import heatmap_png
from fmnist.explain.methods import explain
from fmnist.explain.model import ServedModel, load_served_model
from fmnist.platform.services import Services


@dataclass(frozen=True)
class RegisteredModel:
    """A registered version loaded for explanations."""

    name: str
    version: int
    model: ServedModel

    def describe(self) -> dict[str, Any]:
        """Name, version, training config and snapshot (for reports)."""
        return {
            "name": self.name,
            "version": self.version,
            "snapshot_id": self.model.info.get("snapshot_id"),
            "config": self.model.info.get("config"),
            "temperature": self.model.temperature,
        }


def load_registered(services: Services, ref: str | None = None) -> RegisteredModel:
    """Version or alias ``ref`` (default ``serving.model_ref``; ``NAME@REF`` for another
    registered model) as a :class:`ServedModel` (downloaded to a temporary folder)."""
    ref = ref or services.settings.serving.model_ref
    name: str | None = None
    if "@" in ref:
        name, _, ref = ref.partition("@")
    registry = services.registry(name)
    info = registry.get(ref)
    with tempfile.TemporaryDirectory(prefix="fmnist-explain-model-") as tmp:
        folder = registry.download(str(info.version), Path(tmp))
        model = load_served_model(folder)
    return RegisteredModel(info.name, info.version, model)


def background_for(services: Services, model: ServedModel) -> npt.NDArray[np.uint8]:
    """SHAP's background: seeded training images of the snapshot the model was trained on."""
    settings = services.settings
    return training_background(
        services.storage,
        model.info.get("snapshot_id"),
        settings.explain.shap_background_size,
        seed=settings.explain.seed,
    )


@dataclass(frozen=True)
class ExplainedFile:
    """One explained image file and what was written for it."""

    source: Path
    class_id: int
    heatmap: Path


def explain_files(
    services: Services,
    paths: Sequence[Path],
    *,
    ref: str | None = None,
    method: str = "integrated_gradients",
    out: Path = Path("explanations"),
    class_id: int | None = None,
    on_image: Callable[[Path], None] | None = None,
) -> tuple[list[ExplainedFile], Path]:
    """Explain image files (preprocessed as the API does) and write a heatmap PNG per image
    (``OUT/<stem>.<method>.png``) and ``OUT/explanations-<method>.json``."""
    from fmnist.imaging.model_input import png_bytes
    from fmnist.imaging.preprocess import preprocess_bytes

    settings = services.settings
    chosen: Method = check_method(method)
    if not paths:
        raise ExplainError("no image files given")
    pixels = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ExplainError(f"{path}: cannot read ({exc.strerror})") from exc
        pixels.append(preprocess_bytes(data, max_pixels=settings.serving.max_image_pixels).pixels)
    images = np.stack(pixels)
    torch.set_num_threads(settings.explain.torch_threads)
    loaded = load_registered(services, ref)
    background = background_for(services, loaded.model) if chosen == "shap" else None
    options = ExplainOptions.from_settings(settings.explain)
    targets = None if class_id is None else np.full(len(images), class_id, np.int64)
    written: list[ExplainedFile] = []
    records: list[dict[str, Any]] = []
    for i, path in enumerate(paths):
        result = explain(
            loaded.model,
            images[i : i + 1],
            chosen,
            targets=None if targets is None else targets[i : i + 1],
            background=background,
            options=options,
        )
        heatmap = out / f"{path.stem}.{chosen}.png"
        atomic_write_bytes(heatmap, heatmap_png(images[i], result.attributions[0]))
        explained = int(result.class_ids[0])
        written.append(ExplainedFile(path, explained, heatmap))
        records.append(
            {
                "source": str(path),
                "class_id": explained,
                "label": CLASS_NAMES[explained],
                "heatmap": heatmap.name,
                "seconds": round(result.seconds, 4),
                "details": result.details,
                "model_input_png": base64.b64encode(png_bytes(images[i])).decode("ascii"),
                "attributions": result.attributions[0].round(7).tolist(),
            }
        )
        if on_image is not None:
            on_image(path)
    summary = out / f"explanations-{chosen}.json"
    payload = {
        "model_name": loaded.name,
        "model_version": loaded.version,
        "method": chosen,
        "params": options.method_params(chosen),
        "explanations": records,
    }
    atomic_write_text(summary, json.dumps(payload, indent=1))
    return written, summary


def evaluate_model(
    services: Services,
    *,
    ref: str | None = None,
    methods: Sequence[str] = ("integrated_gradients", "shap", "lime", "occlusion"),
    samples: int | None = None,
    steps: int | None = None,
    randomisation_images: int = 20,
    randomisation_checkpoints: int = 4,
    out: Path | None = None,
    image_dir: Path | None = None,
    command: str = "",
    on_step: Callable[[str], None] | None = None,
) -> tuple[FaithfulnessRun, dict[str, Path]]:
    """Faithfulness of ``methods`` for a registered version on a seeded sample of the test
    split of its training snapshot; writes the report (default ``<home>/explain/<name>-v<N>``)."""
    from fmnist.data.snapshot import load_snapshot

    settings = services.settings
    chosen = [check_method(m) for m in methods]
    explain_settings = settings.explain
    torch.set_num_threads(explain_settings.torch_threads)
    loaded = load_registered(services, ref)
    snapshot = load_snapshot(services.storage, loaded.model.info.get("snapshot_id"))
    test_images, _ = snapshot.split("test")
    seed = explain_settings.seed
    rows = seeded_sample(len(test_images), samples or explain_settings.faithfulness_samples, seed)
    background = background_for(services, loaded.model) if "shap" in chosen else None
    run = evaluate_faithfulness(
        loaded.model,
        np.ascontiguousarray(test_images[rows]),
        chosen,
        options=ExplainOptions.from_settings(explain_settings),
        background=background,
        steps=steps or explain_settings.faithfulness_steps,
        seed=seed,
        randomisation_images=randomisation_images,
        randomisation_checkpoints=randomisation_checkpoints,
        indices=rows.tolist(),
        snapshot_id=snapshot.snapshot_id,
        model_info=loaded.describe(),
        command=command or shlex.join(["fmnist", "explain", "evaluate"]),
        on_step=on_step,
    )
    from fmnist.runtime_info import benchmark_machine

    run.report.machine = {k: str(v) for k, v in benchmark_machine("torch", "captum").items()}
    target = out or settings.home / "explain" / f"{loaded.name}-v{loaded.version}"
    files = write_faithfulness(run, target, image_dir=image_dir)
    return run, files
