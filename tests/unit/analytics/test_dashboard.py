"""The static analytics dashboard: its figures from a small home, and the command's files."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist import CLASS_NAMES, cli
from fmnist.analytics.dashboard import DashboardError, collect, summarise, wilson
from fmnist.analytics.tables import query_parameters
from fmnist.config import Settings
from fmnist.monitoring.drift import DriftResult, ReferenceSummary, WindowInfo
from fmnist.monitoring.drift_tests import TestResult
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.prediction_log import open_prediction_log
from fmnist.monitoring.report import reports_root
from fmnist.platform.analytics import DuckDbAnalytics
from fmnist.platform.events import LocalEventQueue
from fmnist.streaming.consumer import consume_once
from fmnist.streaming.relay import relay_once
from prediction_records import BASE, record

COST_RESULT = {
    "computed_at": "2024-05-01T00:00:00+00:00",
    "throughput": {"machine": "test machine"},
    "levels": [
        {
            "rps": rps,
            "options": {
                "cloud_run": {"total_usd_per_prediction": 1e-5 / rps},
                "vertex": {"usd_per_prediction": {"nodes": 2e-5 / rps, "pubsub": 1e-7}},
            },
        }
        for rps in (1.0, 10.0, 100.0)
    ],
}
"""A cost result in both layouts of ``cost.json`` (a total per option, or its parts)."""


@pytest.fixture
def cost_file(tmp_path: Path) -> Path:
    """A small cost result."""
    path = tmp_path / "cost.json"
    path.write_text(json.dumps(COST_RESULT))
    return path


HOURS = 6
PER_HOUR = 40


def fill_home(home: Path) -> None:
    """Six hours of traffic: version 1 alone for three hours, then 1 in 4 requests on the
    challenger (version 2); every other prediction labelled, 3 in 4 labels agreeing; latency
    1 ms, 2 ms, ... 10 ms; two drift checks (the second detects drift)."""
    log = open_prediction_log(Settings(home=home))
    records = []
    for i in range(HOURS * PER_HOUR):
        when = BASE + timedelta(hours=i // PER_HOUR, seconds=i % PER_HOUR)
        challenger = i // PER_HOUR >= 3 and i % 4 == 0
        records.append(
            dataclasses.replace(
                record(i, when, model_version=2 if challenger else 1),
                arm="challenger" if challenger else "champion",
                latency_ms=float(i % 10 + 1),
            )
        )
    log.append(records)
    store = FeedbackStore(log)
    for i in range(0, HOURS * PER_HOUR, 2):
        right = (i // 2) % 4 != 0
        store.record(f"req-{i:05d}", i % 10 if right else (i + 1) % 10)
    log.close()
    for k, detected in enumerate((False, True)):
        result = DriftResult(
            drift_detected=detected,
            alpha=0.05,
            correction="Holm over 2 tests",
            tests=[
                TestResult(name="mmd", statistic=0.1, p_value=0.001 if detected else 0.4),
                TestResult(name="bbsd_ks", statistic=0.2, p_value=0.3, fired=False),
            ],
            window=WindowInfo(size=100, end=(BASE + timedelta(hours=2 + 3 * k)).isoformat()),
            reference=ReferenceSummary(
                model_name="fmnist-classifier",
                model_version=1,
                n=500,
                embedding_kind="penultimate",
                embedding_note="",
            ),
        )
        folder = reports_root(home) / f"2024050{k + 1}T000000.000000Z"
        folder.mkdir(parents=True)
        (folder / "drift.json").write_text(result.model_dump_json())


def consume(home: Path) -> DuckDbAnalytics:
    """Relay the log's records and fold them into a DuckDB store, as fmnist events consume."""
    log = open_prediction_log(Settings(home=home))
    bus = LocalEventQueue(home / "events" / "events.db")
    relay_once(log, bus)
    log.close()
    analytics = DuckDbAnalytics(home / "analytics" / "fmnist.duckdb")
    consume_once(bus, analytics)
    return analytics


