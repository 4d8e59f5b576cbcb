"""The ``fmnist`` command line: a thin Typer layer whose tree follows the lifecycle.

Expected failures (:class:`~fmnist.errors.FmnistError`) print one line, ``error: ...``, and exit
non-zero; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from fmnist import __version__
from fmnist.config import LoadedSettings, Settings, load_settings
from fmnist.errors import FmnistError

console = Console()
err_console = Console(stderr=True)


def fail(message: str, exit_code: int) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr and exit with ``exit_code``."""
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code)


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


@dataclass
class AppContext:
    """What every command receives: the effective settings and the debug flag."""

    loaded: LoadedSettings
    debug: bool = False

    @property
    def settings(self) -> Settings:
        """The effective settings."""
        return self.loaded.settings


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
    ctx.obj = AppContext(loaded=_load(config, debug), debug=debug)


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
    """Print the effective settings and where each value came from."""
    app_ctx: AppContext = ctx.obj
    rows = list(app_ctx.loaded.explain())
    if as_json:
        payload = {r.key: {"value": r.value, "source": r.source} for r in rows}
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(title=f"fmnist settings (profile: {app_ctx.settings.profile})")
    table.add_column("key", style="cyan")
    table.add_column("value")
    table.add_column("source", style="dim")
    for row in rows:
        table.add_row(row.key, json.dumps(row.value), row.source)
    console.print(table)


def _register_subcommands() -> None:
    from fmnist.data.cli import data_app
    from fmnist.evaluation.cli import evaluate_command
    from fmnist.evaluation.leaderboard_cli import benchmark_command
    from fmnist.explain.cli import explain_app
    from fmnist.pipelines.cli import pipeline_app
    from fmnist.platform.automl_cli import automl_app
    from fmnist.realworld.cli import experiment_app
    from fmnist.registry.cli import models_app
    from fmnist.serving.cli import serve_command
    from fmnist.serving.predict_cli import predict_app
    from fmnist.training.baselines_cli import baselines_app
    from fmnist.training.cli import train_command
    from fmnist.training.hpo_cli import hpo_app

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


_register_subcommands()


def main() -> None:
    """Console-script entry point."""
    app()
