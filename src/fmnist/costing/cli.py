"""``fmnist cost``: the cost analysis from measured throughput and dated list prices.

Commands import their modules when they run, so ``fmnist --help`` stays fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fmnist.cli_support import console, fail

cost_app = typer.Typer(
    help="Cost analysis: cost per 1,000 predictions per platform and variant, data path, "
    "training, break-evens and levers.",
    no_args_is_help=True,
)

RESULTS = Path("benchmarks/results")
IMAGES = Path("docs/images/cost")


def _print_tables(r: dict[str, Any]) -> None:
    from fmnist.costing.formatting import usd, volume

    for label in ("profile", "high"):
        per_day = r["profile"]["per_day" if label == "profile" else "high_per_day"]
        table = Table(title=f"serving USD per 1,000 predictions at {volume(per_day)}")
        table.add_column("platform", style="cyan")
        serving = r["serving"][label]
        for key in serving:
            table.add_column(key, justify="right")
        for name in r["platforms"]:
            table.add_row(name, *(usd(serving[k][name]["usd_per_1000"]) for k in serving))
        console.print(table)
    dp = r["data_path"]
    console.print(
        f"data path at {volume(r['profile']['per_day'])}: {usd(dp['usd_per_month'])} a month, "
        f"{usd(dp['usd_per_1000'])} per 1,000 predictions",
        highlight=False,
    )
    table = Table(title=f"no dearer than Cloud Run from ({r['reference_variant']})")
    table.add_column("platform", style="cyan")
    table.add_column("predictions a day", justify="right")
    for name, per_day in r["break_even"].items():
        table.add_row(name, volume(per_day))
    console.print(table)
    table = Table(title="training USD per run, n2-standard-4 (on demand / spot)")
    table.add_column("model", style="cyan")
    table.add_column("on demand", justify="right")
    table.add_column("spot", justify="right")
    for run in r["training"]:
        cost = run["instances"]["n2-standard-4"]
        table.add_row(run["model"], usd(cost["on_demand_usd"]), usd(cost["spot_usd"]))
    console.print(table)


@cost_app.command("report")
def report_command(
    prices: Annotated[Path, typer.Option("--prices", help="Dated list prices (JSON).")] = Path(
        "benchmarks/prices/gcp.json"
    ),
    variants: Annotated[
        Path, typer.Option("--variants", help="benchmarks/bench_variants.py's result.")
    ] = RESULTS / "variants.json",
    http: Annotated[
        Path, typer.Option("--http", help="benchmarks/bench_http.py's result.")
    ] = RESULTS / "http.json",
    training: Annotated[
        Path, typer.Option("--training", help="The leaderboard (training seconds per model).")
    ] = Path("docs/benchmarks.json"),
    serve_only: Annotated[
        Path, typer.Option("--serve-only", help="bench_serve_only.py's result (image size).")
    ] = RESULTS / "serve_only.json",
    traffic_per_day: Annotated[
        float, typer.Option("--traffic-per-day", min=1, help="Predictions a day.")
    ] = 1_000_000,
    peak_factor: Annotated[
        float, typer.Option("--peak-factor", min=1, max=2, help="Busiest hour over the mean.")
    ] = 2.0,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for cost.json and cost-report.md.")
    ] = RESULTS,
    images: Annotated[
        Path | None,
        typer.Option("--images", help="Folder for the PNGs [default: docs/images/cost, or OUT]"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Compute the cost report; write OUT/cost.json, OUT/cost-report.md and the PNGs.

    Inputs are result files of the benchmarks and a price list; a missing or invalid one is an
    error naming it (exit code 2). Re-render the docs with python benchmarks/figures.py.
    """
    from fmnist.atomic import atomic_write_text
    from fmnist.costing.plots import write_plots
    from fmnist.costing.profile import TrafficProfile
    from fmnist.costing.render import report
    from fmnist.costing.report import CostInputs, compute

    try:
        profile = TrafficProfile(traffic_per_day, peak_factor)
    except ValueError as exc:
        fail(str(exc), 2)
    image_dir = images or (IMAGES if out == RESULTS else out)
    result = compute(CostInputs(prices, http, variants, training, serve_only, profile))
    atomic_write_text(out / "cost.json", json.dumps(result, indent=2) + "\n")
    pngs = write_plots(result, image_dir)
    link = os.path.relpath(image_dir.resolve(), out.resolve()).replace(os.sep, "/") + "/"
    link = "" if link == "./" else link
    atomic_write_text(out / "cost-report.md", "# Cost analysis\n\n" + report(result, link) + "\n")
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    _print_tables(result)
    for path in [out / "cost.json", out / "cost-report.md", *pngs]:
        console.print(f"wrote {path}", highlight=False)
