"""``fmnist monitor``: the prediction log, feedback and drift monitoring.

Commands import their modules when they run, so ``fmnist --help`` stays fast.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from fmnist.cli_support import AppContext, err_console
from fmnist.monitoring.errors import MonitoringError

monitor_app = typer.Typer(
    help="The prediction log, feedback and drift monitoring.", no_args_is_help=True
)


@monitor_app.command("export")
def export_command(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO 8601 time (UTC) or an age: 30m, 24h, 7d.")
    ] = None,
    last: Annotated[int | None, typer.Option("--last", help="Only the newest N records.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl | parquet.")] = "jsonl",
    out: Annotated[
        Path | None, typer.Option("--out", help="File to write (required for parquet).")
    ] = None,
    with_pixels: Annotated[
        bool, typer.Option("--with-pixels", help="Include the 28x28 input (base64 in JSON).")
    ] = False,
) -> None:
    """Write the prediction log, oldest first: JSON Lines to stdout, or a file with --out."""
    from fmnist.monitoring.export import FORMATS, export_file, export_jsonl
    from fmnist.monitoring.prediction_log import open_prediction_log
    from fmnist.monitoring.timespec import parse_time

    if fmt not in FORMATS:
        raise MonitoringError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet" and out is None:
        raise MonitoringError("--format parquet needs --out FILE")
    if last is not None and last < 1:
        raise MonitoringError(f"--last must be at least 1, got {last}")
    start = parse_time(since) if since is not None else None
    app_ctx: AppContext = ctx.obj
    log = open_prediction_log(app_ctx.settings, create=False)
    try:
        if out is None:
            export_jsonl(log, sys.stdout, since=start, last=last, with_pixels=with_pixels)
            return
        count = export_file(log, out, fmt, since=start, last=last, with_pixels=with_pixels)
    finally:
        log.close()
    err_console.print(f"wrote {count} records to {out}", markup=False, highlight=False)


@monitor_app.command("compact")
def compact_command(
    ctx: typer.Context,
    before: Annotated[
        str | None, typer.Option("--before", help="Compact days before this date (UTC; today).")
    ] = None,
) -> None:
    """Move closed days of the log into Parquet segments, then apply the retention."""
    from fmnist.monitoring.prediction_log import open_prediction_log

    try:
        day = date.fromisoformat(before) if before else datetime.now(UTC).date()
    except ValueError:
        raise MonitoringError(f"--before must be a date like 2024-05-01, got {before!r}") from None
    app_ctx: AppContext = ctx.obj
    log = open_prediction_log(app_ctx.settings, create=False)
    try:
        done = log.compact(day)
        kept = log.apply_retention(app_ctx.settings.monitoring.retention_days)
    finally:
        log.close()
    err_console.print(
        f"compacted {len(done.days)} days ({done.rows_written} rows into "
        f"{len(done.segments)} segments, {done.rows_deleted} live rows removed); retention "
        f"before {kept.cutoff}: {kept.rows_deleted} rows, {kept.feedback_deleted} feedback, "
        f"{kept.partitions_deleted} day partitions deleted",
        markup=False,
        highlight=False,
    )


def _register_drift_commands() -> None:
    from fmnist.monitoring.drift_cli import drift_command, run_command

    monitor_app.command("drift")(drift_command)
    monitor_app.command("run")(run_command)


_register_drift_commands()
