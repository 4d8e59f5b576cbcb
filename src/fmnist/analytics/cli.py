"""``fmnist analytics``: named queries over the analytics tables.

Commands import their modules when they run, so ``fmnist --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
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


DEFAULT_COST = Path("benchmarks") / "results" / "cost.json"
"""The cost result ``--cost`` defaults to when it exists (run from a checkout)."""


@analytics_app.command("dashboard")
def dashboard_command(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder of the page (default: <home>/analytics/dashboard)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only traffic since then: ISO 8601 or an age (24h, 7d)."),
    ] = None,
    cost: Annotated[
        Path | None,
        typer.Option(
            "--cost",
            help="Cost result of benchmarks/cost.py (default: benchmarks/results/cost.json "
            "when it exists).",
        ),
    ] = None,
) -> None:
    """A static dashboard page (PNG charts, Markdown, HTML, JSON summary) from the analytics
    tables: volume by version and arm, live accuracy, drift history, latency, class mix, cost."""
    from fmnist.analytics.dashboard import collect
    from fmnist.analytics.page import PAGE_HTML, SUMMARY_JSON, write_dashboard
    from fmnist.monitoring.report import reports_root
    from fmnist.monitoring.timespec import parse_time

    app_ctx: AppContext = ctx.obj
    settings = app_ctx.settings
    home = settings.home.resolve()
    if not home.is_dir():
        fail(f"no fmnist home at {home} (set FMNIST_HOME or home in the settings)", 2)
    choice = app_ctx.services.choice("analytics")
    if choice.adapter == "duckdb" and not Path(choice.target).is_file():
        fail(
            f"no analytics database at {choice.target}: fold the prediction log into it first "
            "(fmnist events consume --once)",
            2,
        )
    if cost is None and DEFAULT_COST.is_file():
        cost = DEFAULT_COST
    if cost is not None and not cost.is_file():
        fail(f"no cost result at {cost.resolve()} (python benchmarks/cost.py writes it)", 2)
    data = collect(
        app_ctx.services.analytics,
        analytics_target=choice.target,
        reports=reports_root(home),
        since=parse_time(since) if since else None,
        cost_file=cost,
    )
    folder = out or home / "analytics" / "dashboard"
    files = write_dashboard(data, folder)
    s = files.summary
    console.print(
        f"{s.predictions:,} predictions, {s.labelled:,} labelled, {s.drift.checks} drift checks: "
        f"{len(files.charts)} charts",
        markup=False,
        highlight=False,
    )
    for name, why in files.missing.items():
        console.print(f"not drawn: {name} ({why})", markup=False, highlight=False)
    console.print(f"page: {folder / PAGE_HTML}", markup=False, highlight=False)
    console.print(f"summary: {folder / SUMMARY_JSON}", markup=False, highlight=False)
