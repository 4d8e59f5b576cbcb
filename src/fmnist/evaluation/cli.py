"""``fmnist evaluate``: evaluate a training run, apply the gates, register, promote."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fmnist.cli_support import AppContext, console

if TYPE_CHECKING:
    from fmnist.evaluation.run import EvaluationOutcome


def print_outcome(outcome: EvaluationOutcome) -> None:
    """Print the metrics, the gate decision and the registry result."""
    report = outcome.report
    table = Table(title=f"evaluation of run {outcome.run_id} on {report.n:,} test images")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = {
        "accuracy": report.accuracy,
        "top-2 accuracy": report.top2_accuracy,
        "macro F1": report.macro_f1,
        "ECE before temperature": report.ece_before_temperature or 0.0,
        "ECE after temperature": report.ece,
        "recall disparity (max-min)": report.recall_disparity,
    }
    rows |= {f"robustness: {k}": v for k, v in (report.robustness or {}).items()}
    for name, value in rows.items():
        table.add_row(name, f"{value:.4f}")
    console.print(table)
    if outcome.quantization is not None:
        q = outcome.quantization
        console.print(
            f"INT8: accuracy {q.int8_accuracy:.4f} (drop {q.accuracy_drop_points:.2f} points), "
            f"{q.speedup:.2f}x faster, {q.int8_mb:.2f} MB vs {q.fp32_mb:.2f} MB: "
            + ("registered with the version" if q.accepted else "not registered")
        )
    decision = outcome.decision
    if decision.passed:
        console.print("[green]gates passed[/green]")
    else:
        console.print("[bold red]gates failed[/bold red]")
        for reason in decision.reasons:
            console.print(f"  - {reason}")
    if outcome.version is not None:
        state = "promoted to champion" if outcome.promoted else "kept as challenger"
        console.print(f"registered version {outcome.version.version}: {state}")
    for name, path in outcome.artifacts.items():
        console.print(f"  {name}: {path}")


def evaluate_command(
    ctx: typer.Context,
    run_id: Annotated[
        str | None, typer.Argument(help="Training run id (default: the newest).")
    ] = None,
    register: Annotated[bool, typer.Option("--register/--no-register")] = True,
    promote: Annotated[
        bool, typer.Option("--promote/--no-promote", help="Promote when the gates pass.")
    ] = True,
    quantize: Annotated[bool, typer.Option("--quantize/--no-quantize")] = True,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with code 1 when a gate fails.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the outcome as JSON (for pipelines).")
    ] = False,
) -> None:
    """Evaluate on the test set, apply the promotion gates, register and promote."""
    import json

    from fmnist.evaluation.run import evaluate_and_register

    app_ctx: AppContext = ctx.obj
    outcome = evaluate_and_register(
        app_ctx.services, run_id, register=register, promote=promote, quantize=quantize
    )
    if as_json:
        summary = {
            "run_id": outcome.run_id,
            "accuracy": outcome.report.accuracy,
            "gates_passed": outcome.decision.passed,
            "gate_reasons": outcome.decision.reasons,
            "version": outcome.version.version if outcome.version else None,
            "promoted": outcome.promoted,
        }
        typer.echo(json.dumps(summary))
    else:
        print_outcome(outcome)
    if strict and not outcome.decision.passed:
        raise typer.Exit(1)
