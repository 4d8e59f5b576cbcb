"""``fmnist demo``: the system end to end, narrated step by step.

The command imports its modules when it runs, so ``fmnist --help`` stays fast.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from fmnist.cli_support import AppContext, console, fail

demo_app = typer.Typer(help="Run the system end to end, narrated.", no_args_is_help=True)


@demo_app.command("loop")
def loop_command(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="Work folder (default: a new temporary one; yours is untouched)."
        ),
    ] = None,
    variant: Annotated[
        str,
        typer.Option("--variant", help="good (promotion) or bad (a broken labeller: rollback)."),
    ] = "good",
    as_json: Annotated[bool, typer.Option("--json", help="Also print the result as JSON.")] = False,
) -> None:
    """The closed loop: clean traffic changes nothing; drift -> alert -> retrain -> gates ->
    shadow -> canary -> promotion (or rollback), with a load probe across the promotion."""
    from dataclasses import asdict

    from fmnist.demo.loop import run_loop

    if variant not in ("good", "bad"):
        fail(f"--variant must be good or bad, got {variant!r}", 2)
    app_ctx: AppContext = ctx.obj
    folder = home or Path(tempfile.mkdtemp(prefix="fmnist-loop-"))
    console.print(f"[bold]closed loop[/bold] ({variant} candidate) in {folder}")

    def say(message: str) -> None:
        console.print(f"  - {message}", highlight=False, markup=False)

    result = run_loop(folder, app_ctx.build_services, variant=variant, say=say)  # type: ignore[arg-type]
    console.print(f"audit log: {' -> '.join(result.audit_actions)}", highlight=False)
    if as_json:
        typer.echo(json.dumps(asdict(result), indent=2, default=str))
