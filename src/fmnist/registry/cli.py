"""``fmnist models``: list, show, promote and roll back registered versions; their cards."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fmnist.atomic import atomic_write_bytes
from fmnist.audit import AuditLog, audit_path
from fmnist.cli_support import AppContext, console
from fmnist.errors import FmnistError
from fmnist.platform.registry import ModelRegistry
from fmnist.registry.model_cards import CardFormat, fetch_model_card

models_app = typer.Typer(help="The model registry (MLflow).", no_args_is_help=True)


def _audit(ctx: typer.Context) -> AuditLog:
    settings = ctx.obj.settings
    return AuditLog(audit_path(settings.home, settings.rollout.audit_path))


def _champion_version(registry: ModelRegistry) -> int | None:
    try:
        return registry.get("champion").version
    except FmnistError:
        return None


def _registry(ctx: typer.Context) -> ModelRegistry:
    app_ctx: AppContext = ctx.obj
    return app_ctx.services.registry()


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
    """Make a version the champion (recorded in the champion history and the audit log)."""
    registry = _registry(ctx)
    previous = _champion_version(registry)
    info = registry.promote(ref, reason=reason)
    _audit(ctx).append(
        "fmnist models promote",
        "promote",
        reason,
        {"model": info.name, "version": info.version, "previous": previous},
    )
    console.print(f"version {info.version} is now champion")


@models_app.command("rollback")
def rollback(ctx: typer.Context) -> None:
    """Restore the previous champion in one step (recorded in the audit log)."""
    demoted, restored = _registry(ctx).rollback()
    _audit(ctx).append(
        "fmnist models rollback",
        "rollback",
        "manual rollback",
        {"model": restored.name, "version": restored.version, "previous": demoted.version},
    )
    console.print(f"champion rolled back from version {demoted.version} to {restored.version}")


@models_app.command("card")
def card(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Version number or alias.")] = "champion",
    card_format: Annotated[
        CardFormat, typer.Option("--format", help="html (self-contained page) or md.")
    ] = "html",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Print or save a version's model card (from its run's MLflow artifacts)."""
    model_card = fetch_model_card(_registry(ctx), ref, card_format)
    if out is None:
        sys.stdout.write(model_card.content.decode("utf-8"))
        return
    atomic_write_bytes(out, model_card.content)
    console.print(f"model card of version {model_card.version} written to {out}")


@models_app.command("export")
def export(
    ctx: typer.Context,
    to: Annotated[Path, typer.Option("--to", help="Folder to write (created or updated).")],
    refs: Annotated[
        list[str] | None,
        typer.Argument(help="Versions or aliases to export (default: every aliased version)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="Registered model to include (repeatable; default: the configured model and "
            "the photo model of serving.photo_model when registered).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Export registered versions, with their cards, into a folder that `fmnist serve` reads
    without MLflow (serving.model_export; the serving-only install and the API image)."""
    from fmnist.registry.exported import export_registry

    app_ctx: AppContext = ctx.obj
    settings = app_ctx.settings
    names = list(model or [])
    if not names:
        names = [settings.tracking.registered_model]
        photo = settings.serving.photo_model
        if photo:
            names.append(photo.partition("@")[0])
    registries = [app_ctx.services.registry(name) for name in dict.fromkeys(names)]
    summary = export_registry(registries, to, refs or ())
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
        return
    for info in summary.versions:
        aliases = ", ".join(info.aliases) or "-"
        console.print(f"exported {info.name} version {info.version} ({aliases})")
    console.print(
        f"{len(summary.versions)} versions, {summary.bytes_written / 1e6:.1f} MB in {to}; "
        f"serve them with serving.model_export={to}"
    )
