"""The BigQuery analytics adapter against the BigQuery emulator (bqemulator, started once per
session by ``conftest.py``), through google-cloud-bigquery: tables, idempotent inserts, every
named query (compared with :class:`DuckDbAnalytics` on the same rows), query parameters and the
Parquet load job.

What the emulator does not model is checked on the request instead (a ``create_autospec`` of
``bigquery.Client``): the load job's Hive partitioning, time partitioning and clustering, which
the emulator ignores, and the BigQuery text of the ``MERGE`` (parsed with sqlglot).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import pyarrow as pa
import pytest
import sqlglot

pytest.importorskip("google.cloud.bigquery", reason="the gcp extra: pip install 'fmnist[gcp]'")

from google.api_core.exceptions import GoogleAPICallError
from google.cloud import bigquery

from fmnist import CLASS_NAMES
from fmnist.analytics.tables import ensure_tables, query_names, query_parameters, query_text
from fmnist.config import Settings
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.log_arrow import ARROW_SCHEMA
from fmnist.monitoring.prediction_log import PredictionLog, open_prediction_log
from fmnist.platform.analytics import DuckDbAnalytics, to_duckdb
from fmnist.platform.bigquery_analytics import (
    KEY_LABEL,
    BigQueryAnalytics,
    load_source,
    query_parameter,
)
from fmnist.platform.events import LocalEventQueue
from fmnist.streaming.consumer import consume_once
from fmnist.streaming.relay import relay_once
from prediction_records import record

from .emulators import BigQueryEmulator

pytestmark = pytest.mark.gcp

DAY = datetime(2024, 5, 1, tzinfo=UTC)
APPROXIMATE = {
    "p10": 0.02,
    "p50": 0.02,
    "p90": 0.02,
    "latency_p95_ms": 0.5,
    "p50_ms": 3.0,
    "p95_ms": 3.0,
}
"""Columns computed with APPROX_QUANTILES (approximate in BigQuery itself) and how far apart
they may be: the emulator takes DuckDB's exact discrete quantile, DuckDbAnalytics DuckDB's
t-digest ``approx_quantile``, which interpolates. About two neighbouring values of the test
data (confidences 0.008 apart, latencies 0.25 ms); the dashboard's per-hour latency quantiles
(``p50_ms``, ``p95_ms``) are taken over a handful of predictions per hour of the test data,
where interpolating and discrete quantiles lie further apart."""
EMULATOR_CANNOT_RUN: dict[str, tuple[str, str]] = {}
"""Named query -> (the emulator's error, a regular expression; why it cannot run it). Empty:
bqemulator 1.3 runs every named query. A query added here is still run: the test asserts the
error is this one, and the BigQuery text is parsed by sqlglot (test_every_named_query_is_...)."""
QUANTILE_OFFSET = re.compile(r"(APPROX_QUANTILES\([^()]*\))\[OFFSET\((\d+)\)\]")
"""``APPROX_QUANTILES(x, n)[OFFSET(k)]``: bqemulator 1.3.0 (sqlglot 30.30) runs it, but as
``QUANTILE_DISC(x, [...])[k + 2]``, one past the 1-based ``[k + 1]``: it answers the
(k + 1)-th quantile instead of the k-th (p20 for p10, the maximum for p95). A known emulator
bug, asserted on its translation; the comparison shifts DuckDB's offsets the same way."""


def _analytics(emulator: BigQueryEmulator) -> BigQueryAnalytics:
    dataset = f"fmnist_{uuid.uuid4().hex[:12]}"
    emulator.create_dataset(dataset)
    return BigQueryAnalytics(
        emulator.project, dataset, client=emulator.client(), labels={"app": "fmnist"}
    )


@pytest.fixture
def bq(bigquery_emulator: BigQueryEmulator) -> BigQueryAnalytics:
    """The adapter on a new dataset of the emulator."""
    return _analytics(bigquery_emulator)


def _fill(home: Path) -> PredictionLog:
    """A prediction log of 2 days and 3 model versions, varied confidences and latencies,
    unknowns and labelled feedback (right 3 times in 4, some outside the ten classes)."""
    log = open_prediction_log(Settings(home=home))
    records = []
    for i in range(240):
        when = DAY + timedelta(minutes=11 * i)  # 240 * 11 min: across two days
        predicted = -1 if i % 13 == 0 else (i * 7) % 10
        base = record(i, when, predicted=predicted, model_version=1 + i % 3)
        records.append(
            dataclasses.replace(
                base,
                confidence=round(0.2 + 0.8 * ((i * 37) % 101) / 100, 4),
                latency_ms=round(0.8 + ((i * 53) % 97) / 4, 3),
            )
        )
    log.append(records)
    store = FeedbackStore(log)
    for i in range(0, 240, 3):
        if i % 13 == 0:
            continue  # an unknown prediction: no label
        if i % 27 == 0:
            store.record(f"req-{i:05d}", None, unknown=True)
            continue
        predicted = (i * 7) % 10
        store.record(f"req-{i:05d}", predicted if i % 4 else (predicted + 1) % 10)
    return log


@pytest.fixture(scope="module")
def stores(
    bigquery_emulator: BigQueryEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[DuckDbAnalytics, BigQueryAnalytics]]:
    """The same events consumed into DuckDB and into the emulator, by the real consumer (the
    relay publishes the log twice, to one queue per store, with its own cursor each)."""
    root = tmp_path_factory.mktemp("analytics")
    log = _fill(root / "home")
    duck = DuckDbAnalytics(root / "analytics.duckdb")
    bq = _analytics(bigquery_emulator)
    for name, store, batch in (("duck", duck, 500), ("bq", bq, 70)):
        bus = LocalEventQueue(root / f"{name}-events.db")
        relay_once(log, bus, name=name)
        consume_once(bus, store, batch=batch)
    log.close()
    yield duck, bq


def _assert_same_rows(
    expected: Sequence[Mapping[str, Any]], actual: Sequence[Mapping[str, Any]]
) -> None:
    assert len(actual) == len(expected)
    for want, got in zip(expected, actual, strict=True):
        assert list(got) == list(want)
        for column, value in want.items():
            if column in APPROXIMATE and value is not None:
                assert got[column] == pytest.approx(value, abs=APPROXIMATE[column]), column
            else:
                assert got[column] == value, (column, want, got)


def test_ensure_table_partitions_by_day_clusters_and_labels_the_key(
    bq: BigQueryAnalytics,
) -> None:
    ensure_tables(bq)
    ensure_tables(bq)  # again: the tables exist, nothing changes
    for name in ("prediction_events", "feedback_events"):
        table = bq.client.get_table(bq.table_id(name))
        assert table.time_partitioning.type_ == "DAY"
        assert table.time_partitioning.field == "time"
        assert table.clustering_fields == ["model_version"]
        assert table.labels == {"app": "fmnist", KEY_LABEL: "event_id"}
        assert table.schema[0].name == "event_id" and table.schema[0].mode == "REQUIRED"


def _events(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"prediction:req-{i:05d}",
            "time": (DAY + timedelta(hours=i)).isoformat(),
            "request_id": f"req-{i:05d}",
            "model_name": "fmnist-classifier",
            "model_version": 1,
            "model_alias": "champion",
            "arm": None,
            "input_kind": "json",
            "predicted_class": CLASS_NAMES[i % 10],
            "confidence": 0.5,
            "latency_ms": 2.0,
            "route": "/v1/predict",
        }
        for i in range(start, start + n)
    ]


