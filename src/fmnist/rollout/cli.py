"""``fmnist ab``: the statistics of A/B experiments (readout and a check by simulation).

Commands import their modules when they run, so ``fmnist --help`` stays fast.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fmnist.cli_support import AppContext, console, fail

if TYPE_CHECKING:
    from fmnist.rollout.controller import RolloutStep

ab_app = typer.Typer(
    help="A/B experiments and rollouts: readout, simulation, canary and controller steps.",
    no_args_is_help=True,
)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


@ab_app.command("simulate")
def simulate_command(
    experiments: Annotated[
        int, typer.Option("--experiments", min=100, help="Simulated experiments per test.")
    ] = 1000,
    base_rate: Annotated[float, typer.Option(help="Accuracy of the champion arm.")] = 0.9,
    effect: Annotated[float, typer.Option(help="True accuracy difference in the A/B runs.")] = 0.02,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    power: Annotated[float, typer.Option(help="Power the sample size is planned for.")] = 0.8,
    batch: Annotated[
        int, typer.Option(min=1, help="Labelled samples per arm between looks.")
    ] = 100,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check the tests by simulation: A/A runs looked at after every batch (false positives
    under peeking) and A/B runs with a true difference (power at the planned sample size)."""
    from fmnist.rollout.ab_stats import simulate

    if not 0 < alpha < 1 or not 0 < power < 1:
        fail("--alpha and --power must be between 0 and 1", 2)
    try:
        result = simulate(
            experiments,
            base_rate=base_rate,
            effect=effect,
            alpha=alpha,
            power=power,
            batch=batch,
            seed=seed,
        )
    except ValueError as exc:
        fail(str(exc), 2)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    table = Table(title=f"{experiments} simulated experiments per row, alpha {alpha}")
    table.add_column("test")
    table.add_column("false positives (A/A)", justify="right")
    table.add_column(f"power (+{effect:g})", justify="right")
    table.add_row(
        "always valid (mSPRT), look after every batch",
        _percent(result.false_positive_rate),
        _percent(result.power),
    )
    table.add_row(
        "z-test, look after every batch",
        _percent(result.false_positive_rate_peeking_z_test),
        "-",
    )
    table.add_row(
        "z-test, one look at the planned size",
        _percent(result.false_positive_rate_fixed_z_test),
        _percent(result.power_fixed_z_test),
    )
    console.print(table)
    console.print(
        f"planned size {result.planned_n_per_arm:,} per arm (fixed horizon, power {power}); "
        f"the always-valid test reaches that power by "
        f"{result.sequential_n_per_arm or 'more than 3x that'} per arm",
        highlight=False,
    )


def _experiment_start(app_ctx: AppContext) -> datetime | None:
    """When the rollout in use was set (its state file's time), or None."""
    from fmnist.rollout.state import state_path

    path = state_path(app_ctx.settings.home)
    return datetime.fromtimestamp(path.stat().st_mtime, UTC) if path.exists() else None


