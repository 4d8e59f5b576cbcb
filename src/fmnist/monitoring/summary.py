"""The monitoring page's data: traffic per class, confidence, unknowns, accuracy, drift, alerts.

:func:`build_summary` reads a window of the prediction log (only the columns it needs, as Arrow
and numpy: no Python loop per row), the live accuracy of the feedback in that window, the
newest drift report folder (``<home>/monitoring/reports/<UTC timestamp>/drift.json``, see
:mod:`fmnist.monitoring.report`) and the alert state file, and returns one JSON-ready
:class:`MonitoringSummary`. It writes nothing (beyond what reading the alert state does: an
unreadable state file is set aside by :mod:`~fmnist.monitoring.alert_state`).

The window is ``hours`` long and ends at the first bucket boundary after ``now`` (hourly buckets
for the default 24 hours start on the hour). When the traffic falls into fewer than
:data:`MIN_TIME_BUCKETS` of those buckets, it is bucketed by count instead: consecutive groups
of about the same number of predictions, each with the time of its first and last one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field, ValidationError

from fmnist import CLASS_NAMES
from fmnist.monitoring.alert_rules import build_rules
from fmnist.monitoring.alert_state import AlertEntry, default_state_path, read_state
from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.records import UNKNOWN
from fmnist.monitoring.report import reports_root

if TYPE_CHECKING:
    from fmnist.config import AlertSettings, Settings
    from fmnist.monitoring.feedback import Estimate, FeedbackStore, ModelAccuracy
    from fmnist.monitoring.prediction_log import PredictionLog

LABELS: tuple[str, ...] = (*CLASS_NAMES, UNKNOWN)
"""The series of the timeline: the ten classes, then ``unknown``."""
MAX_HOURS = 24 * 90
"""The longest window the summary covers (the log's default retention)."""
DEFAULT_HOURS = 24.0
DEFAULT_BUCKETS = 24
CONFIDENCE_BINS = 20
MIN_TIME_BUCKETS = 3
"""Fewer non-empty time buckets than this: bucket the traffic by count."""
DRIFT_JSON = "drift.json"
REPORT_HTML = "report.html"
_COLUMNS = ("predicted_class", "confidence")


class TimelineBucket(BaseModel):
    """Predictions per label in ``[start, end)`` (by count: ``start``/``end`` are the times
    of the bucket's first and last prediction)."""

    start: str
    end: str
    counts: list[int] = Field(description="one count per entry of Timeline.labels")


class Timeline(BaseModel):
    """Predictions per class over time."""

    mode: Literal["time", "count"]
    bucket_seconds: float | None = Field(description="width of a time bucket; None by count")
    labels: list[str]
    buckets: list[TimelineBucket]


class ConfidenceHistogram(BaseModel):
    """Logged confidence (top calibrated probability) in equal bins over [0, 1]."""

    edges: list[float]
    counts: list[int]
    unknown_counts: list[int] = Field(description="of counts: the predictions answered unknown")


class UnknownRate(BaseModel):
    """The share of predictions answered ``unknown``."""

    unknown: int
    total: int
    rate: float | None = Field(description="None without predictions")


class AccuracyEstimate(BaseModel):
    """``correct / n`` with its Wilson interval ``[low, high]``."""

    n: int
    correct: int
    accuracy: float
    low: float
    high: float


class VersionAccuracy(BaseModel):
    """Live accuracy of one model version, overall and per true class."""

    model_name: str
    model_version: int
    overall: AccuracyEstimate | None
    per_class: dict[str, AccuracyEstimate]
    abstained: int = Field(description="labelled items answered unknown (counted as wrong)")
    out_of_scope: int = Field(description="items marked as none of the ten classes")
    out_of_scope_flagged: int = Field(description="of out_of_scope: answered unknown")


class LiveAccuracySummary(BaseModel):
    """Accuracy over the labelled predictions of the window (feedback)."""

    confidence: float = Field(description="level of the intervals")
    labelled: int = Field(description="predictions with a true class")
    out_of_scope: int
    models: list[VersionAccuracy]


class DriftTestSummary(BaseModel):
    """One test of the latest drift check."""

    name: str
    statistic: float | None
    p_value: float | None
    threshold: float | None
    fired: bool
    in_verdict: bool


class DriftStatus(BaseModel):
    """The verdict of the latest drift check, or ``not_checked``."""

    status: Literal["not_checked", "no_drift", "drift_detected"]
    message: str
    checked_at: str | None = None
    report_id: str | None = Field(None, description="the report folder's name")
    has_report: bool = Field(False, description="its Evidently HTML report exists")
    alpha: float | None = None
    correction: str | None = None
    window_size: int | None = None
    window_start: str | None = None
    window_end: str | None = None
    reference_model: str | None = None
    reference_version: int | None = None
    tests: list[DriftTestSummary] = Field(default_factory=list)


class ActiveAlert(BaseModel):
    """An alert firing now."""

    name: str
    source: str
    severity: str
    since: str
    summary: str


class MonitoringSummary(BaseModel):
    """Everything the monitoring page draws."""

    generated_at: str
    hours: float
    since: str
    until: str
    predictions: int
    timeline: Timeline
    confidence: ConfidenceHistogram
    unknown_rate: UnknownRate
    live_accuracy: LiveAccuracySummary
    drift: DriftStatus
    alerts: list[ActiveAlert]
    experiment: dict[str, Any] | None = None
    """The running A/B, shadow or canary experiment and its readout (None: none running)."""


def _iso(us: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))).isoformat()