def test_inserting_again_counts_nothing_twice(
    bq: BigQueryAnalytics, bigquery_emulator: BigQueryEmulator, tmp_path: Path
) -> None:
    duck = DuckDbAnalytics(tmp_path / "analytics.duckdb")
    first, redelivered = _events(30), _events(40, start=20)  # 10 old, 30 new...
    redelivered += redelivered[-3:]  # ...and 3 repeated within the batch
    for store in (duck, bq):
        ensure_tables(store)
        assert store.insert_rows("prediction_events", first) == 30
        assert store.insert_rows("prediction_events", redelivered) == 30
        assert store.insert_rows("prediction_events", []) == 0
    # A new process (no ensure_table): the key comes from the table's label.
    fresh = BigQueryAnalytics(bq.project, bq.dataset, client=bigquery_emulator.client())
    assert fresh.insert_rows("prediction_events", _events(60)) == 0
    count = "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM prediction_events"
    assert bq.query(count) == duck.query(count) == [{"n": 60, "d": 60}]


def _emulator_sql(text: str) -> str:
    from bqemulator.sql.translator import SQLTranslator

    translated = SQLTranslator().translate(text)
    assert isinstance(translated.value, str), translated
    return translated.value


def _shifted(text: str) -> str:
    """``text`` with each APPROX_QUANTILES offset moved one on, as the emulator runs it."""
    return QUANTILE_OFFSET.sub(lambda m: f"{m.group(1)}[OFFSET({int(m.group(2)) + 1})]", text)


