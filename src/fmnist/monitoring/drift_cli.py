"""``fmnist monitor drift`` and ``fmnist monitor run``: label-free drift checks of logged traffic.

Registered on ``monitor_app`` by :mod:`fmnist.monitoring.cli`. The verdict is data, not an
error: both exit 0 whether or not drift is detected.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fmnist.cli_support import AppContext, console, err_console
from fmnist.errors import FmnistError
from fmnist.monitoring.errors import MonitoringError

if TYPE_CHECKING:
    from fmnist.monitoring.drift import DriftResult
    from fmnist.monitoring.monitor import MonitorTarget

logger = logging.getLogger(__name__)

LastOption = Annotated[
    int | None, typer.Option("--last", help="The newest N predictions (default drift.window).")
]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="Predictions since an ISO 8601 time or an age: 24h.")
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="Version to compare with: alias, number or name@ref (served)."),
]
ReferenceOption = Annotated[
    Path | None,
    typer.Option("--reference", help="Folder with drift_reference.{npz,json} (and model.onnx)."),
]
AnyModelOption = Annotated[
    bool,
    typer.Option("--any-model", help="Check the traffic of every model, not only this one's."),
]


def _check(
    app_ctx: AppContext,
    *,
    last: int | None,
    since: str | None,
    model: str | None,
    reference: Path | None,
    any_model: bool,
) -> tuple[DriftResult, MonitorTarget, int]:
    from fmnist.monitoring.monitor import check_traffic
    from fmnist.monitoring.timespec import parse_time

    if last is not None and since is not None:
        raise MonitoringError("give --last or --since, not both")
    if last is not None and last < 1:
        raise MonitoringError(f"--last must be at least 1, got {last}")
    return check_traffic(
        app_ctx.services,
        last=last,
        since=parse_time(since) if since is not None else None,
        model=model,
        reference=reference,
        any_model=any_model,
    )


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.3e}"


def _print(result: DriftResult, target: MonitorTarget, skipped: int) -> None:
    from rich.table import Table

    ref = result.reference
    verdict = "[bold red]DRIFT DETECTED[/]" if result.drift_detected else "[green]no drift[/]"
    console.print(
        f"{verdict}: {result.window.size} predictions ({result.window.start} .. "
        f"{result.window.end}) against {ref.model_name} v{ref.model_version} "
        f"({ref.n} reference images; {target.origin}); alpha {result.alpha}, "
        f"{result.correction}"
    )
    table = Table()
    for column in ("test", "statistic", "p-value", "threshold", "fired"):
        table.add_column(column, justify="left" if column == "test" else "right")
    for t in result.tests:
        fired = "[red]yes[/]" if t.fired else ("no" if t.in_verdict else "(not in verdict)")
        table.add_row(t.name, _fmt(t.statistic), _fmt(t.p_value), _fmt(t.threshold), fired)
    console.print(table)
    if ref.embedding_kind != "penultimate":
        console.print(f"note: {ref.embedding_note}")
    if skipped:
        console.print(f"note: {skipped} records without their input were left out")
    if result.report_path:
        console.print(f"report: {result.report_path}")


def drift_command(
    ctx: typer.Context,
    last: LastOption = None,
    since: SinceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    model: ModelOption = None,
    reference: ReferenceOption = None,
    any_model: AnyModelOption = False,
) -> None:
    """Compare recent traffic with the model's reference; print the verdict and every test."""
    result, target, skipped = _check(
        ctx.obj, last=last, since=since, model=model, reference=reference, any_model=any_model
    )
    if as_json:
        payload = result.model_dump(mode="json")
        payload["skipped_without_input"] = skipped
        typer.echo(json.dumps(payload))
        return
    _print(result, target, skipped)


def run_command(
    ctx: typer.Context,
    interval: Annotated[
        float | None, typer.Option("--interval", help="Seconds between checks (drift.interval_s).")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Check once and exit.")] = False,
    port: Annotated[
        int | None, typer.Option("--port", help="Prometheus port (drift.metrics_port; 0: off).")
    ] = None,
    last: LastOption = None,
    model: ModelOption = None,
    reference: ReferenceOption = None,
    any_model: AnyModelOption = False,
) -> None:
    """Check drift periodically, update the Prometheus gauges and raise alerts."""
    from fmnist.monitoring.metrics import DriftMetrics
    from fmnist.monitoring.monitor import raise_alerts

    app_ctx: AppContext = ctx.obj
    drift = app_ctx.settings.drift
    pause = drift.interval_s if interval is None else interval
    if pause <= 0:
        raise MonitoringError(f"--interval must be positive, got {pause}")
    metrics = DriftMetrics()
    metrics_port = drift.metrics_port if port is None else port
    if metrics_port:
        metrics.serve(metrics_port, drift.metrics_host)
        err_console.print(f"drift gauges on http://{drift.metrics_host}:{metrics_port}/metrics")
    while True:
        result: DriftResult | None = None
        try:
            result, _, _ = _check(
                app_ctx,
                last=last,
                since=None,
                model=model,
                reference=reference,
                any_model=any_model,
            )
        except (FmnistError, OSError, ValueError) as exc:  # too little traffic, no log yet,
            if once:  # registry unreachable: a long-running monitor tries again next time
                raise
            err_console.print(f"drift check skipped: {exc}", markup=False, highlight=False)
        if result is not None:
            metrics.update(result, time.time())
            verdict = "drift detected" if result.drift_detected else "no drift"
            err_console.print(
                f"{datetime.now(UTC).isoformat()} {verdict} ({result.window.size} predictions, "
                f"report {result.report_path})",
                markup=False,
                highlight=False,
            )
            if once:
                typer.echo(json.dumps(result.model_dump(mode="json")))
        raise_alerts(app_ctx.settings, result)
        for hook in app_ctx.after_drift_check:  # the closed loop: retraining and rollout
            try:
                hook(app_ctx.services, result)
            except (FmnistError, OSError) as exc:
                if once:
                    raise
                err_console.print(f"after the check: {exc}", markup=False, highlight=False)
        if once:
            return
        time.sleep(pause)