@ab_app.command("report")
def report_command(
    ctx: typer.Context,
    experiment: Annotated[
        str, typer.Option("--experiment", help="Experiment name (shown in the report).")
    ] = "",
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="ISO 8601 time (UTC) or an age: 30m, 24h, 7d; default: the last rollout "
            "change (its state file), else all of the log.",
        ),
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    mde: Annotated[float, typer.Option(help="Minimum detectable accuracy difference.")] = 0.02,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Per arm (champion, challenger): requests, labelled, accuracy with interval, p95 latency,
    unknown rate; the difference, its fixed and always-valid p-values and a decision."""
    from fmnist.monitoring.timespec import parse_time
    from fmnist.rollout.readout import ab_readout

    app_ctx: AppContext = ctx.obj
    start = parse_time(since) if since is not None else _experiment_start(app_ctx)
    services = app_ctx.services
    readout = ab_readout(
        services.prediction_log,
        services.feedback,
        experiment=experiment,
        since=start,
        alpha=alpha,
        minimum_detectable_effect=mde,
    )
    if as_json:
        typer.echo(json.dumps(readout.to_dict(), indent=2))
        return
    table = Table(title=f"A/B readout {experiment}".strip())
    for column in ("arm", "requests", "labelled", "accuracy", "95% interval", "p95 ms", "unknown"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm in readout.arms:
        interval = (
            "-"
            if arm.accuracy_low is None
            else f"{arm.accuracy_low:.2%} - {_percent(arm.accuracy_high)}"
        )
        table.add_row(
            arm.arm,
            f"{arm.requests:,}",
            f"{arm.labelled:,}",
            _percent(arm.accuracy),
            interval,
            "-" if arm.latency_p95_ms is None else f"{arm.latency_p95_ms:.2f}",
            _percent(arm.unknown_rate),
        )
    console.print(table)
    if readout.decision is None:
        console.print("no labelled traffic in both arms yet: no decision", highlight=False)
        return
    console.print(
        f"difference {readout.difference:+.2%}; z-test p {readout.p_value_fixed:.3g} (valid "
        f"for one look only); always-valid p {readout.p_value_always_valid:.3g}; planned "
        f"{readout.planned_n_per_arm:,} labelled per arm; decision: {readout.decision}",
        highlight=False,
    )


@ab_app.command("canary")
def canary_command(
    ctx: typer.Context,
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the new share (or the rollback) and audit it.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """One step of a running canary: advance, hold or roll back by the guard metrics over
    the traffic since the last change; with --apply the servers pick it up on their next poll.
    A finished canary is reported ``complete``: promote with ``fmnist ab step --apply``."""
    from fmnist.rollout.controller import current_rollout, step_rollout

    app_ctx: AppContext = ctx.obj
    config = current_rollout(app_ctx.settings)
    if config.mode != "canary":
        fail(f"no canary is running (rollout mode {config.mode!r})", 2)
    step = step_rollout(app_ctx.services, apply=apply, actor="fmnist ab canary", promote=False)
    _print_step(step, config.experiment, as_json)


@ab_app.command("step")
def step_command(
    ctx: typer.Context,
    apply: Annotated[
        bool, typer.Option("--apply", help="Apply the step (state, audit log, MLflow tag).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """One step of the rollout controller: a shadow moves to a canary, a canary advances,
    a finished canary is promoted (champion alias; servers hot-reload), or it rolls back."""
    from fmnist.rollout.controller import current_rollout, step_rollout

    app_ctx: AppContext = ctx.obj
    experiment = current_rollout(app_ctx.settings).experiment
    step = step_rollout(app_ctx.services, apply=apply, actor="fmnist ab step")
    _print_step(step, experiment, as_json)


def _print_step(step: RolloutStep, experiment: str, as_json: bool) -> None:
    if as_json:
        payload = step.to_dict()
        payload.pop("readout", None)
        typer.echo(json.dumps(payload, indent=2))
        return
    console.print(
        f"{step.mode} {experiment}: {step.action} ({step.share_from:.0%} -> "
        f"{step.share_to:.0%}){' applied' if step.applied else ''}: {'; '.join(step.reasons)}",
        highlight=False,
    )


def audit_command(
    ctx: typer.Context,
    last: Annotated[int | None, typer.Option("--last", min=1, help="Only the newest N.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines, one entry a line.")] = False,
) -> None:
    """Print the audit log of rollout decisions (who, when, what, why), oldest first."""
    from fmnist.audit import AuditLog, audit_path

    settings = ctx.obj.settings
    entries = AuditLog(audit_path(settings.home, settings.rollout.audit_path)).read(last)
    if as_json:
        for entry in entries:
            typer.echo(json.dumps(entry, sort_keys=True))
        return
    table = Table(title=f"audit log ({len(entries)} entries)")
    for column in ("time", "actor", "action", "reason", "details"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            str(entry.get("time", "")),
            str(entry.get("actor", "")),
            str(entry.get("action", "")),
            str(entry.get("reason", "")),
            json.dumps(entry.get("details", {}), sort_keys=True),
        )
    console.print(table)