def _timeline(
    ts_us: npt.NDArray[np.int64],
    labels: npt.NDArray[np.int64],
    since_us: int,
    width_us: int,
    buckets: int,
) -> Timeline:
    size = len(LABELS)
    n = len(ts_us)
    slot = np.clip((ts_us - since_us) // width_us, 0, buckets - 1)
    counts = np.bincount(slot * size + labels, minlength=buckets * size).reshape(buckets, size)
    if n == 0 or int(np.count_nonzero(counts.sum(axis=1))) >= MIN_TIME_BUCKETS:
        return Timeline(
            mode="time",
            bucket_seconds=width_us / 1e6,
            labels=list(LABELS),
            buckets=[
                TimelineBucket(
                    start=_iso(since_us + i * width_us),
                    end=_iso(since_us + (i + 1) * width_us),
                    counts=counts[i].tolist(),
                )
                for i in range(buckets)
            ],
        )
    groups = min(n, buckets)
    group = np.arange(n, dtype=np.int64) * groups // n  # rows are oldest first
    counts = np.bincount(group * size + labels, minlength=groups * size).reshape(groups, size)
    first = np.searchsorted(group, np.arange(groups), side="left")
    last = np.searchsorted(group, np.arange(groups), side="right") - 1
    return Timeline(
        mode="count",
        bucket_seconds=None,
        labels=list(LABELS),
        buckets=[
            TimelineBucket(
                start=_iso(ts_us[first[i]]), end=_iso(ts_us[last[i]]), counts=counts[i].tolist()
            )
            for i in range(groups)
        ],
    )


def _histogram(
    confidence: npt.NDArray[np.float64], unknown: npt.NDArray[np.bool_], bins: int
) -> ConfidenceHistogram:
    edges = np.linspace(0.0, 1.0, bins + 1)
    values = np.clip(np.nan_to_num(confidence, nan=0.0), 0.0, 1.0)
    counts, _ = np.histogram(values, bins=edges)
    unknown_counts, _ = np.histogram(values[unknown], bins=edges)
    return ConfidenceHistogram(
        edges=[round(float(e), 6) for e in edges],
        counts=counts.tolist(),
        unknown_counts=unknown_counts.tolist(),
    )


def _estimate(estimate: Estimate) -> AccuracyEstimate:
    return AccuracyEstimate(
        n=estimate.n,
        correct=estimate.correct,
        accuracy=estimate.accuracy,
        low=estimate.low,
        high=estimate.high,
    )


def _version(model: ModelAccuracy) -> VersionAccuracy:
    return VersionAccuracy(
        model_name=model.model_name,
        model_version=model.model_version,
        overall=_estimate(model.overall) if model.overall is not None else None,
        per_class={name: _estimate(e) for name, e in model.per_class.items()},
        abstained=model.abstained,
        out_of_scope=model.out_of_scope,
        out_of_scope_flagged=model.out_of_scope_flagged,
    )


def _live_accuracy(feedback: FeedbackStore | None, since: datetime) -> LiveAccuracySummary:
    if feedback is None:
        return LiveAccuracySummary(confidence=0.95, labelled=0, out_of_scope=0, models=[])
    accuracy = feedback.live_accuracy(since=since)
    models = [_version(m) for m in accuracy.models]
    return LiveAccuracySummary(
        confidence=accuracy.confidence,
        labelled=sum(m.overall.n for m in models if m.overall is not None),
        out_of_scope=sum(m.out_of_scope for m in models),
        models=models,
    )


def report_folders(root: Path) -> list[Path]:
    """The complete report folders under ``root``, newest first (their names are UTC times;
    a report still being written has a hidden temporary name)."""
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(folders, key=lambda p: p.name, reverse=True)


def latest_report_html(root: Path) -> Path | None:
    """The Evidently HTML of the newest report under ``root`` that has one, or None."""
    for folder in report_folders(root):
        html = folder / REPORT_HTML
        if html.is_file():
            return html
    return None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def drift_status(root: Path) -> DriftStatus:
    """The verdict of the newest readable ``drift.json`` under ``root``."""
    from fmnist.monitoring.drift import DriftResult  # scipy: only when a report exists

    for folder in report_folders(root):
        try:
            result = DriftResult.model_validate_json((folder / DRIFT_JSON).read_bytes())
        except (OSError, ValidationError):  # an older layout or a foreign folder: look further
            continue
        detected = result.drift_detected
        return DriftStatus(
            status="drift_detected" if detected else "no_drift",
            message="drift detected" if detected else "no drift",
            checked_at=result.checked_at,
            report_id=folder.name,
            has_report=(folder / REPORT_HTML).is_file(),
            alpha=result.alpha,
            correction=result.correction,
            window_size=result.window.size,
            window_start=result.window.start,
            window_end=result.window.end,
            reference_model=result.reference.model_name,
            reference_version=result.reference.model_version,
            tests=[
                DriftTestSummary(
                    name=t.name,
                    statistic=_finite(t.statistic),
                    p_value=_finite(t.p_value),
                    threshold=_finite(t.threshold),
                    fired=t.fired,
                    in_verdict=t.in_verdict,
                )
                for t in result.tests
            ],
        )
    return DriftStatus(status="not_checked", message="not checked yet")


def active_alerts(entries: Mapping[str, AlertEntry], settings: AlertSettings) -> list[ActiveAlert]:
    """The firing entries of the alert state, oldest first, with their rule's severity."""
    rules = {rule.name: rule for rule in build_rules(settings)}
    alerts = []
    for key, entry in entries.items():
        if entry.state != "firing":
            continue
        rule = rules.get(entry.alert)
        source = key.rsplit(":", 1)[0] if ":" in key else ""
        alerts.append(
            ActiveAlert(
                name=entry.alert,
                source=source,
                severity=rule.severity if rule is not None else "warning",
                since=entry.since,
                summary=rule.description if rule is not None else "",
            )
        )
    return sorted(alerts, key=lambda a: (a.since, a.name))


def build_summary(
    log: PredictionLog,
    feedback: FeedbackStore | None,
    settings: Settings,
    *,
    hours: float = DEFAULT_HOURS,
    now: datetime | None = None,
    buckets: int = DEFAULT_BUCKETS,
    bins: int = CONFIDENCE_BINS,
) -> MonitoringSummary:
    """The monitoring page's data for the ``hours`` up to ``now`` (UTC; default: now).

    Drift reports are read from ``<settings.home>/monitoring/reports`` and alerts from
    ``<settings.home>/monitoring/alerts/state.json`` (severities from ``settings.alerts``).
    """
    import pyarrow as pa  # imported here: the serving-only install has none (no summaries)
    import pyarrow.compute as pc

    if not 0 < hours <= MAX_HOURS or not math.isfinite(hours):
        raise MonitoringError(f"hours must be in (0, {MAX_HOURS}], got {hours}")
    if buckets < 1 or bins < 1:
        raise MonitoringError("buckets and bins must be at least 1")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    width_us = max(1, round(hours * 3_600_000_000 / buckets))
    now_us = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    until_us = (now_us // width_us + 1) * width_us
    since_us = until_us - buckets * width_us
    since = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=since_us)
    until = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=until_us)

    table = log.window_table(since=since, until=until, columns=_COLUMNS)
    ts_us = table.column("ts").cast(pa.int64()).to_numpy().astype(np.int64)
    index = pc.index_in(table.column("predicted_class"), value_set=pa.array(CLASS_NAMES))
    labels = pc.fill_null(index, len(CLASS_NAMES)).to_numpy().astype(np.int64)
    unknown = labels == len(CLASS_NAMES)
    confidence = table.column("confidence").to_numpy().astype(np.float64)
    total = int(table.num_rows)
    n_unknown = int(unknown.sum())

    state_path = default_state_path(settings.home)
    entries = read_state(state_path) if state_path.is_file() else {}
    return MonitoringSummary(
        generated_at=moment.isoformat(),
        hours=hours,
        since=since.isoformat(),
        until=until.isoformat(),
        predictions=total,
        timeline=_timeline(ts_us, labels, since_us, width_us, buckets),
        confidence=_histogram(confidence, unknown, bins),
        unknown_rate=UnknownRate(
            unknown=n_unknown, total=total, rate=n_unknown / total if total else None
        ),
        live_accuracy=_live_accuracy(feedback, since),
        drift=drift_status(reports_root(settings.home)),
        alerts=active_alerts(entries, settings.alerts),
    )
