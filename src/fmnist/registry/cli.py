"""``fmnist models``: list, show, promote and roll back registered versions."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from fmnist.cli import AppContext, console
from fmnist.registry.mlflow_registry import MlflowRegistry

models_app = typer.Typer(help="The model registry (MLflow).", no_args_is_help=True)


def _registry(ctx: typer.Context) -> MlflowRegistry:
    app_ctx: AppContext = ctx.obj
    return MlflowRegistry(app_ctx.settings)


@models_app.command("list")
def list_versions(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List registered versions, newest first, with aliases and gate results."""
    registry = _registry(ctx)
    versions = registry.list_versions()
    if as_json:
        typer.echo(json.dumps([v.to_dict() for v in versions], indent=2))
        return
    table = Table(title=f"registered model {registry.model_name}")
    for column in ("version", "aliases", "test accuracy", "gates", "created", "run"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            str(v.version),
            ", ".join(v.aliases),
            v.tags.get("test_accuracy", ""),
            v.tags.get("gate.passed", ""),
            v.created_at,
            v.run_id or "",
        )
    console.print(table)


@models_app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Version number or alias.")] = "champion",
) -> None:
    """Show one version (number or alias) as JSON."""
    typer.echo(json.dumps(_registry(ctx).get(ref).to_dict(), indent=2))


@models_app.command("promote")
def promote(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Version number or alias.")],
    reason: Annotated[str, typer.Option("--reason")] = "manual promotion",
) -> None:
    """Make a version the champion (recorded in the champion history)."""
    info = _registry(ctx).promote(ref, reason=reason)
    console.print(f"version {info.version} is now champion")


@models_app.command("rollback")
def rollback(ctx: typer.Context) -> None:
    """Restore the previous champion in one step."""
    demoted, restored = _registry(ctx).rollback()
    console.print(f"champion rolled back from version {demoted.version} to {restored.version}")
