"""``fmnist predict``: offline predictions with the registered model (ONNX Runtime, no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from fmnist.cli_support import AppContext, console, err_console, fail

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fmnist.batch.inputs import InputKind
    from fmnist.batch.runner import BatchResult
    from fmnist.imaging.preprocess import Segmentation

predict_app = typer.Typer(help="Offline predictions with a registered model.", no_args_is_help=True)

INTERRUPTED_EXIT_CODE = 130


class _RateColumn(ProgressColumn):
    """Images per second over the last few seconds."""

    def render(self, task: Task) -> Text:
        """The task's current speed."""
        speed = task.speed
        return Text("-- img/s" if speed is None else f"{speed:,.0f} img/s", style="cyan")


class _RichProgress:
    """A Rich progress bar (on stderr) fed by the batch job."""

    def __init__(self, description: str) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err_console,
            speed_estimate_period=10.0,
        )
        self.task = self.progress.add_task(description, total=None, start=False)

    def start(self, total_rows: int, done_rows: int) -> None:
        """Set the total and the rows already done by an earlier run."""
        self.progress.update(self.task, total=total_rows, completed=done_rows)
        self.progress.start_task(self.task)

    def advance(self, rows: int) -> None:
        """Count ``rows`` more predicted rows."""
        self.progress.advance(self.task, rows)


def _preprocess(
    data: bytes, *, max_pixels: int, segmentation: Segmentation = "grabcut"
) -> tuple[npt.NDArray[np.uint8], float]:
    """Photo bytes to the 28x28 model input and its foreground share (the online API's steps)."""
    from fmnist.imaging.preprocess import preprocess_bytes

    result = preprocess_bytes(data, max_pixels=max_pixels, segmentation=segmentation)
    return result.pixels, result.foreground_fraction


def _summary(result: BatchResult, model_name: str, model_version: str) -> str:
    resumed = (
        f", {result.skipped_shards} of {result.total_shards} shards from an earlier run"
        if result.skipped_shards
        else ""
    )
    return (
        f"wrote {result.output}: {result.rows:,} rows, {result.unknown:,} unknown, "
        f"{result.errors:,} errors; {result.seconds:.2f} s, {result.images_per_s:,.0f} images/s "
        f"(model {model_name} version {model_version}{resumed})"
    )