@pytest.mark.parametrize("name", query_names())
def test_every_named_query_gives_what_duckdb_gives(
    name: str, stores: tuple[DuckDbAnalytics, BigQueryAnalytics]
) -> None:
    duck, bq = stores
    text = query_text(name)
    parameters = query_parameters(text) or None  # @since: the default, the whole log
    if name in EMULATOR_CANNOT_RUN:
        error, _why = EMULATOR_CANNOT_RUN[name]
        with pytest.raises(GoogleAPICallError, match=error):
            bq.query(text, parameters)
        return
    duckdb_text = text
    if QUANTILE_OFFSET.search(text):  # the known off-by-one (QUANTILE_OFFSET)
        index = re.compile(r"\)\[(\d+)\]")
        duckdb_indexes = [int(i) for i in index.findall(to_duckdb(text))]
        assert duckdb_indexes, to_duckdb(text)
        emulator_indexes = [int(i) for i in index.findall(_emulator_sql(text))]
        assert emulator_indexes == [i + 1 for i in duckdb_indexes]
        duckdb_text = _shifted(text)
    expected = duck.query(duckdb_text, parameters)
    assert expected, f"{name} has no rows on the test data: it would compare nothing"
    _assert_same_rows(expected, bq.query(text, parameters))  # the query as written


@pytest.mark.parametrize("name", query_names())
def test_every_named_query_is_bigquery_sql(name: str) -> None:
    text = query_text(name)
    parsed = sqlglot.parse(text, read="bigquery", error_level=sqlglot.ErrorLevel.RAISE)
    assert len(parsed) == 1 and parsed[0] is not None
    assert to_duckdb(text)  # and what DuckDbAnalytics runs


def test_the_known_emulator_limits_name_real_queries() -> None:
    assert set(EMULATOR_CANNOT_RUN) <= set(query_names())


def test_the_data_exercises_the_queries(stores: tuple[DuckDbAnalytics, BigQueryAnalytics]) -> None:
    _, bq = stores
    [totals] = bq.query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT DATE(time)) AS days, "
        "COUNTIF(predicted_class = 'unknown') AS unknown FROM prediction_events"
    )
    assert totals == {"n": 240, "days": 2, "unknown": 19}
    [labels] = bq.query(
        "SELECT COUNT(*) AS n, COUNTIF(label IS NULL) AS outside FROM feedback_events"
    )
    assert labels["n"] > 50 and labels["outside"] > 0


