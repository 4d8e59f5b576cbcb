"""The monitoring page's data, built from a real prediction log, feedback, reports and alerts."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest

from fmnist import CLASS_NAMES
from fmnist.config import Settings
from fmnist.monitoring.alerts import Observations, default_state_path, evaluate_alerts
from fmnist.monitoring.drift import DriftResult, ReferenceSummary, WindowInfo
from fmnist.monitoring.drift_tests import TestResult
from fmnist.monitoring.errors import MonitoringError
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.prediction_log import PredictionLog
from fmnist.monitoring.report import reports_root
from fmnist.monitoring.summary import (
    LABELS,
    build_summary,
    drift_status,
    latest_report_html,
)
from prediction_records import BASE, record, records

NOW = BASE + timedelta(hours=23, minutes=30)
"""With 24 hourly buckets the window is exactly BASE .. BASE + 24 h."""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def log(tmp_path: Path) -> PredictionLog:
    log = PredictionLog(tmp_path / "predictions.db", tmp_path / "segments")
    log.append(records(30))  # one an hour from BASE, class i % 10
    return log


def test_hourly_buckets_count_each_class(log: PredictionLog, settings: Settings) -> None:
    summary = build_summary(log, FeedbackStore(log), settings, now=NOW)
    assert (summary.since, summary.until) == (
        BASE.isoformat(),
        (BASE + timedelta(hours=24)).isoformat(),
    )
    assert summary.predictions == 24  # records 24..29 are after the window
    timeline = summary.timeline
    assert timeline.mode == "time" and timeline.bucket_seconds == 3600
    assert timeline.labels == [*CLASS_NAMES, "unknown"] == list(LABELS)
    assert len(timeline.buckets) == 24
    for i, bucket in enumerate(timeline.buckets):
        assert bucket.start == (BASE + timedelta(hours=i)).isoformat()
        expected = [0] * len(LABELS)
        expected[i % 10] = 1
        assert bucket.counts == expected
    json.loads(summary.model_dump_json())  # JSON-ready


def test_the_window_covers_compacted_days_too(log: PredictionLog, settings: Settings) -> None:
    before = build_summary(log, None, settings, now=NOW + timedelta(hours=6), hours=48)
    log.compact(BASE.date() + timedelta(days=1))
    after = build_summary(log, None, settings, now=NOW + timedelta(hours=6), hours=48)
    assert after.predictions == before.predictions == 30
    assert after.timeline == before.timeline


def test_a_burst_is_bucketed_by_count(tmp_path: Path, settings: Settings) -> None:
    log = PredictionLog(tmp_path / "p.db", tmp_path / "s")
    at = NOW - timedelta(minutes=5)
    log.append([record(i, at + timedelta(seconds=i), predicted=i % 2) for i in range(50)])
    summary = build_summary(log, None, settings, now=NOW)
    timeline = summary.timeline
    assert timeline.mode == "count" and timeline.bucket_seconds is None
    assert len(timeline.buckets) == 24
    sizes = [sum(b.counts) for b in timeline.buckets]
    assert sum(sizes) == 50 and max(sizes) - min(sizes) <= 1
    first = timeline.buckets[0]
    assert first.start == at.isoformat()
    assert first.end == (at + timedelta(seconds=sizes[0] - 1)).isoformat()
    assert sum(b.counts[0] for b in timeline.buckets) == 25  # T-shirt/top
    assert sum(b.counts[1] for b in timeline.buckets) == 25  # Trouser

    few = PredictionLog(tmp_path / "few.db", tmp_path / "few")
    few.append([record(i, at, predicted=3) for i in range(2)])
    two = build_summary(few, None, settings, now=NOW).timeline
    assert two.mode == "count" and [b.counts[3] for b in two.buckets] == [1, 1]


def test_confidence_histogram_and_unknown_rate(tmp_path: Path, settings: Settings) -> None:
    log = PredictionLog(tmp_path / "p.db", tmp_path / "s")
    at = NOW - timedelta(hours=1)
    sure = [dataclasses.replace(record(i, at), confidence=0.97) for i in range(6)]
    unsure = [
        dataclasses.replace(record(i, at, predicted=-1), confidence=0.31) for i in range(6, 10)
    ]
    rows = sure + unsure
    log.append(rows)
    summary = build_summary(log, None, settings, now=NOW, bins=10)
    histogram = summary.confidence
    assert histogram.edges == pytest.approx([i / 10 for i in range(11)])
    assert histogram.counts == [0, 0, 0, 4, 0, 0, 0, 0, 0, 6]
    assert histogram.unknown_counts == [0, 0, 0, 4, 0, 0, 0, 0, 0, 0]
    rate = summary.unknown_rate
    assert (rate.unknown, rate.total, rate.rate) == (4, 10, 0.4)
    assert sum(b.counts[-1] for b in summary.timeline.buckets) == 4


def test_an_empty_log(tmp_path: Path, settings: Settings) -> None:
    log = PredictionLog(tmp_path / "p.db", tmp_path / "s")
    summary = build_summary(log, FeedbackStore(log), settings, now=NOW, hours=6)
    assert summary.predictions == 0
    assert summary.timeline.mode == "time" and summary.timeline.bucket_seconds == 900
    assert all(sum(b.counts) == 0 for b in summary.timeline.buckets)
    assert sum(summary.confidence.counts) == 0
    assert summary.unknown_rate.rate is None
    assert summary.live_accuracy.labelled == 0 and summary.live_accuracy.models == []
    assert summary.drift.status == "not_checked" and summary.drift.message == "not checked yet"
    assert summary.alerts == []


@pytest.mark.parametrize("hours", [0, -1, float("nan"), 24 * 90 + 1])
def test_bad_hours(log: PredictionLog, settings: Settings, hours: float) -> None:
    with pytest.raises(MonitoringError, match="hours"):
        build_summary(log, None, settings, hours=hours)


def test_live_accuracy_per_version_in_the_window(tmp_path: Path, settings: Settings) -> None:
    log = PredictionLog(tmp_path / "p.db", tmp_path / "s")
    at = NOW - timedelta(hours=2)
    log.append(
        [
            record(1, at, predicted=0),  # label 0: right
            record(2, at, predicted=1),  # label 1: right
            record(3, at, predicted=2),  # label 0: wrong
            record(4, at, predicted=-1),  # label 3: abstained
            record(5, at, predicted=5),  # out of scope
            record(6, at, predicted=8, model_version=2),  # label 8: right
            record(7, BASE - timedelta(days=3), predicted=9),  # before the window
        ]
    )
    store = FeedbackStore(log)
    for i, label in [(1, 0), (2, 1), (3, 0), (4, 3), (6, 8), (7, 0)]:
        store.record(f"req-{i:05d}", label)
    store.record("req-00005", None, unknown=True)

    live = build_summary(log, store, settings, now=NOW).live_accuracy
    assert live.confidence == 0.95
    assert (live.labelled, live.out_of_scope) == (5, 1)
    assert [(m.model_name, m.model_version) for m in live.models] == [
        ("fmnist-classifier", 1),
        ("fmnist-classifier", 2),
    ]
    v1 = live.models[0]
    assert v1.overall is not None
    assert (v1.overall.n, v1.overall.correct, v1.overall.accuracy) == (4, 2, 0.5)
    assert v1.overall.low == pytest.approx(0.1500, abs=1e-4)  # Wilson 95% of 2/4
    assert v1.overall.high == pytest.approx(0.8500, abs=1e-4)
    assert {c: (e.n, e.correct) for c, e in v1.per_class.items()} == {
        "T-shirt/top": (2, 1),
        "Trouser": (1, 1),
        "Dress": (1, 0),
    }
    assert (v1.abstained, v1.out_of_scope, v1.out_of_scope_flagged) == (1, 1, 0)


def _write_report(home: Path, stamp: str, *, detected: bool, html: bool = True) -> Path:
    folder = reports_root(home) / stamp
    folder.mkdir(parents=True)
    result = DriftResult(
        drift_detected=detected,
        alpha=0.05,
        correction="Holm over 2 tests",
        tests=[
            TestResult(name="bbsd_ks", statistic=0.31, p_value=1e-6, threshold=0.025, fired=True),
            TestResult(name="mmd", statistic=0.002, p_value=0.4, threshold=0.05),
            TestResult(name="photo_share", statistic=None, p_value=None, in_verdict=False),
        ],
        window=WindowInfo(size=1000, start=BASE.isoformat(), end=NOW.isoformat()),
        reference=ReferenceSummary(
            model_name="fmnist-classifier",
            model_version=3,
            n=2000,
            embedding_kind="penultimate",
            embedding_note="",
        ),
        report_path=str(folder),
        checked_at=NOW.isoformat(),
    )
    (folder / "drift.json").write_text(result.model_dump_json(), encoding="utf-8")
    if html:
        (folder / "report.html").write_text(f"<html>{stamp}</html>", encoding="utf-8")
    return folder


def test_drift_status_reads_the_newest_report(settings: Settings) -> None:
    root = reports_root(settings.home)
    assert drift_status(root).status == "not_checked"
    assert latest_report_html(root) is None
    _write_report(settings.home, "20240501T100000.000000Z", detected=False)
    newest = _write_report(settings.home, "20240501T120000.000000Z", detected=True, html=False)
    (root / ".20240501T130000.000000Z.tmp").mkdir()  # a report being written is ignored

    status = drift_status(root)
    assert status.status == "drift_detected" and status.message == "drift detected"
    assert (status.report_id, status.has_report) == (newest.name, False)
    assert (status.checked_at, status.window_size, status.alpha) == (NOW.isoformat(), 1000, 0.05)
    assert (status.reference_model, status.reference_version) == ("fmnist-classifier", 3)
    assert [(t.name, t.fired, t.in_verdict) for t in status.tests] == [
        ("bbsd_ks", True, True),
        ("mmd", False, True),
        ("photo_share", False, False),
    ]
    assert status.tests[0].p_value == 1e-6 and status.tests[0].threshold == 0.025
    # the newest report without HTML: the link goes to the newest one that has it
    assert latest_report_html(root) == root / "20240501T100000.000000Z" / "report.html"

    (newest / "drift.json").write_text("{not json", encoding="utf-8")
    assert drift_status(root).status == "no_drift"  # an unreadable result is skipped


def test_firing_alerts_with_their_severity(log: PredictionLog, settings: Settings) -> None:
    state = default_state_path(settings.home)
    evaluate_alerts(
        Observations(drift_detected=True, unknown_rate=0.5, predictions=500),
        settings.alerts,
        state,
        now=NOW - timedelta(minutes=10),
    )
    alerts = build_summary(log, None, settings, now=NOW).alerts
    assert [(a.name, a.source, a.severity, a.since) for a in alerts] == [
        ("drift_detected", "fmnist", "warning", (NOW - timedelta(minutes=10)).isoformat()),
        ("unknown_rate_high", "fmnist", settings.alerts.unknown_rate.severity, alerts[1].since),
    ]
    assert alerts[0].summary == "label-free drift detected"

    evaluate_alerts(Observations(drift_detected=False), settings.alerts, state, now=NOW)
    resolved = build_summary(log, None, settings, now=NOW).alerts
    assert [a.name for a in resolved] == ["unknown_rate_high"]
