"""The static analytics dashboard: the Looker tiles, computed from the local analytics store.

:func:`collect` runs the ``dashboard_*`` named queries (BigQuery dialect, through the analytics
port) and reads the drift monitor's stored checks and the cost-per-prediction result;
:func:`summarise` turns that into the figures of the page (:class:`DashboardSummary`, written as
JSON). The charts are :mod:`fmnist.analytics.charts`, the page :mod:`fmnist.analytics.page`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from fmnist.analytics.tables import run_query
from fmnist.errors import FmnistError

if TYPE_CHECKING:
    from fmnist.platform.analytics import Analytics

CONFIDENCE = 0.95
"""Confidence level of the live-accuracy intervals (Wilson)."""


class DashboardError(FmnistError):
    """The dashboard cannot be built (no home, no predictions, an unreadable cost file)."""


@dataclass(frozen=True)
class DriftRun:
    """One stored drift check: when (the end of the window it checked), its verdict and, per
    test, ``(statistic, p-value, fired)``."""

    at: datetime
    detected: bool
    window_size: int
    model_version: int | None
    tests: dict[str, tuple[float | None, float | None, bool]]


@dataclass(frozen=True)
class CostFigures:
    """Cost per prediction per deployment option and traffic level, from ``benchmarks/cost.py``."""

    source: str
    computed_at: str
    machine: str
    levels: list[float]
    """Requests/s of each level."""
    usd_per_prediction: dict[str, list[float]]
    """Option -> total USD per prediction at each level."""


@dataclass(frozen=True)
class DashboardData:
    """What the charts and the summary are made of (rows as the queries return them)."""

    since: datetime | None
    analytics_target: str
    totals: dict[str, Any]
    volume: list[dict[str, Any]]
    latency: list[dict[str, Any]]
    class_mix: list[dict[str, Any]]
    feedback: list[dict[str, Any]]
    drift: list[DriftRun] = field(default_factory=list)
    cost: CostFigures | None = None


def _aware(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _normalise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with ``hour`` as aware UTC datetimes (DuckDB and BigQuery differ in time zones)."""
    return [{**r, "hour": _aware(r["hour"])} if "hour" in r else r for r in rows]


def drift_history(reports: Path, since: datetime | None = None) -> list[DriftRun]:
    """The stored drift checks under ``reports`` (``<home>/monitoring/reports``), oldest first;
    folders whose ``drift.json`` is unreadable are left out."""
    from pydantic import ValidationError

    from fmnist.monitoring.drift import DriftResult
    from fmnist.monitoring.summary import DRIFT_JSON, report_folders

    runs = []
    for folder in report_folders(reports):
        try:
            result = DriftResult.model_validate_json((folder / DRIFT_JSON).read_bytes())
        except (OSError, ValidationError):
            continue
        at = _aware(result.window.end or result.checked_at)
        if since is not None and at < since:
            continue
        runs.append(
            DriftRun(
                at=at,
                detected=result.drift_detected,
                window_size=result.window.size,
                model_version=result.reference.model_version,
                tests={t.name: (t.statistic, t.p_value, t.fired) for t in result.tests},
            )
        )
    return sorted(runs, key=lambda r: r.at)


def _total(option: dict[str, Any]) -> float:
    """An option's USD per prediction, everything included (``total_usd_per_prediction``, or
    the sum of its ``usd_per_prediction`` parts in the first layout of ``cost.json``)."""
    if "total_usd_per_prediction" in option:
        return float(option["total_usd_per_prediction"])
    return float(sum(option["usd_per_prediction"].values()))


def load_cost(path: Path) -> CostFigures:
    """The cost-per-prediction result of ``benchmarks/cost.py`` (``cost.json``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        levels = data["levels"]
        options = list(levels[0]["options"])
        return CostFigures(
            source=str(path),
            computed_at=str(data["computed_at"]),
            machine=str(data["throughput"]["machine"]),
            levels=[float(level["rps"]) for level in levels],
            usd_per_prediction={
                option: [_total(level["options"][option]) for level in levels] for option in options
            },
        )
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise DashboardError(f"{path}: not a readable cost result ({exc})") from exc


def collect(
    analytics: Analytics,
    *,
    analytics_target: str,
    reports: Path | None,
    since: datetime | None = None,
    cost_file: Path | None = None,
) -> DashboardData:
    """Run the dashboard's queries through ``analytics`` and read the drift checks under
    ``reports`` and the cost result ``cost_file`` (each optional). Raises
    :class:`DashboardError` naming ``analytics_target`` when there are no predictions."""
    cost = load_cost(cost_file) if cost_file is not None else None  # a bad file fails first
    parameters = {"since": since} if since is not None else None
    totals = run_query(analytics, "dashboard_totals", parameters)
    if not totals or not totals[0]["predictions"]:
        where = f" since {since.isoformat()}" if since is not None else ""
        raise DashboardError(
            f"no predictions{where} in the analytics tables at {analytics_target}: fold the "
            "prediction log into them first (fmnist events consume --once)"
        )
    return DashboardData(
        since=since,
        analytics_target=analytics_target,
        totals=totals[0],
        volume=_normalise(run_query(analytics, "dashboard_volume", parameters)),
        latency=_normalise(run_query(analytics, "dashboard_latency", parameters)),
        class_mix=run_query(analytics, "dashboard_class_mix", parameters),
        feedback=_normalise(run_query(analytics, "dashboard_feedback", parameters)),
        drift=drift_history(reports, since) if reports is not None else [],
        cost=cost,
    )


class AccuracyFigure(BaseModel):
    """Live accuracy of one model version and arm from labelled feedback, Wilson interval."""

    model_version: int
    arm: str
    labelled: int
    correct: int
    accuracy: float
    low: float
    high: float


class DriftFigure(BaseModel):
    """The drift checks of the period: how many, how many detected drift, the last verdict, and
    how often each test fired."""

    checks: int
    detected: int
    last_at: str | None
    last_detected: bool | None
    fired: dict[str, int]


class CostFigure(BaseModel):
    """Cost per prediction at the traffic level nearest the observed rate, and the period's
    estimated cost on that option."""

    source: str
    computed_at: str
    option: str
    level_rps: float
    observed_rps: float
    usd_per_prediction: float
    usd_period: float


class DashboardSummary(BaseModel):
    """The figures of the dashboard page (its JSON summary)."""

    generated_at: str
    since: str | None
    analytics: str
    first: str
    last: str
    predictions: int
    model_versions: int
    by_version_arm: dict[str, int]
    unknown_rate: float
    latency_p50_ms: float
    latency_p95_ms: float
    labelled: int
    accuracy: list[AccuracyFigure]
    class_mix: dict[str, dict[str, float]]
    """Model version -> class -> share of its predictions."""
    drift: DriftFigure
    cost: CostFigure | None


def wilson(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson interval of ``correct / n`` (``n >= 1``)."""
    from fmnist.evaluation.slices import wilson_interval

    low, high = wilson_interval(correct, n, confidence)
    return float(low), float(high)