def test_query_parameters_are_typed_like_duckdb_binds_them(
    stores: tuple[DuckDbAnalytics, BigQueryAnalytics],
) -> None:
    duck, bq = stores
    sql = (
        "SELECT model_version, COUNT(*) AS n, ROUND(AVG(confidence), 4) AS confidence "
        "FROM prediction_events WHERE time >= @since AND predicted_class IN UNNEST(@classes) "
        "AND confidence >= @floor AND model_name = @model AND model_version <= @version "
        "GROUP BY model_version ORDER BY model_version"
    )
    parameters = {
        "since": DAY + timedelta(hours=12),
        "classes": ["Bag", "Sneaker", "unknown"],
        "floor": 0.3,
        "model": "fmnist-classifier",
        "version": 2,
    }
    expected = duck.query(sql, parameters)
    assert [r["model_version"] for r in expected] == [1, 2]
    assert bq.query(sql, parameters) == expected


def test_query_parameter_types() -> None:
    typed = {
        True: "BOOL",
        3: "INT64",
        0.5: "FLOAT64",
        "x": "STRING",
        b"x": "BYTES",
        DAY: "TIMESTAMP",
        datetime(2024, 5, 1): "DATETIME",
        date(2024, 5, 1): "DATE",
    }
    for value, kind in typed.items():
        assert query_parameter("p", value).type_ == kind
    array = query_parameter("p", [1, 2])
    assert isinstance(array, bigquery.ArrayQueryParameter) and array.array_type == "INT64"
    null = bigquery.ScalarQueryParameter("p", "INT64", None)
    assert query_parameter("p", null) is null
    with pytest.raises(TypeError, match="typed"):
        query_parameter("p", None)
    with pytest.raises(TypeError, match="one type"):
        query_parameter("p", [1, "a"])


def _bigquery_schema(schema: pa.Schema) -> list[dict[str, str]]:
    kinds = {pa.int64(): "INTEGER", pa.string(): "STRING", pa.float64(): "FLOAT"}
    kinds |= {pa.binary(): "BYTES", pa.timestamp("us", tz="UTC"): "TIMESTAMP"}
    fields = []
    for field in schema:
        repeated = pa.types.is_list(field.type)
        kind = kinds[field.type.value_type if repeated else field.type]
        fields.append({"name": field.name, "type": kind, "mode": "REPEATED" if repeated else ""})
    return [{k: v for k, v in f.items() if v} for f in fields]


def test_register_parquet_loads_the_prediction_log_from_cloud_storage(
    bq: BigQueryAnalytics, bigquery_emulator: BigQueryEmulator, tmp_path: Path
) -> None:
    """The log's Parquet segments, written by compaction into the emulator's ``gs://`` root,
    loaded into BigQuery and compared with DuckDB's view over the same files.

    Two emulator limits shape this test: a Parquet load needs the destination table to exist
    (BigQuery would take the schema from the files), and its ``*`` is a DuckDB glob that does
    not cross ``/`` (BigQuery's does), so the URI names one day's folder."""
    segments = bigquery_emulator.gcs_root / "fmnist-lake" / bq.dataset / "prediction-log"
    settings = Settings(home=tmp_path / "home", monitoring={"segments_path": segments})
    log = open_prediction_log(settings)
    log.append([record(i, DAY + timedelta(minutes=i), model_version=1 + i % 2) for i in range(90)])
    assert log.compact(DAY.date() + timedelta(days=1)).rows_written == 90
    log.close()
    duck = DuckDbAnalytics(tmp_path / "analytics.duckdb")
    duck.register_parquet("prediction_log", f"{segments}/**/*.parquet")
    # The columns DuckDB reads from the files, the hive folder's ``date`` last.
    bq.ensure_table(
        "prediction_log",
        [*_bigquery_schema(ARROW_SCHEMA), {"name": "date", "type": "DATE"}],
        key="request_id",
    )
    uri = f"gs://fmnist-lake/{bq.dataset}/prediction-log/date={DAY.date()}/*.parquet"
    sql = (
        "SELECT model_version, predicted_class, COUNT(*) AS n, MIN(ts) AS first, "
        "MAX(date) AS day, SUM(ARRAY_LENGTH(probabilities)) AS probabilities "
        "FROM prediction_log GROUP BY model_version, predicted_class "
        "ORDER BY model_version, predicted_class"
    )
    expected = duck.query(sql)
    assert sum(r["n"] for r in expected) == 90
    for _ in range(2):  # loading again replaces the rows (WRITE_TRUNCATE)
        bq.register_parquet("prediction_log", uri)
        assert bq.query(sql) == expected


