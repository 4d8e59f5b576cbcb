"""``fmnist automl``: Vertex AI AutoML image classification (export, then launch)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from fmnist.cli_support import AppContext, console

automl_app = typer.Typer(
    help="Vertex AI AutoML image classification (the GCP AutoML baseline).",
    no_args_is_help=True,
)


@automl_app.command("export-vertex")
def export_vertex(
    ctx: typer.Context,
    bucket: Annotated[
        str, typer.Option("--bucket", help="Prefix for the images, e.g. gs://BUCKET/fmnist.")
    ],
    out: Annotated[
        str | None,
        typer.Option("--out", help="Import CSV (default: <bucket>/import.csv)."),
    ] = None,
    snapshot: Annotated[str | None, typer.Option("--snapshot", "-s", help="Snapshot id.")] = None,
    limit_per_split: Annotated[
        int | None, typer.Option("--limit-per-split", min=1, help="Export the first N per split.")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Upload threads.")] = 16,
) -> None:
    """Write a snapshot as PNG files and a Vertex AI import CSV (ML_USE,GCS_PATH,LABEL)."""
    from fmnist.automl.vertex import export_snapshot
    from fmnist.data.snapshot import load_snapshot

    app_ctx: AppContext = ctx.obj
    services = app_ctx.services
    loaded = load_snapshot(services.storage, snapshot)
    result = export_snapshot(
        loaded,
        bucket,
        services.open_storage,
        csv_url=out,
        limit_per_split=limit_per_split,
        workers=workers,
    )
    counts = ", ".join(f"{n:,} {k}" for k, n in result.counts.items())
    console.print(
        f"exported snapshot {result.snapshot_id}: {result.rows:,} images ({counts}) under "
        f"{result.image_prefix}",
        highlight=False,
    )
    console.print(f"import file: {result.csv_url}", highlight=False)


@automl_app.command("launch")
def launch_command(
    ctx: typer.Context,
    csv_url: Annotated[
        str | None, typer.Option("--csv", help="Import CSV written by export-vertex.")
    ] = None,
    bucket: Annotated[
        str | None, typer.Option("--bucket", help="Export prefix (its import.csv is used).")
    ] = None,
    budget_node_hours: Annotated[
        float, typer.Option("--budget-node-hours", help="Training budget, 8 to 800 node hours.")
    ] = 8.0,
    project: Annotated[str | None, typer.Option("--project", help="Default: gcp.project.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Default: gcp.region.")] = None,
    display_name: Annotated[str, typer.Option("--display-name")] = "fmnist-automl",
    disable_early_stopping: Annotated[
        bool, typer.Option("--disable-early-stopping", help="Spend the whole budget.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the job specification as JSON; launch nothing.")
    ] = False,
) -> None:
    """Create the Vertex AI dataset and start an AutoML image classification training job.

    Needs google-cloud-aiplatform (pip install google-cloud-aiplatform) unless --dry-run.
    Training is billed per node hour (8 node hours: about $28): see docs/automl.md.
    """
    from fmnist.automl.vertex import build_job_spec, launch
    from fmnist.errors import ConfigError

    app_ctx: AppContext = ctx.obj
    gcp = app_ctx.settings.gcp
    if csv_url is None:
        if bucket is None:
            raise ConfigError("give --csv or --bucket (the prefix used by export-vertex)")
        csv_url = f"{bucket.rstrip('/')}/import.csv"
    staging = f"gs://{gcp.bucket}" if gcp.bucket else None
    spec = build_job_spec(
        csv_url,
        project=project or gcp.project,
        location=region or gcp.region,
        staging_bucket=staging,
        display_name=display_name,
        budget_node_hours=budget_node_hours,
        disable_early_stopping=disable_early_stopping,
    )
    if dry_run:
        typer.echo(json.dumps(spec.to_dict(), indent=2))
        return
    names = launch(spec)
    console.print(
        f"started AutoML training job {names['training_job'] or spec.training_job['display_name']}"
        f" on dataset {names['dataset']}; up to "
        f"${spec.cost['estimated_max_training_usd']:.2f} of training at list price",
        highlight=False,
    )
