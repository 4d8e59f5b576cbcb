"""``fmnist explain``: heatmaps for image files, and the faithfulness evaluation."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fmnist.cli_support import AppContext, console, err_console, fail
from fmnist.explain.core import DEFAULT_METHOD, METHODS

explain_app = typer.Typer(
    help="Explain the served model's predictions (attribution heatmaps) and measure how "
    "faithful the explanations are.",
    no_args_is_help=True,
)

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Registered version or alias, or NAME@VERSION_OR_ALIAS (default: serving.model_ref).",
    ),
]


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    )


def _methods(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        fail(f"--methods: unknown {unknown or text!r}; choose from: {', '.join(METHODS)}", 2)
    return names


@explain_app.command("image")
def image_command(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(metavar="PATH...", help="Image files (photos or 28x28).")
    ],
    model: ModelOption = None,
    method: Annotated[
        str, typer.Option("--method", help=f"One of: {', '.join(METHODS)}.")
    ] = DEFAULT_METHOD,
    class_id: Annotated[
        int | None,
        typer.Option("--class-id", min=0, max=9, help="Explain this class (default: predicted)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNGs and JSON.")] = Path(
        "explanations"
    ),
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Explain each image (preprocessed as the API does): OUT/<stem>.<method>.png heatmaps and
    OUT/explanations-<method>.json (class, attributions, timings)."""
    from fmnist import CLASS_NAMES
    from fmnist.explain.jobs import explain_files

    if method not in METHODS:
        fail(f"--method: unknown {method!r}; choose from: {', '.join(METHODS)}", 2)
    app_ctx: AppContext = ctx.obj
    bar = _progress() if progress else None
    task = bar.add_task(method, total=len(paths)) if bar is not None else None
    try:
        if bar is not None:
            bar.start()
        written, summary = explain_files(
            app_ctx.services,
            paths,
            ref=model,
            method=method,
            out=out,
            class_id=class_id,
            on_image=(lambda _p: bar.advance(task))
            if bar is not None and task is not None
            else None,
        )
    finally:
        if bar is not None:
            bar.stop()
    for item in written:
        console.print(
            f"{item.source}: {CLASS_NAMES[item.class_id]} -> {item.heatmap}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"wrote {summary}", markup=False, highlight=False, soft_wrap=True)


@explain_app.command("evaluate")
def evaluate_command(
    ctx: typer.Context,
    model: ModelOption = None,
    samples: Annotated[
        int | None,
        typer.Option(
            "--samples", "-n", min=2, help="Test images (default explain.faithfulness_samples)."
        ),
    ] = None,
    methods: Annotated[
        str, typer.Option("--methods", help=f"Comma-separated from: {','.join(METHODS)}.")
    ] = ",".join(METHODS),
    steps: Annotated[
        int | None,
        typer.Option(
            "--steps", min=2, help="Points per curve (default explain.faithfulness_steps)."
        ),
    ] = None,
    randomisation_images: Annotated[
        int, typer.Option("--randomisation-images", min=1, help="Images of the randomisation test.")
    ] = 20,
    checkpoints: Annotated[
        int,
        typer.Option("--checkpoints", min=1, help="Cascade depths of the randomisation test."),
    ] = 4,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the report (default <home>/explain/<name>-v<N>)."),
    ] = None,
    images_dir: Annotated[
        Path | None, typer.Option("--images-dir", help="Folder for the PNG plots (default OUT).")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Deletion/insertion AUC per method against random attributions, and the cascading
    model-parameter randomisation test, on a seeded sample of the test split.

    Writes faithfulness.json, faithfulness.md and PNG plots (curves, randomisation, examples).
    """
    from fmnist.explain.faithfulness import count_steps
    from fmnist.explain.jobs import evaluate_model

    app_ctx: AppContext = ctx.obj
    chosen = _methods(methods)
    bar = _progress() if progress else None
    task = (
        bar.add_task("faithfulness", total=count_steps(chosen, checkpoints))
        if bar is not None
        else None
    )

    def on_step(description: str) -> None:
        if bar is not None and task is not None:
            bar.update(task, advance=1, description=description)

    command = shlex.join(["fmnist", *sys.argv[1:]]) if sys.argv[1:] else ""
    try:
        if bar is not None:
            bar.start()
        run, files = evaluate_model(
            app_ctx.services,
            ref=model,
            methods=chosen,
            samples=samples,
            steps=steps,
            randomisation_images=randomisation_images,
            randomisation_checkpoints=checkpoints,
            out=out,
            image_dir=images_dir,
            command=command,
            on_step=on_step,
        )
    finally:
        if bar is not None:
            bar.stop()
    report = run.report
    table = Table(title=f"faithfulness on {report.samples} {report.split} images")
    for column in ("method", "deletion AUC ↓", "insertion AUC ↑", "Spearman randomised", "s/image"):
        table.add_column(column)
    for r in [*report.methods, report.random]:
        rho = r.spearman_randomised
        table.add_row(
            r.method,
            f"{r.deletion_auc:.4f}",
            f"{r.insertion_auc:.4f}",
            "n/a" if rho is None else f"{rho:.3f}",
            "n/a" if r.seconds_per_image is None else f"{r.seconds_per_image:.4f}",
        )
    console.print(table)
    for path in files.values():
        console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
