"""``fmnist retrain``: retrain by hand on the champion's data plus the labelled feedback.

The command imports its modules when it runs, so ``fmnist --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from fmnist.cli_support import AppContext, console


def retrain_command(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Learn from feedback on predictions since this ISO 8601 time or age (24h); "
            "default: the end of the last retrain's window, else the whole log.",
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="... and until this time (default: now).")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Ignore the cooldown and a rollout in progress (not the lock)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Retrain now: derived snapshot (champion's data + labelled feedback, part held out),
    the training pipeline with retraining.preset, gates (non-inferiority, drifted window),
    and a candidate in shadow when it passes. Every step goes to the audit log."""
    from datetime import UTC, datetime

    from fmnist.monitoring.timespec import parse_time
    from fmnist.retraining.guard import read_state
    from fmnist.retraining.run import retrain
    from fmnist.retraining.triggers import Trigger

    app_ctx: AppContext = ctx.obj
    settings = app_ctx.settings
    last_end = read_state(settings.home).window_end
    start = (
        parse_time(since)
        if since is not None
        else datetime.fromisoformat(last_end)
        if last_end
        else None
    )
    end = parse_time(until) if until is not None else datetime.now(UTC)
    trigger = Trigger("manual", "fmnist retrain", reason or "retrain by hand", start, end)
    outcome = retrain(app_ctx.services, trigger, force=force)
    if as_json:
        typer.echo(json.dumps(outcome.to_dict(), indent=2, default=str))
        return
    console.print(f"retrain {outcome.status}: {outcome.reason}", highlight=False)
    if outcome.version is not None:
        console.print(
            f"version {outcome.version} (run {outcome.run_id}) on snapshot "
            f"{outcome.snapshot_id}; test accuracy {outcome.accuracy:.4f}",
            highlight=False,
        )
