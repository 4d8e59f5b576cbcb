"""``fmnist vertex``: serve a model export on Vertex AI (upload, deploy with a traffic share,
batch prediction). ``--dry-run`` prints the SDK call's arguments without calling it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from fmnist.cli_support import AppContext, console
from fmnist.registry import vertex_endpoints as vertex

vertex_app = typer.Typer(
    help="Vertex AI endpoints: upload a model export, deploy it (canary share), batch-predict.",
    no_args_is_help=True,
)

DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print the SDK call's arguments; call nothing.")
]
Machine = Annotated[str, typer.Option("--machine-type", help="Compute of each replica.")]
MinReplicas = Annotated[int, typer.Option("--min-replicas", min=1)]
MaxReplicas = Annotated[int, typer.Option("--max-replicas", min=1)]


def _show(call: str, arguments: dict[str, Any]) -> None:
    typer.echo(json.dumps({"call": call, "arguments": arguments}, indent=2, default=str))


@vertex_app.command("upload")
def upload(
    ctx: typer.Context,
    export_uri: Annotated[
        str, typer.Argument(help="gs:// folder holding a `fmnist models export`.")
    ],
    image: Annotated[str, typer.Option("--image", help="The API image (Artifact Registry).")],
    dry_run: DryRun = False,
) -> None:
    """Upload the export as a Vertex AI model served by the API image."""
    gcp = ctx.obj.settings.gcp
    arguments = vertex.upload_arguments(gcp, export_uri, image)
    if dry_run:
        _show("aiplatform.Model.upload", arguments)
        return
    console.print(f"uploaded {vertex.upload(gcp, export_uri, image)}")


@vertex_app.command("deploy")
def deploy(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model resource name or id (from `upload`).")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="Endpoint resource name or id.")],
    traffic: Annotated[
        int,
        typer.Option(
            "--traffic", min=0, max=100, help="Share for this model; below 100: a canary."
        ),
    ] = 100,
    machine_type: Machine = "n1-standard-2",
    min_replicas: MinReplicas = 1,
    max_replicas: MaxReplicas = 2,
    dry_run: DryRun = False,
) -> None:
    """Deploy a model to an endpoint with its share of traffic."""
    app_ctx: AppContext = ctx.obj
    deployment = vertex.Deployment(machine_type, min_replicas, max_replicas, traffic)
    arguments = vertex.deploy_arguments(app_ctx.settings.gcp, deployment)
    if dry_run:
        _show("aiplatform.Model.deploy", {"endpoint": endpoint, **arguments})
        return
    name = vertex.deploy(app_ctx.settings.gcp, model, endpoint, deployment)
    console.print(f"deployed {model} to {name} with {traffic}% of the traffic")


@vertex_app.command("batch-predict")
def batch_predict(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model resource name or id.")],
    source: Annotated[str, typer.Option("--source", help="gs:// JSON Lines of instances.")],
    destination: Annotated[str, typer.Option("--destination", help="gs:// output prefix.")],
    machine_type: Machine = "n1-standard-2",
    min_replicas: MinReplicas = 1,
    max_replicas: MaxReplicas = 2,
    dry_run: DryRun = False,
) -> None:
    """Start a Vertex AI batch prediction job."""
    gcp = ctx.obj.settings.gcp
    deployment = vertex.Deployment(machine_type, min_replicas, max_replicas)
    arguments = vertex.batch_prediction_arguments(gcp, source, destination, deployment)
    if dry_run:
        _show("aiplatform.Model.batch_predict", arguments)
        return
    job = vertex.batch_predict(gcp, model, source, destination, deployment)
    console.print(f"batch prediction job {job} started")
