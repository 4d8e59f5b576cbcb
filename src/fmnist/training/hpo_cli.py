"""``fmnist hpo``: hyperparameter search with Optuna, then retrain and register the best."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fmnist.cli_support import AppContext, console
from fmnist.training.config import PRESETS

if TYPE_CHECKING:
    import optuna

hpo_app = typer.Typer(help="Hyperparameter search (Optuna).", no_args_is_help=True)


def _print_trial(trial: optuna.trial.FrozenTrial) -> None:
    value = f"{trial.value:.4f}" if trial.value is not None else "-"
    epochs = max(trial.intermediate_values, default=0)
    params = ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items()
    )
    console.print(
        f"trial {trial.number}: {trial.state.name.lower()} after {epochs} epoch(s), "
        f"val_acc {value} ({params})",
        highlight=False,
    )


@hpo_app.command("run")
def run(
    ctx: typer.Context,
    family: Annotated[str, typer.Option("--family", "-f", help="cnn | resnet")] = "cnn",
    trials: Annotated[
        int, typer.Option("--trials", "-n", min=1, help="Finished trials the study should hold.")
    ] = 20,
    budget_minutes: Annotated[
        float, typer.Option("--budget-minutes", min=0.1, help="Wall-clock budget of the search.")
    ] = 60.0,
    storage: Annotated[
        str | None,
        typer.Option("--storage", help="Optuna RDB URL (default: SQLite under home)."),
    ] = None,
    study: Annotated[
        str | None, typer.Option("--study", help="Study name (default: fmnist-<family>).")
    ] = None,
    preset_base: Annotated[
        str | None,
        typer.Option(
            "--preset-base",
            help=f"Preset the trials start from (default: the family's): {', '.join(PRESETS)}.",
        ),
    ] = None,
    train_subset: Annotated[int | None, typer.Option("--train-subset", min=10)] = None,
    threads: Annotated[int | None, typer.Option("--threads", min=1)] = None,
    snapshot: Annotated[str | None, typer.Option("--snapshot", "-s", help="Snapshot id.")] = None,
    retrain: Annotated[
        bool,
        typer.Option("--retrain/--no-retrain", help="Retrain and register the best trial."),
    ] = True,
    quantize: Annotated[bool, typer.Option("--quantize/--no-quantize")] = True,
    model_name: Annotated[
        str | None,
        typer.Option("--model-name", help="Registered model name (default: hpo-<family>)."),
    ] = None,
) -> None:
    """Search hyperparameters with pruning and a time budget; register the best as hpo-FAMILY.

    Resumable: runs continue until the study in --storage holds --trials finished trials.
    Several machines may search one study at once on a PostgreSQL --storage URL.
    """
    from fmnist.errors import ConfigError
    from fmnist.evaluation.cli import print_outcome
    from fmnist.training.cli import print_trained
    from fmnist.training.hpo import FAMILIES, run_hpo

    if family not in FAMILIES:
        raise ConfigError(f"unknown family {family!r}; choose one of: {', '.join(FAMILIES)}")
    app_ctx: AppContext = ctx.obj
    outcome = run_hpo(
        app_ctx.services,
        family=family,
        trials=trials,
        budget_minutes=budget_minutes,
        study_name=study,
        storage=storage,
        preset_base=preset_base,
        overrides={"train_subset": train_subset, "threads": threads},
        snapshot_id=snapshot,
        retrain=retrain,
        quantize=quantize,
        model_name=model_name,
        on_trial_end=_print_trial,
    )
    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(outcome.states.items()))
    console.print(
        f"study {outcome.study_name} in {outcome.storage}: {outcome.new_trials} new trial(s), "
        f"{states}" + (" (stopped by the time budget)" if outcome.stopped_by_budget else ""),
        highlight=False,
    )
    console.print(
        f"best trial {outcome.best_trial}: validation accuracy {outcome.best_value:.4f}, "
        f"config {outcome.best_config.config_hash()}",
        highlight=False,
    )
    if outcome.trained is not None:
        print_trained(outcome.trained)
    if outcome.evaluation is not None:
        print_outcome(outcome.evaluation)
        console.print(f"registered model: {outcome.registered_model}")
