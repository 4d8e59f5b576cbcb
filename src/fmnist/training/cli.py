"""``fmnist train``: train a model on a snapshot and track the run in MLflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fmnist.cli_support import AppContext, console
from fmnist.training.config import PRESETS, make_config

if TYPE_CHECKING:
    from fmnist.training.run import TrainedRun


def print_trained(trained: TrainedRun) -> None:
    """Summarise a finished training run."""
    result = trained.result
    last = result.history[-1] if result.history else None
    console.print(
        f"trained [bold]{result.config.model}[/bold] ({result.parameters:,} parameters) on "
        f"snapshot {result.snapshot_id} in {result.train_seconds:.1f} s "
        f"({result.precision}, {result.threads} threads, stopped: {result.stopped})"
    )
    if last is not None:
        console.print(
            f"best validation accuracy {result.best_val_accuracy:.4f} at epoch {result.best_epoch}"
            f" of {len(result.history)}; temperature {trained.temperature:.3f}; "
            f"ONNX parity max |dp| {trained.parity.max_abs_prob_diff:.2e}, "
            f"argmax agreement {trained.parity.argmax_agreement:.4f}"
        )
    console.print(f"run {trained.run_id}; files in {trained.run_dir}")


def train_command(
    ctx: typer.Context,
    preset: Annotated[
        str, typer.Option("--preset", "-p", help=f"One of: {', '.join(PRESETS)}.")
    ] = "default",
    model: Annotated[str | None, typer.Option("--model", "-m", help="Architecture.")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1)] = None,
    lr: Annotated[float | None, typer.Option("--lr", min=0.0)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1)] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0)] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1)] = None,
    precision: Annotated[str | None, typer.Option("--precision", help="auto|bf16|fp32")] = None,
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", help="Stop training after this time.")
    ] = None,
    train_subset: Annotated[int | None, typer.Option("--train-subset", min=10)] = None,
    snapshot: Annotated[
        str | None, typer.Option("--snapshot", "-s", help="Snapshot id (default: newest).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from this config's checkpoint.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run as JSON (for pipelines).")
    ] = False,
    teacher: Annotated[
        list[str] | None,
        typer.Option(
            "--teacher",
            help="Distil from this trained run (weights.pt, run folder or run id); repeat for "
            "an ensemble of teachers.",
        ),
    ] = None,
    distill_temperature: Annotated[
        float, typer.Option("--distill-temperature", min=0.1, max=20.0)
    ] = 4.0,
    distill_alpha: Annotated[
        float, typer.Option("--distill-alpha", min=0.0, max=1.0, help="Weight of soft targets.")
    ] = 0.7,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc", min=1, help="Processes of data-parallel training (DDP, gloo, torchrun)."
        ),
    ] = 1,
) -> None:
    """Train a model (checkpointed every epoch; Ctrl-C leaves a resumable checkpoint)."""
    import sys

    from fmnist.training.distributed import (
        launched_by_torchrun,
        process_group,
        relaunch,
        without_option,
    )
    from fmnist.training.run import train_and_log
    from fmnist.training.trainer import train

    if nproc > 1 and not launched_by_torchrun():
        raise typer.Exit(relaunch(nproc, without_option(sys.argv[1:], "--nproc")))

    app_ctx: AppContext = ctx.obj
    config = make_config(
        preset,
        model=model,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        threads=threads,
        precision=precision,
        max_minutes=max_minutes,
        train_subset=train_subset,
        distill=(
            {"teachers": teacher, "temperature": distill_temperature, "alpha": distill_alpha}
            if teacher
            else None
        ),
    )
    with process_group():
        from fmnist.training.distributed import is_primary

        if not is_primary():  # the other ranks train their shards; rank 0 records the run
            from fmnist.data.snapshot import load_snapshot
            from fmnist.training.run import checkpoint_path

            data = load_snapshot(app_ctx.services.storage, snapshot)
            path = checkpoint_path(app_ctx.settings, config, data.snapshot_id)
            from fmnist.training.distillation import objective_for

            objective = objective_for(config, app_ctx.settings.home / "runs")
            train(config, data, path, resume=resume, show_progress=False, objective=objective)
            return
        trained = train_and_log(
            app_ctx.services,
            config,
            snapshot_id=snapshot,
            resume=resume,
            show_progress=progress and not as_json,
        )
    if as_json:
        import json

        result = trained.result
        summary = {
            "run_id": trained.run_id,
            "snapshot_id": result.snapshot_id,
            "best_val_accuracy": result.best_val_accuracy,
            "train_seconds": result.train_seconds,
        }
        typer.echo(json.dumps(summary))
        return
    print_trained(trained)
