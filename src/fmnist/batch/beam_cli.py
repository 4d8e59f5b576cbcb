"""``fmnist predict batch --engine beam``: resolve the model and run the Beam job."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fmnist.cli_support import AppContext, console, fail

if TYPE_CHECKING:
    from fmnist.batch.inputs import BatchInput


def run_beam_command(
    app_ctx: AppContext,
    open_source: Callable[[], BatchInput],
    output: Path,
    *,
    model: str | None,
    onnx: Path | None,
    shard_size: int | None,
    batch_size: int,
    runner: str,
    extra: Sequence[str],
    overwrite: bool,
) -> None:
    """Run the Beam job and print its summary (``--onnx`` or a registered version)."""
    from fmnist.batch.beam_job import pipeline_options, run_beam_batch
    from fmnist.batch.model import load_onnx_model

    settings = app_ctx.settings
    if output.exists() and not overwrite:
        fail(f"{output} exists: pass --overwrite to replace it", 2)
    with open_source() as source:  # fail early on a bad input, and count its rows
        num_rows, kind = source.num_rows, source.kind
    options = pipeline_options(runner, settings.gcp, extra)
    with tempfile.TemporaryDirectory(prefix="fmnist-beam-model-") as tmp:
        if onnx is not None:
            path, name, version = onnx, onnx.name, "file"
        else:
            registry = app_ctx.services.registry()
            info = registry.get(model or settings.serving.model_ref)
            path = registry.download(str(info.version), Path(tmp)) / "model.onnx"
            name, version = info.name, str(info.version)
        loaded = load_onnx_model(path, name=name, version=version, threads=1, batch_size=1)
        min_confidence = float(
            loaded.classifier.metadata.get(
                "abstention.min_confidence", settings.serving.min_confidence
            )
        )
        result = run_beam_batch(
            open_source,
            num_rows,
            path,
            output,
            name=name,
            version=version,
            min_confidence=min_confidence,
            shard_size=shard_size
            or (settings.batch.image_shard_size if kind == "folder" else 8192),
            batch_size=batch_size,
            options=options,
        )
    console.print(
        f"{result.rows:,} rows ({result.unknown:,} unknown, {result.errors:,} unreadable) by "
        f"{name} v{version} on Beam {runner} in {result.seconds:.1f} s "
        f"({result.rows / max(result.seconds, 1e-9):,.0f} rows/s) -> {output}",
        markup=False,
        highlight=False,
    )
