"""``fmnist analytics``: named queries over the analytics tables.

Commands import their modules when they run, so ``fmnist --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from fmnist.cli_support import AppContext, console, fail

analytics_app = typer.Typer(
    help="Named SQL queries (written once, BigQuery dialect) over the analytics tables.",
    no_args_is_help=True,
)


def _print(title: str, rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title=f"{title} ({len(rows)} rows)")
    for column in rows[0] if rows else []:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


@analytics_app.command("list")
def list_command() -> None:
    """The named queries."""
    from fmnist.analytics.tables import query_names

    for name in query_names():
        typer.echo(name)


@analytics_app.command("query")
def query_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A named query (fmnist analytics list).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
) -> None:
    """Run a named query and print its rows."""
    from fmnist.analytics.tables import query_names, run_query

    if name not in query_names():
        fail(f"no query named {name!r}; choose one of: {', '.join(query_names())}", 2)
    app_ctx: AppContext = ctx.obj
    _print(name, run_query(app_ctx.services.analytics, name), as_json)


@analytics_app.command("kpis")
def kpis_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
) -> None:
    """Daily KPIs: volume, p95 latency, unknown rate, labelled feedback, live accuracy."""
    from fmnist.analytics.tables import run_query

    app_ctx: AppContext = ctx.obj
    _print("daily KPIs", run_query(app_ctx.services.analytics, "kpis_daily"), as_json)
