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
        config = app_ctx.settings.monitoring
        kept = log.apply_retention(config.retention_days, image_days=config.image_retention_days)
    finally:
        log.close()
    err_console.print(
        f"compacted {len(done.days)} days ({done.rows_written} rows into "
        f"{len(done.segments)} segments, {done.rows_deleted} live rows removed); retention "
        f"before {kept.cutoff}: {kept.rows_deleted} rows, {kept.feedback_deleted} feedback, "
        f"{kept.partitions_deleted} day partitions deleted; inputs older than "
        f"{config.image_retention_days} days cleared in {kept.images_cleared} live rows and "
        f"{kept.image_segments_rewritten} segments",
        markup=False,
        highlight=False,
    )


@monitor_app.command("purge")
def purge_command(
    ctx: typer.Context,
    client: Annotated[
        list[str],
        typer.Option("--client", help="The client's X-Client-ID as it sent it (repeatable)."),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
) -> None:
    """Delete every prediction of a client from the log (live and compacted), with its
    feedback: a data subject's erasure request."""
    from fmnist.monitoring.client_ids import client_id_hasher
    from fmnist.monitoring.erasure import purge_clients
    from fmnist.monitoring.prediction_log import open_prediction_log

    if not client or any(not c.strip() for c in client):
        raise MonitoringError("--client needs a non-empty client id")
    app_ctx: AppContext = ctx.obj
    hasher = client_id_hasher(app_ctx.settings)
    hashes = [h for c in client for h in hasher.candidates(c)]
    log = open_prediction_log(app_ctx.settings, create=False)
    try:
        result = purge_clients(log, hashes, dry_run=dry_run)
    finally:
        log.close()
    verb = "would delete" if result.dry_run else "deleted"
    err_console.print(
        f"{verb} {result.records} predictions of {len(client)} client(s) "
        f"({result.live_rows} live, {result.compacted_rows} compacted; "
        f"{result.segments_rewritten} segments rewritten) and {result.feedback_rows} feedback",
        markup=False,
        highlight=False,
    )


def _register_drift_commands() -> None:
    from fmnist.monitoring.drift_cli import drift_command, run_command

    monitor_app.command("drift")(drift_command)
    monitor_app.command("run")(run_command)


_register_drift_commands()
