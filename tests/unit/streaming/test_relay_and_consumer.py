"""Events from the prediction log to the analytics tables: nothing lost, nothing counted twice."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fmnist import cli
from fmnist.analytics.tables import run_query
from fmnist.config import Settings
from fmnist.monitoring.compaction import relayed_up_to
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.prediction_log import PredictionLog, open_prediction_log
from fmnist.platform.analytics import DuckDbAnalytics
from fmnist.platform.events import LocalEventQueue
from fmnist.streaming.consumer import SUBSCRIPTION, consume_once
from fmnist.streaming.relay import relay_once
from prediction_records import record

NOW = datetime.now(UTC).replace(microsecond=0)


def fill(log: PredictionLog, n: int, labelled: int, *, when: datetime = NOW) -> None:
    log.append([record(i, when + timedelta(seconds=i)) for i in range(n)])
    store = FeedbackStore(log)
    for i in range(labelled):
        store.record(f"req-{i:05d}", i % 10 if i % 4 else (i + 1) % 10)  # 3 in 4 right


class SinkDown(LocalEventQueue):
    """The real queue, which fails (as a broken network would) after ``healthy`` publishes."""

    def __init__(self, path: Path, healthy: int) -> None:
        super().__init__(path)
        self.healthy = healthy

    def publish(
        self, topic: str, payload: Mapping[str, Any], *, event_id: str | None = None
    ) -> str:
        if self.healthy <= 0:
            raise ConnectionError("event sink unreachable")
        self.healthy -= 1
        return super().publish(topic, payload, event_id=event_id)


def test_a_sink_outage_and_a_stopped_consumer_lose_nothing(tmp_path: Path) -> None:
    log = open_prediction_log(Settings(home=tmp_path))
    fill(log, 1200, 200)
    # The sink fails in the middle of the third batch: the relay stops, its cursor stays at
    # the last whole batch, and serving (the log) is untouched.
    with pytest.raises(ConnectionError):
        relay_once(log, SinkDown(tmp_path / "events.db", healthy=1100), batch=500)
    assert relayed_up_to(log) == 1000
    bus = LocalEventQueue(tmp_path / "events.db")
    resumed = relay_once(log, bus, batch=500)
    assert (resumed.predictions, resumed.feedback) == (200, 200)
    analytics = DuckDbAnalytics(tmp_path / "analytics.duckdb")
    # The consumer stops after one batch; then one dies between writing and acknowledging.
    first = consume_once(bus, analytics, batch=300, max_batches=1)
    assert first.written == {"prediction_events": 300, "feedback_events": 200}
    unacked = bus.pull("predictions", SUBSCRIPTION, 100)
    analytics.insert_rows(
        "prediction_events",
        [
            {"event_id": e.payload["id"], "time": e.payload["time"], **e.payload["data"]}
            for e in unacked
        ],
    )  # written, never acknowledged: delivered again below
    rest = consume_once(bus, analytics, batch=300)
    assert rest.received["prediction_events"] == 900 and rest.written["prediction_events"] == 800
    counts = analytics.query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT request_id) AS d FROM prediction_events"
    )
    assert counts == [{"n": log.count(), "d": 1200}]
    accuracy = run_query(analytics, "live_accuracy")
    assert accuracy == [{"model_version": 1, "labelled": 200, "accuracy": 0.75}]
    per_minute = run_query(analytics, "class_counts_per_minute")
    assert sum(r["predictions"] for r in per_minute) == 1200
    assert {r["predicted_class"] for r in per_minute} >= {"T-shirt/top", "Ankle boot"}
    kpis = run_query(analytics, "kpis_daily")
    assert sum(r["predictions"] for r in kpis) == 1200
    assert sum(r["labelled"] for r in kpis) == 200
    quantiles = run_query(analytics, "confidence_quantiles")
    assert quantiles[0]["predictions"] == 1200 and quantiles[0]["p50"] == pytest.approx(0.55)
    log.close()


def test_compaction_keeps_what_the_relay_has_not_published(tmp_path: Path) -> None:
    log = open_prediction_log(Settings(home=tmp_path))
    old = datetime(2024, 5, 1, tzinfo=UTC)
    log.append([record(i, old + timedelta(minutes=i)) for i in range(100)])
    relay_once(log, SinkDown(tmp_path / "events.db", healthy=10**6), batch=40)
    log.append([dataclasses.replace(record(i, old), request_id=f"late-{i}") for i in range(30)])
    done = log.compact(date(2024, 5, 2))
    assert done.rows_deleted == 100  # the 30 rows appended after the relay's pass stay live
    assert log.db.query("SELECT count(*) FROM predictions")[0][0] == 30
    log.close()


def test_the_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_HOME", str(tmp_path))
    log = open_prediction_log(Settings())
    fill(log, 50, 20)
    log.close()
    runner = CliRunner()
    out = runner.invoke(cli.app, ["events", "consume", "--once"])
    assert out.exit_code == 0, out.output
    kpis = runner.invoke(cli.app, ["analytics", "kpis", "--json"])
    assert kpis.exit_code == 0, kpis.output
    rows = json.loads(kpis.stdout)
    assert sum(r["predictions"] for r in rows) == 50 and sum(r["labelled"] for r in rows) == 20
    listed = runner.invoke(cli.app, ["analytics", "list"])
    assert "kpis_daily" in listed.stdout.split()
    missing = runner.invoke(cli.app, ["analytics", "query", "nope"])
    assert missing.exit_code == 2 and "no query named 'nope'" in missing.output
