"""``fmnist baselines``: the classical scikit-learn sweep, the floor of the leaderboard."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fmnist.cli_support import AppContext, console

if TYPE_CHECKING:
    from fmnist.training.baselines import BaselineResult

baselines_app = typer.Typer(help="Classical baselines (scikit-learn).", no_args_is_help=True)


def _print_result(result: BaselineResult) -> None:
    limited = " (limited by the time budget)" if result.limited_by_budget else ""
    console.print(
        f"{result.model}: test accuracy {result.test_accuracy:.4f}, macro F1 "
        f"{result.macro_f1:.4f}, fit {result.fit_seconds:.1f} s on {result.n_train:,} of "
        f"{result.n_train_available:,} images{limited}" + (" [reused]" if result.reused else ""),
        highlight=False,
        markup=False,
    )


@baselines_app.command("run")
def run(
    ctx: typer.Context,
    max_minutes: Annotated[
        float | None,
        typer.Option("--max-minutes", min=0.01, help="Time budget of the whole sweep."),
    ] = None,
    train_subset: Annotated[
        int | None, typer.Option("--train-subset", min=100, help="Cap on training images.")
    ] = None,
    models: Annotated[
        str | None, typer.Option("--models", help="Comma-separated: logreg,hgb,rf,svc.")
    ] = None,
    threads: Annotated[int, typer.Option("--threads", min=1)] = 1,
    snapshot: Annotated[str | None, typer.Option("--snapshot", "-s", help="Snapshot id.")] = None,
    reuse: Annotated[
        bool, typer.Option("--reuse/--no-reuse", help="Read back finished identical runs.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Results JSON (default: <home>/baselines/baselines.json)."),
    ] = None,
) -> None:
    """Fit logistic regression, gradient boosting, a random forest and an SVM within a budget.

    Tracked in MLflow and written as JSON; not registered for serving (no ONNX export).
    """
    from fmnist.training.baselines import run_baselines, summary_line

    app_ctx: AppContext = ctx.obj
    settings = app_ctx.settings
    path = out or settings.home / "baselines" / "baselines.json"
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    results = run_baselines(
        app_ctx.services,
        models=names,
        max_minutes=max_minutes,
        train_subset=train_subset,
        threads=threads,
        snapshot_id=snapshot,
        reuse=reuse,
        out=path,
        on_result=_print_result,
    )
    console.print(summary_line(results), highlight=False)
    console.print(f"results: {path}")
