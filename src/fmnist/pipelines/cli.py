"""``fmnist pipeline``: run the main job end to end."""

from __future__ import annotations

from typing import Annotated

import typer

from fmnist.cli_support import AppContext, console
from fmnist.evaluation.cli import print_outcome
from fmnist.training.cli import print_trained
from fmnist.training.config import PRESETS, make_config

pipeline_app = typer.Typer(help="Run lifecycle pipelines.", no_args_is_help=True)


@pipeline_app.command("run")
def run(
    ctx: typer.Context,
    preset: Annotated[
        str, typer.Option("--preset", "-p", help=f"One of: {', '.join(PRESETS)}.")
    ] = "default",
    max_minutes: Annotated[float | None, typer.Option("--max-minutes")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Snapshot -> validate -> train -> evaluate -> register -> promote if the gates pass."""
    from fmnist.pipelines.local import run_main_job

    app_ctx: AppContext = ctx.obj
    config = make_config(preset, max_minutes=max_minutes)
    result = run_main_job(app_ctx.services, config, show_progress=progress)
    console.rule("main job finished")
    console.print(f"snapshot {result.manifest.snapshot_id} (validation passed)")
    print_trained(result.trained)
    print_outcome(result.outcome)
    settings = app_ctx.settings
    console.print(
        f"test accuracy [bold]{result.outcome.report.accuracy:.4f}[/bold]. Look in MLflow: "
        f"mlflow ui --backend-store-uri {settings.resolved_tracking_uri}"
    )
