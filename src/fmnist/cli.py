"""The ``fmnist`` command line: a thin Typer layer whose tree follows the lifecycle.

Expected failures (:class:`~fmnist.errors.FmnistError`) print one line, ``error: ...``, and exit
non-zero; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from fmnist import __version__
from fmnist.cli_support import AppContext, console, err_console, fail
from fmnist.config import LoadedSettings, load_settings
from fmnist.errors import FmnistError

if TYPE_CHECKING:
    from fmnist.platform.services import Services

__all__ = ["app", "main"]


class FmnistGroup(TyperGroup):
    """Root group that turns :class:`FmnistError` into a one-line error and an exit code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        """Run the command; show expected failures as one line unless ``--debug``."""
        try:
            return super().invoke(ctx)
        except FmnistError as exc:
            # ctx.obj is not set yet when loading the settings failed: read the flag itself.
            debug = ctx.obj.debug if isinstance(ctx.obj, AppContext) else ctx.params.get("debug")
            if debug:
                raise
            fail(str(exc), exc.exit_code)


app = typer.Typer(
    cls=FmnistGroup,
    help="fmnist: Fashion-MNIST from raw data to a monitored service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
config_app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        console.print(f"fmnist {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML settings file (else $FMNIST_CONFIG)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """fmnist: Fashion-MNIST from raw data to a monitored service."""
    from fmnist.composition import build_services

    ctx.obj = AppContext(
        loaded=_load(config, debug),
        build_services=build_services,
        debug=debug,
        after_drift_check=(_closed_loop,),
    )


def _closed_loop(services: Services, result: Any) -> None:
    """After each check of ``fmnist monitor run``: retrain on a trigger, step the rollout."""
    from fmnist.retraining.loop import after_drift_check

    step = after_drift_check(services, result)
    if step is None:
        return
    if step.retrain is not None:
        err_console.print(
            f"retrain ({step.retrain.trigger['kind']}): {step.retrain.status}: "
            f"{step.retrain.reason}",
            markup=False,
            highlight=False,
        )
    if step.rollout.action != "idle":
        err_console.print(
            f"rollout {step.rollout.mode}: {step.rollout.action} "
            f"({'; '.join(step.rollout.reasons)})",
            markup=False,
            highlight=False,
        )


def _load(config: Path | None, debug: bool) -> LoadedSettings:
    try:
        return load_settings(config)
    except FmnistError as exc:
        if debug:
            raise
        fail(str(exc), exc.exit_code)


@config_app.command("show")
def config_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Print the effective settings, where each value came from, and the adapter chosen for
    each port (secrets are masked)."""
    from fmnist.composition import choose_adapters

    app_ctx: AppContext = ctx.obj
    rows = list(app_ctx.loaded.explain())
    choices = choose_adapters(app_ctx.settings)
    if as_json:
        payload: dict[str, Any] = {r.key: {"value": r.value, "source": r.source} for r in rows}
        payload["adapters"] = {
            c.port: {"adapter": c.adapter, "reason": c.reason, "target": c.target} for c in choices
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(title=f"fmnist settings (profile: {app_ctx.settings.profile})")
    table.add_column("key", style="cyan")
    table.add_column("value")
    table.add_column("source", style="dim")
    for row in rows:
        table.add_row(row.key, json.dumps(row.value), row.source)
    console.print(table)
    ports = Table(title="ports and the adapters chosen")
    ports.add_column("port", style="cyan")
    ports.add_column("adapter", style="bold")
    ports.add_column("why", style="dim")
    ports.add_column("target")
    for choice in choices:
        ports.add_row(choice.port, choice.adapter, choice.reason, choice.target)
    console.print(ports)


def _register_subcommands() -> None:
    from fmnist.analytics.cli import analytics_app
    from fmnist.automl.cli import automl_app
    from fmnist.batch.cli import predict_app
    from fmnist.costing.cli import cost_app
    from fmnist.data.cli import data_app
    from fmnist.demo.cli import demo_app
    from fmnist.evaluation.cli import evaluate_command
    from fmnist.explain.cli import explain_app
    from fmnist.monitoring.cli import monitor_app
    from fmnist.pipelines.cli import pipeline_app
    from fmnist.pipelines.leaderboard_cli import benchmark_command
    from fmnist.realworld.cli import experiment_app
    from fmnist.registry.cli import models_app
    from fmnist.registry.vertex_cli import vertex_app
    from fmnist.retraining.cli import retrain_command
    from fmnist.rollout.cli import ab_app, audit_command
    from fmnist.security.cli import keys_app
    from fmnist.serving.cli import serve_command
    from fmnist.streaming.cli import events_app
    from fmnist.training.baselines_cli import baselines_app
    from fmnist.training.cli import train_command
    from fmnist.training.hpo_cli import hpo_app
    from fmnist.video.cli import video_app

    app.add_typer(data_app, name="data")
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.add_typer(models_app, name="models")
    app.add_typer(pipeline_app, name="pipeline")
    app.add_typer(predict_app, name="predict")
    app.command("serve")(serve_command)
    app.add_typer(hpo_app, name="hpo")
    app.add_typer(baselines_app, name="baselines")
    app.add_typer(automl_app, name="automl")
    app.command("benchmark")(benchmark_command)
    app.add_typer(explain_app, name="explain")
    app.add_typer(experiment_app, name="experiment")
    app.add_typer(monitor_app, name="monitor")
    app.add_typer(ab_app, name="ab")
    app.command("audit")(audit_command)
    app.command("retrain")(retrain_command)
    app.add_typer(demo_app, name="demo")
    app.add_typer(events_app, name="events")
    app.add_typer(analytics_app, name="analytics")
    app.add_typer(keys_app, name="keys")
    app.add_typer(vertex_app, name="vertex")
    app.add_typer(cost_app, name="cost")
    app.add_typer(video_app, name="video")


_register_subcommands()


def main() -> None:
    """Console-script entry point."""
    app()
