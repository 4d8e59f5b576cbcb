"""``fmnist pipeline``: run the main job, and the KFP pipelines (compile, submit, schedule)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from fmnist.cli_support import AppContext, console, fail
from fmnist.evaluation.cli import print_outcome
from fmnist.training.cli import print_trained
from fmnist.training.config import PRESETS, make_config

pipeline_app = typer.Typer(help="Run lifecycle pipelines.", no_args_is_help=True)

RUNNERS = ("local", "kfp-local", "kubeflow", "vertex-pipelines")
PipelineOption = Annotated[
    str, typer.Option("--pipeline", help="training | batch-prediction | drift-check.")
]


@pipeline_app.command("run")
def run(
    ctx: typer.Context,
    preset: Annotated[
        str, typer.Option("--preset", "-p", help=f"One of: {', '.join(PRESETS)}.")
    ] = "default",
    max_minutes: Annotated[float | None, typer.Option("--max-minutes")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    runner: Annotated[
        str | None,
        typer.Option(
            "--runner",
            help=f"{' | '.join(RUNNERS)} (default: the orchestration port's adapter).",
        ),
    ] = None,
) -> None:
    """Snapshot -> validate -> train -> evaluate -> register -> promote if the gates pass."""
    app_ctx: AppContext = ctx.obj
    settings = app_ctx.settings
    chosen = runner or settings.ports.orchestration or "local"
    if chosen not in RUNNERS:
        fail(f"--runner must be one of {', '.join(RUNNERS)}, got {chosen!r}", 2)
    if chosen != "local":
        ports = settings.ports.model_copy(update={"orchestration": chosen})
        services = app_ctx.build_services(settings.model_copy(update={"ports": ports}))
        parameters = {"preset": preset, "max_minutes": max_minutes or 0.0}
        outcome = services.orchestrator.run("training", parameters)
        typer.echo(  # one unwrapped line: the outputs are JSON
            f"{outcome.pipeline} on {chosen}: {outcome.state} (run {outcome.run_id}) "
            f"{json.dumps(dict(outcome.outputs))}"
        )
        return
    from fmnist.pipelines.local import run_main_job

    config = make_config(preset, max_minutes=max_minutes)
    result = run_main_job(app_ctx.services, config, show_progress=progress)
    console.rule("main job finished")
    console.print(f"snapshot {result.manifest.snapshot_id} (validation passed)")
    print_trained(result.trained)
    print_outcome(result.outcome)
    console.print(
        f"test accuracy [bold]{result.outcome.report.accuracy:.4f}[/bold]. Look in MLflow: "
        f"mlflow ui --backend-store-uri {settings.resolved_tracking_uri}"
    )


@pipeline_app.command("compile")
def compile_command(
    target: Annotated[str, typer.Option("--target", help="kfp (KFP v2 IR YAML).")] = "kfp",
    pipeline: PipelineOption = "training",
    out: Annotated[Path | None, typer.Option("--out", help="YAML file to write.")] = None,
    all_to: Annotated[
        Path | None, typer.Option("--all", help="Write every pipeline into this folder.")
    ] = None,
) -> None:
    """Compile a pipeline (or all of them) to KFP's IR YAML, for Kubeflow or Vertex AI."""
    from fmnist.kubeflow.runners import compile_pipeline, known_pipelines

    if target != "kfp":
        fail(f"--target must be kfp, got {target!r}", 2)
    if all_to is not None:
        for name in known_pipelines():
            console.print(f"wrote {compile_pipeline(name, all_to / f'{name}.yaml')}")
        return
    if pipeline not in known_pipelines():
        fail(f"--pipeline must be one of {', '.join(known_pipelines())}, got {pipeline!r}", 2)
    if out is None:
        fail("--out FILE (or --all DIR) is required", 2)
    console.print(f"wrote {compile_pipeline(pipeline, out)}")


def _parameters(values: list[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            fail(f"--param must be KEY=VALUE, got {item!r}", 2)
        try:
            parsed[key] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key] = raw
    return parsed


@pipeline_app.command("submit")
def submit_command(
    ctx: typer.Context,
    target: Annotated[str, typer.Option("--target", help="vertex (Vertex AI Pipelines).")],
    pipeline: PipelineOption = "training",
    param: Annotated[
        list[str] | None, typer.Option("--param", help="KEY=VALUE pipeline parameter.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the job without calling GCP.")
    ] = False,
) -> None:
    """Compile a pipeline and submit it as a Vertex AI PipelineJob (project, region, pipeline
    root, CMEK key, labels, service account and network from the gcp settings)."""
    import tempfile

    from fmnist.kubeflow.runners import compile_pipeline, known_pipelines, pipeline_arguments
    from fmnist.kubeflow.vertex import job_arguments, submit, submit_arguments

    if target != "vertex":
        fail(f"--target must be vertex, got {target!r}", 2)
    if pipeline not in known_pipelines():
        fail(f"--pipeline must be one of {', '.join(known_pipelines())}, got {pipeline!r}", 2)
    gcp = ctx.obj.settings.gcp
    parameters = pipeline_arguments(pipeline, _parameters(param or []))
    with tempfile.TemporaryDirectory(prefix="fmnist-kfp-") as tmp:
        template = compile_pipeline(pipeline, Path(tmp) / f"{pipeline}.yaml")
        if dry_run:
            job = job_arguments(gcp, pipeline, template, parameters)
            job["template_path"] = f"<compiled {pipeline}.yaml>"
            typer.echo(json.dumps({"job": job, "submit": submit_arguments(gcp)}, indent=2))
            return
        console.print(f"submitted {submit(gcp, pipeline, template, parameters)}")


@pipeline_app.command("schedule")
def schedule_command(
    ctx: typer.Context,
    target: Annotated[str, typer.Option("--target", help="vertex (Vertex AI Pipelines).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the schedules without calling GCP.")
    ] = False,
) -> None:
    """Create the schedules as code (weekly retrain, hourly drift check) on Vertex AI."""
    import tempfile
    from dataclasses import asdict

    from fmnist.kubeflow.runners import compile_pipeline
    from fmnist.kubeflow.vertex import SCHEDULES, create_schedules

    if target != "vertex":
        fail(f"--target must be vertex, got {target!r}", 2)
    if dry_run:
        typer.echo(json.dumps([asdict(s) for s in SCHEDULES], indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="fmnist-kfp-") as tmp:
        templates = {
            s.pipeline: compile_pipeline(s.pipeline, Path(tmp) / f"{s.pipeline}.yaml")
            for s in SCHEDULES
        }
        for name in create_schedules(ctx.obj.settings.gcp, templates):
            console.print(f"created {name}")
