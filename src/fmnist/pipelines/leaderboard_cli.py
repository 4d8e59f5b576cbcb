"""``fmnist benchmark``: train or reuse each leaderboard model, register, measure, publish."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fmnist.cli_support import AppContext, console
from fmnist.training.config import PRESETS

if TYPE_CHECKING:
    from fmnist.pipelines.leaderboard_page import LeaderboardRow

DEFAULT_MODELS_TEXT = "cnn,resnet,vit,mlp,ensemble,baselines"


def _print_row(row: LeaderboardRow) -> None:
    registered = f"{row.registered_model} v{row.version}" if row.registered_model else "-"
    timing = (
        f", {row.latency_ms_b1:.3f} ms b1, {row.throughput_b256:,.0f} img/s b256"
        if row.latency_ms_b1 is not None and row.throughput_b256 is not None
        else ""
    )
    console.print(
        f"{row.model}: test accuracy {row.test_accuracy:.4f}, trained in "
        f"{row.train_seconds:,.1f} s ({row.precision}){timing}; registered {registered}"
        + (" [reused]" if row.reused else ""),
        highlight=False,
        markup=False,
    )


def benchmark_command(
    ctx: typer.Context,
    models: Annotated[
        str, typer.Option("--models", "-m", help=f"Comma-separated from: {DEFAULT_MODELS_TEXT}.")
    ] = DEFAULT_MODELS_TEXT,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            "-p",
            help=f"Preset applied over each model's own ({', '.join(PRESETS)}), e.g. tiny.",
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1)] = None,
    train_subset: Annotated[int | None, typer.Option("--train-subset", min=10)] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1)] = None,
    max_minutes: Annotated[float | None, typer.Option("--max-minutes")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0)] = None,
    reuse: Annotated[
        bool,
        typer.Option("--reuse/--no-reuse", help="Reuse finished runs of the same config hash."),
    ] = True,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for benchmarks.json/.md and images/.")
    ] = Path("docs"),
    snapshot: Annotated[str | None, typer.Option("--snapshot", "-s", help="Snapshot id.")] = None,
    quantize: Annotated[bool, typer.Option("--quantize/--no-quantize")] = True,
    baseline_minutes: Annotated[
        float | None, typer.Option("--baseline-minutes", help="Budget of the classical sweep.")
    ] = None,
    baseline_subset: Annotated[
        int | None, typer.Option("--baseline-subset", min=100, help="Cap on classical images.")
    ] = None,
    ensemble_members: Annotated[
        str | None,
        typer.Option(
            "--ensemble-members",
            help="Registered models to ensemble (default: the "
            "neural models of --models, else cnn,resnet,vit).",
        ),
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Train (or reuse) each model, register it under its name, measure, write the leaderboard.

    Writes OUT/benchmarks.json, OUT/benchmarks.md and OUT/images/benchmarks.png.
    Rows of models not run now are kept from the existing JSON.
    """
    from fmnist.pipelines.leaderboard import BenchmarkOptions, parse_models, run_benchmark

    app_ctx: AppContext = ctx.obj
    overrides = {
        "epochs": epochs,
        "train_subset": train_subset,
        "threads": threads,
        "max_minutes": max_minutes,
        "seed": seed,
    }
    options = BenchmarkOptions(
        models=parse_models(models),
        preset=preset,
        overrides={k: v for k, v in overrides.items() if v is not None},
        reuse=reuse,
        out=out,
        snapshot_id=snapshot,
        quantize=quantize,
        baseline_minutes=baseline_minutes,
        baseline_subset=baseline_subset,
        ensemble_members=parse_models(ensemble_members) if ensemble_members else None,
        show_progress=progress,
    )
    result = run_benchmark(app_ctx.services, options, on_row=_print_row)
    for name, reason in result.skipped.items():
        console.print(f"skipped {name}: {reason}", highlight=False)
    for path in result.files.values():
        console.print(f"wrote {path}", highlight=False)
