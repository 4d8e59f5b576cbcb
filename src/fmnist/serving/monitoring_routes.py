"""The monitoring page's API: ``GET /v1/monitoring/summary`` and ``GET /v1/monitoring/report``.

The summary (:func:`fmnist.monitoring.summary.build_summary`) is computed in a worker thread:
it reads up to ``hours`` of the prediction log. The log and the feedback store are read from
``app.state`` at request time (``prediction_log`` / ``feedback``; None when
``monitoring.log_enabled`` is false, answered 503). The report is the newest drift check's
Evidently HTML, served in a sandbox: its inline scripts run, but it can load nothing and reach
nothing (an opaque origin).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from fmnist.config import Settings
from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.journal import replay_journals
from fmnist.monitoring.report import reports_root
from fmnist.monitoring.summary import (
    DEFAULT_HOURS,
    MAX_HOURS,
    MonitoringSummary,
    build_summary,
    latest_report_html,
)
from fmnist.rollout.readout import ab_readout
from fmnist.serving.problems import ProblemError
from fmnist.serving.schemas import problem_responses

REPORT_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; sandbox allow-scripts allow-popups"
)
"""Evidently's report is one self-contained page of inline scripts (React, Plotly): it may run
them, in a sandbox, and load nothing else."""

HoursQuery = Annotated[
    float,
    Query(
        gt=0,
        le=MAX_HOURS,
        allow_inf_nan=False,
        description=f"length of the window in hours, up to {MAX_HOURS} (90 days)",
    ),
]


def add_monitoring_routes(app: FastAPI, settings: Settings) -> None:
    """Add the monitoring summary and report routes to ``app``."""
    reports = reports_root(settings.home)

    @app.get(
        "/v1/monitoring/summary",
        tags=["monitoring"],
        summary="Traffic, confidence, live accuracy, drift and alerts for the monitoring page",
        response_model=MonitoringSummary,
        responses=problem_responses(422, 501, 503),
    )
    async def monitoring_summary(request: Request, hours: HoursQuery = DEFAULT_HOURS) -> Response:
        """Predictions per class over the last ``hours`` (24 buckets), the confidence
        histogram, the unknown rate, live accuracy per model version with Wilson intervals,
        the latest drift verdict per test and the firing alerts."""
        log = request.app.state.prediction_log
        if log is None:
            raise ProblemError(
                503, "the prediction log is off (monitoring.log_enabled)", slug="log-disabled"
            )
        # The newest predictions may still be in a journal: move them first.
        await run_in_threadpool(replay_journals, log)
        try:
            summary = await run_in_threadpool(
                build_summary, log, request.app.state.feedback, settings, hours=hours
            )
            rollout = request.app.state.rollout
            if rollout.active and request.app.state.feedback is not None:
                readout = await run_in_threadpool(
                    ab_readout,
                    log,
                    request.app.state.feedback,
                    experiment=rollout.config.experiment,
                    since=rollout.started_at,
                )
                summary = summary.model_copy(
                    update={"experiment": {**rollout.describe(), "readout": readout.to_dict()}}
                )
        except MonitoringError as exc:
            raise ProblemError(422, str(exc), slug="invalid-window") from None
        except ModuleNotFoundError as exc:  # the serving-only install (no `monitor` extra)
            raise ProblemError(
                501,
                f"monitoring summaries need the `monitor` extra ({exc.name} is not installed)",
                slug="not-installed",
            ) from None
        return Response(
            summary.model_dump_json(),
            media_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    @app.get(
        "/v1/monitoring/report",
        tags=["monitoring"],
        summary="The latest drift check's Evidently report",
        response_class=Response,
        responses={
            200: {"description": "the HTML report", "content": {"text/html": {}}},
            **problem_responses(404),
        },
    )
    async def monitoring_report() -> Response:
        """The Evidently HTML of the newest drift check (``fmnist monitor drift``)."""
        path = await run_in_threadpool(latest_report_html, reports)
        if path is None:
            raise ProblemError(
                404,
                "no drift report yet: run `fmnist monitor drift` (or `fmnist monitor run`)",
                slug="report-not-found",
            )
        return FileResponse(
            path,
            media_type="text/html; charset=utf-8",
            headers={
                "Content-Security-Policy": REPORT_CSP,
                "X-Content-Type-Options": "nosniff",
                "X-Report-Id": path.parent.name,
                "Cache-Control": "no-store",
            },
        )