def test_the_load_job_asks_for_parquet_truncate_hive_and_day_partitions() -> None:
    """What the emulator ignores, checked on the request google-cloud-bigquery is given."""
    client = create_autospec(bigquery.Client, instance=True)
    analytics = BigQueryAnalytics("proj", "fmnist", client=client, location="europe-west4")
    analytics.register_parquet("prediction_log", "gs://lake/monitoring/predictions/**/*.parquet")
    (uri, destination), kwargs = client.load_table_from_uri.call_args
    assert uri == "gs://lake/monitoring/predictions/*.parquet"
    assert destination == "proj.fmnist.prediction_log"
    assert kwargs["location"] == "europe-west4"
    config: bigquery.LoadJobConfig = kwargs["job_config"]
    assert config.source_format == bigquery.SourceFormat.PARQUET
    assert config.write_disposition == bigquery.WriteDisposition.WRITE_TRUNCATE
    assert config.create_disposition == bigquery.CreateDisposition.CREATE_IF_NEEDED
    assert config.time_partitioning.type_ == "DAY" and config.time_partitioning.field == "ts"
    assert config.clustering_fields == ["model_version"]
    assert config.hive_partitioning.mode == "AUTO"
    assert config.hive_partitioning.source_uri_prefix == "gs://lake/monitoring/predictions/"
    assert config.parquet_options.enable_list_inference is True
    client.load_table_from_uri.return_value.result.assert_called_once_with()


@pytest.mark.parametrize(
    ("glob", "uri", "prefix"),
    [
        ("gs://b/log/**/*.parquet", "gs://b/log/*.parquet", "gs://b/log/"),
        (
            "gs://b/log/date=2024-05-01/*.parquet",
            "gs://b/log/date=2024-05-01/*.parquet",
            "gs://b/log/",
        ),
        ("gs://b/exports/*.parquet", "gs://b/exports/*.parquet", None),
        ("gs://b/one.parquet", "gs://b/one.parquet", None),
    ],
)
def test_load_source(glob: str, uri: str, prefix: str | None) -> None:
    assert load_source(glob) == (uri, prefix)


@pytest.mark.parametrize(
    ("glob", "error"),
    [("/srv/log/*.parquet", "Cloud Storage"), ("gs://b/date=*/part-*.parquet", "one '\\*'")],
)
def test_load_source_refuses(glob: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        load_source(glob)


def test_the_merge_is_bigquery_sql_with_typed_rows() -> None:
    """The statement insert_rows sends, as BigQuery (not the emulator) reads it."""
    client = create_autospec(bigquery.Client, instance=True)
    client.create_table.side_effect = lambda table, exists_ok: table
    client.query.return_value.num_dml_affected_rows = 2
    analytics = BigQueryAnalytics("proj", "fmnist", client=client)
    ensure_tables(analytics)
    assert analytics.insert_rows("prediction_events", _events(2)) == 2
    (sql,), kwargs = client.query.call_args
    merge = sqlglot.parse_one(sql, read="bigquery")
    assert isinstance(merge, sqlglot.exp.Merge)
    assert "`time` BETWEEN @since AND @until" in sql  # the partitions it reads are pruned
    rows, since, until = kwargs["job_config"].query_parameters
    assert (since.type_, since.value, until.value) == ("TIMESTAMP", DAY, DAY + timedelta(hours=1))
    first = rows.values[0]
    assert first.struct_types["time"] == "TIMESTAMP"  # from the ISO text of the event
    assert first.struct_types["model_version"] == "INT64"
    assert first.struct_values["time"] == DAY