def arm_key(version: Any, arm: Any) -> str:
    """The label of one model version and rollout arm (``v3 challenger``)."""
    return f"v{version} {arm}"


def _accuracy(rows: list[dict[str, Any]]) -> list[AccuracyFigure]:
    counts: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        c = counts[(int(row["model_version"]), str(row["rollout_arm"]))]
        c[0] += int(row["correct"])
        c[1] += int(row["labelled"])
    figures = []
    for (version, arm), (correct, n) in sorted(counts.items()):
        low, high = wilson(correct, n)
        figures.append(
            AccuracyFigure(
                model_version=version,
                arm=arm,
                labelled=n,
                correct=correct,
                accuracy=round(correct / n, 4),
                low=round(low, 4),
                high=round(high, 4),
            )
        )
    return figures


def _drift(runs: list[DriftRun]) -> DriftFigure:
    fired: dict[str, int] = defaultdict(int)
    for run in runs:
        for name, (_, _, did) in run.tests.items():
            fired[name] += int(did)
    return DriftFigure(
        checks=len(runs),
        detected=sum(r.detected for r in runs),
        last_at=runs[-1].at.isoformat() if runs else None,
        last_detected=runs[-1].detected if runs else None,
        fired=dict(sorted(fired.items())),
    )


def _cost(cost: CostFigures, predictions: int, seconds: float) -> CostFigure:
    observed = predictions / max(seconds, 1.0)
    # The level nearest the observed rate on a log scale (traffic levels are decades).
    index = min(range(len(cost.levels)), key=lambda i: abs(math.log10(cost.levels[i] / observed)))
    option = (
        "cloud_run"
        if "cloud_run" in cost.usd_per_prediction
        else next(iter(cost.usd_per_prediction))
    )
    per = cost.usd_per_prediction[option][index]
    return CostFigure(
        source=cost.source,
        computed_at=cost.computed_at,
        option=option,
        level_rps=cost.levels[index],
        observed_rps=round(observed, 4),
        usd_per_prediction=per,
        usd_period=per * predictions,
    )


def summarise(data: DashboardData, *, now: datetime | None = None) -> DashboardSummary:
    """The figures of the page from ``data``."""
    totals = data.totals
    first, last = _aware(totals["first_time"]), _aware(totals["last_time"])
    by_version_arm: dict[str, int] = defaultdict(int)
    for row in data.volume:
        by_version_arm[arm_key(row["model_version"], row["rollout_arm"])] += int(row["predictions"])
    per_version: dict[str, int] = defaultdict(int)
    for row in data.class_mix:
        per_version[f"v{row['model_version']}"] += int(row["predictions"])
    mix: dict[str, dict[str, float]] = defaultdict(dict)
    for row in data.class_mix:
        version = f"v{row['model_version']}"
        mix[version][str(row["predicted_class"])] = round(
            int(row["predictions"]) / per_version[version], 4
        )
    accuracy = _accuracy(data.feedback)
    predictions = int(totals["predictions"])
    # A period shorter than an hour is costed as an hour (the rate of a handful of requests).
    seconds = max((last - first).total_seconds(), 3600.0)
    return DashboardSummary(
        generated_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        since=data.since.isoformat() if data.since else None,
        analytics=data.analytics_target,
        first=first.isoformat(),
        last=last.isoformat(),
        predictions=predictions,
        model_versions=int(totals["model_versions"]),
        by_version_arm=dict(sorted(by_version_arm.items())),
        unknown_rate=float(totals["unknown_rate"]),
        latency_p50_ms=float(totals["p50_ms"]),
        latency_p95_ms=float(totals["p95_ms"]),
        labelled=sum(a.labelled for a in accuracy),
        accuracy=accuracy,
        class_mix={v: dict(sorted(m.items())) for v, m in sorted(mix.items())},
        drift=_drift(data.drift),
        cost=_cost(data.cost, predictions, seconds) if data.cost else None,
    )