@predict_app.command("batch")
def batch_command(
    ctx: typer.Context,
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="Folder of images (recursive), IDX file (.gz or plain), .npy, .npz or .parquet.",
        ),
    ],
    output: Annotated[Path, typer.Argument(metavar="OUTPUT", help="Parquet file to write.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Registered version or alias (default: serving.model_ref)."
        ),
    ] = None,
    onnx: Annotated[
        Path | None, typer.Option("--onnx", help="Use this ONNX file instead of the registry.")
    ] = None,
    shard_size: Annotated[
        int | None,
        typer.Option(
            "--shard-size",
            min=1,
            help="Rows per resumable shard (default: batch.array_shard_size or image_shard_size).",
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Images per model call.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="ONNX Runtime intra-op threads.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Threads decoding photos.")
    ] = None,
    input_format: Annotated[
        str | None,
        typer.Option("--format", help="folder|idx|npy|npz|parquet (default: detected)."),
    ] = None,
    key: Annotated[str | None, typer.Option("--key", help="NPZ array (default: first).")] = None,
    column: Annotated[
        str | None, typer.Option("--column", help="Parquet image column (default: detected).")
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option("--id-column", help="Parquet column used as input_ref (default: row)."),
    ] = None,
    fail_on_error: Annotated[
        bool,
        typer.Option("--fail-on-error", help="Stop at the first unreadable image (exit 2)."),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace OUTPUT or another job's OUTPUT.parts."),
    ] = False,
    keep_parts: Annotated[
        bool, typer.Option("--keep-parts", help="Keep OUTPUT.parts after combining.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    engine: Annotated[
        str, typer.Option("--engine", help="default (resumable shards) or beam (Apache Beam).")
    ] = "default",
    runner: Annotated[
        str, typer.Option("--runner", help="Beam runner: DirectRunner or DataflowRunner.")
    ] = "DirectRunner",
    beam_option: Annotated[
        list[str] | None,
        typer.Option("--beam-option", help="More Beam pipeline options, e.g. --num_workers=4."),
    ] = None,
) -> None:
    """Predict every image of INPUT into the Parquet file OUTPUT (resumable, sharded).

    Rerunning an interrupted job continues from its finished shards (OUTPUT.parts). With
    ``--engine beam`` the same job runs as an Apache Beam pipeline (same reader, model,
    decision and output schema; rows in Beam's order).
    """
    from functools import partial

    from fmnist.batch.inputs import INPUT_KINDS
    from fmnist.batch.model import load_onnx_model, load_registered_model
    from fmnist.batch.readers import open_input
    from fmnist.batch.runner import run_batch
    from fmnist.batch.writer import parts_dir, parts_status

    app_ctx: AppContext = ctx.obj
    settings = app_ctx.settings
    if model is not None and onnx is not None:
        fail("--model and --onnx are exclusive: pick the registry or a file", 2)
    kind: InputKind | None = None
    if input_format is not None:
        if input_format not in INPUT_KINDS:
            fail(f"--format must be one of {', '.join(INPUT_KINDS)}, got {input_format!r}", 2)
        kind = input_format
    batch = settings.batch
    threads = threads or batch.intra_op_threads
    batch_size = batch_size or batch.batch_size
    if engine not in ("default", "beam"):
        fail(f"--engine must be default or beam, got {engine!r}", 2)
    if engine == "beam":
        from fmnist.batch.beam_cli import run_beam_command

        run_beam_command(
            app_ctx,
            partial(
                open_input,
                input_path,
                input_format=kind,
                key=key,
                column=column,
                id_column=id_column,
                preprocess=partial(
                    _preprocess,
                    max_pixels=settings.serving.max_image_pixels,
                    segmentation=settings.serving.segmentation,
                ),
                decode_workers=1,
            ),
            output,
            model=model,
            onnx=onnx,
            shard_size=shard_size,
            batch_size=batch_size,
            runner=runner,
            extra=beam_option or [],
            overwrite=overwrite,
        )
        return

    with open_input(
        input_path,
        input_format=kind,
        key=key,
        column=column,
        id_column=id_column,
        preprocess=partial(
            _preprocess,
            max_pixels=settings.serving.max_image_pixels,
            segmentation=settings.serving.segmentation,
        ),
        decode_workers=workers or batch.decode_workers,
    ) as source:
        if onnx is not None:
            loaded = load_onnx_model(onnx, threads=threads, batch_size=batch_size)
        else:
            loaded = load_registered_model(
                app_ctx.services.registry(),
                model or settings.serving.model_ref,
                threads=threads,
                batch_size=batch_size,
            )
        if shard_size is None:
            shard_size = (
                batch.image_shard_size if source.kind == "folder" else batch.array_shard_size
            )
        bar = _RichProgress(f"{source.kind} {input_path.name}") if progress else None
        try:
            if bar is not None:
                bar.progress.start()
            result = run_batch(
                source,
                output,
                loaded,
                # A photo model carries its own calibrated floor, as the online API applies it.
                min_confidence=float(
                    loaded.classifier.metadata.get(
                        "abstention.min_confidence", settings.serving.min_confidence
                    )
                ),
                shard_size=shard_size,
                batch_size=batch_size,
                fail_on_error=fail_on_error,
                overwrite=overwrite,
                keep_parts=keep_parts,
                progress=bar,
                log=(
                    app_ctx.services.prediction_log
                    if settings.monitoring.log_enabled and settings.batch.log_predictions
                    else None
                ),
            )
        except KeyboardInterrupt:
            status = parts_status(output)
            if status is None or status[0] == 0:
                fail("interrupted before any shard was finished", INTERRUPTED_EXIT_CODE)
            fail(
                f"interrupted; {status[0]} of {status[1]} shards are kept in "
                f"{parts_dir(output)}: run the same command again to resume",
                INTERRUPTED_EXIT_CODE,
            )
        finally:
            if bar is not None:
                bar.progress.stop()
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        _summary(result, loaded.name, loaded.version), markup=False, highlight=False, soft_wrap=True
    )