def test_the_summary_counts_what_the_home_holds(tmp_path: Path, cost_file: Path) -> None:
    fill_home(tmp_path)
    analytics = consume(tmp_path)
    data = collect(
        analytics, analytics_target="test", reports=reports_root(tmp_path), cost_file=cost_file
    )
    s = summarise(data, now=datetime(2024, 5, 2, tzinfo=UTC))
    assert s.predictions == HOURS * PER_HOUR
    assert s.by_version_arm == {"v1 champion": 210, "v2 challenger": 30}
    assert s.first == BASE.isoformat()
    assert s.latency_p50_ms == pytest.approx(5.0, abs=1.0)
    assert s.latency_p95_ms == pytest.approx(10.0, abs=1.0)
    # Every other prediction labelled, 3 in 4 of the labels right, counted per arm.
    assert s.labelled == HOURS * PER_HOUR // 2
    expected: dict[str, list[int]] = {"champion": [0, 0], "challenger": [0, 0]}
    for i in range(0, HOURS * PER_HOUR, 2):
        arm = "challenger" if i // PER_HOUR >= 3 and i % 4 == 0 else "champion"
        expected[arm][0] += (i // 2) % 4 != 0
        expected[arm][1] += 1
    by_arm = {a.arm: a for a in s.accuracy}
    assert {arm: [a.correct, a.labelled] for arm, a in by_arm.items()} == expected
    champion = by_arm["champion"]
    low, high = wilson(champion.correct, champion.labelled)
    assert (champion.low, champion.high) == (round(low, 4), round(high, 4))
    assert champion.low < champion.accuracy < champion.high
    assert sum(a.labelled for a in s.accuracy) == s.labelled
    # Record i predicts class i % 10: the challenger (i % 4 == 0) sees only even classes.
    v1 = [i % 10 for i in range(HOURS * PER_HOUR) if not (i // PER_HOUR >= 3 and i % 4 == 0)]
    assert s.class_mix["v1"] == {
        CLASS_NAMES[c]: round(v1.count(c) / len(v1), 4) for c in sorted(set(v1))
    }
    assert set(s.class_mix["v2"]) == {CLASS_NAMES[c] for c in (0, 2, 4, 6, 8)}
    assert s.drift.checks == 2 and s.drift.detected == 1 and s.drift.last_detected is True
    assert s.drift.fired == {"bbsd_ks": 0, "mmd": 0}  # fired is the Holm decision, unset here
    assert s.cost is not None and s.cost.level_rps == 1.0 and s.cost.option == "cloud_run"
    assert s.cost.usd_per_prediction == pytest.approx(1e-5)
    assert data.cost is not None and data.cost.usd_per_prediction["vertex"][1] == pytest.approx(
        2e-6 + 1e-7
    )
    assert s.cost.usd_period == pytest.approx(s.cost.usd_per_prediction * s.predictions)
    # --since keeps the later hours and the drift checks inside them.
    later = collect(
        analytics,
        analytics_target="test",
        reports=reports_root(tmp_path),
        since=BASE + timedelta(hours=3),
    )
    assert later.totals["predictions"] == 3 * PER_HOUR
    assert [r.detected for r in later.drift] == [True]


def test_query_parameters_are_those_the_query_names() -> None:
    since = datetime(2024, 1, 1, tzinfo=UTC)
    assert query_parameters("SELECT 1 -- @ignored\nWHERE t >= @since", {"since": since}) == {
        "since": since
    }
    assert query_parameters("SELECT 1") == {}
    with pytest.raises(KeyError, match="until"):
        query_parameters("WHERE t < @until")


def test_no_predictions_is_a_clear_error(tmp_path: Path) -> None:
    analytics = DuckDbAnalytics(tmp_path / "a.duckdb")
    with pytest.raises(DashboardError, match=r"no predictions in the analytics tables at X"):
        collect(analytics, analytics_target="X", reports=None)


def test_the_command_writes_charts_summary_and_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cost_file: Path
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("FMNIST_HOME", str(home))
    fill_home(home)
    runner = CliRunner()
    consumed = runner.invoke(cli.app, ["events", "consume", "--once"])
    assert consumed.exit_code == 0, consumed.output
    out = tmp_path / "page"
    cost = cost_file
    done = runner.invoke(
        cli.app, ["analytics", "dashboard", "--out", str(out), "--cost", str(cost)]
    )
    assert done.exit_code == 0, done.output
    assert "240 predictions, 120 labelled, 2 drift checks: 6 charts" in done.output
    for name in ("volume", "accuracy", "drift", "latency", "class_mix", "cost"):
        png = (out / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["predictions"] == 240 and summary["drift"]["detected"] == 1
    page = (out / "dashboard.md").read_text()
    assert "![Drift history](drift.png)" in page and "| predictions | 240 |" in page
    assert '<img src="volume.png"' in (out / "index.html").read_text()
    assert not list(out.glob(".*.tmp"))
    # A period without traffic is an error naming the period, not an empty page.
    late = runner.invoke(
        cli.app,
        ["analytics", "dashboard", "--out", str(out), "--cost", str(cost), "--since", "2024-05-02"],
    )
    assert late.exit_code == 2 and "no predictions since 2024-05-02" in late.output


def test_the_command_names_the_missing_home_and_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cost_file: Path
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("FMNIST_HOME", str(tmp_path / "nowhere"))
    missing = runner.invoke(cli.app, ["analytics", "dashboard"])
    assert missing.exit_code == 2
    assert f"no fmnist home at {tmp_path / 'nowhere'}" in missing.output
    assert not (tmp_path / "nowhere").exists()
    monkeypatch.setenv("FMNIST_HOME", str(tmp_path))
    empty = runner.invoke(cli.app, ["analytics", "dashboard"])
    assert empty.exit_code == 2
    assert f"no analytics database at {tmp_path / 'analytics' / 'fmnist.duckdb'}" in empty.output
    assert "fmnist events consume --once" in empty.output
    (tmp_path / "analytics").mkdir()
    DuckDbAnalytics(tmp_path / "analytics" / "fmnist.duckdb").query("SELECT 1")
    bad_cost = runner.invoke(cli.app, ["analytics", "dashboard", "--cost", "nope.json"])
    assert bad_cost.exit_code == 2 and "no cost result at" in bad_cost.output
    (tmp_path / "broken.json").write_text("{}")
    broken = runner.invoke(cli.app, ["analytics", "dashboard", "--cost", "broken.json"])
    assert broken.exit_code == 2 and "broken.json: not a readable cost result" in broken.output
    no_rows = runner.invoke(cli.app, ["analytics", "dashboard", "--cost", str(cost_file)])
    assert no_rows.exit_code == 2 and "no predictions in the analytics tables" in no_rows.output
