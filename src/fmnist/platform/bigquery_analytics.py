"""The analytics port on BigQuery (profile ``gcp``), through google-cloud-bigquery.

How each operation maps onto BigQuery:

- :meth:`BigQueryAnalytics.query` runs the text unchanged (it is written in BigQuery's dialect)
  with the dataset as default dataset, so the named queries' bare table names resolve. The
  ``@name`` parameters come from a mapping of Python values, as :class:`DuckDbAnalytics` takes
  them (``to_duckdb`` only renames ``@name`` to ``$name``; DuckDB infers each type from the
  value): here each value becomes a typed ``ScalarQueryParameter`` (or an
  ``ArrayQueryParameter`` for a list), its type read from the Python type. A value that is
  already a ``bigquery`` query parameter is passed as it is (the way to send a typed NULL).
- :meth:`BigQueryAnalytics.ensure_table` creates the table from the BigQuery JSON schema,
  partitioned by day on its first ``TIMESTAMP``/``DATE``/``DATETIME`` column, clustered by
  ``model_version`` where there is one, labelled with the deduplication key
  (:data:`KEY_LABEL`) and the configured resource labels.
- :meth:`BigQueryAnalytics.insert_rows` is a ``MERGE`` of the rows (an array-of-struct query
  parameter) that inserts only the keys not already in the table, looking only at the time
  range of the rows on the partitioning column, so BigQuery prunes the partitions it reads (a
  redelivered event carries the same time as before: its key is found there). The count of
  rows written is the job's ``num_dml_affected_rows``: exact, atomic per batch and idempotent,
  which the streaming ``insertAll`` API cannot give (its ``insertId`` deduplication is best
  effort, for about a minute, and says nothing of what was new).
- :meth:`BigQueryAnalytics.register_parquet` is a **load job** from Cloud Storage
  (``gs://``), ``WRITE_TRUNCATE``: the table becomes a copy of the Parquet files matching
  the glob, and calling it again refreshes the copy rather than appending the same rows again,
  as DuckDB's ``CREATE OR REPLACE VIEW`` does. Hive-style folders (``date=YYYY-MM-DD/``)
  become columns, as DuckDB's ``hive_partitioning`` makes them; the table is partitioned by day
  on :attr:`BigQueryAnalytics.parquet_time_column` (``ts`` in the prediction log's segments) and
  clustered by ``model_version``. A load job rather than an external table: the rows are then
  stored, partitioned and clustered in BigQuery, and a query does not read Cloud Storage.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud import bigquery

KEY_LABEL = "fmnist_key"
"""The table label that names the deduplication key column (set by ``ensure_table``)."""
CLUSTER_COLUMN = "model_version"
"""Tables that have this column are clustered by it."""
TIME_TYPES = ("TIMESTAMP", "DATE", "DATETIME")
"""Column types a table can be partitioned by (by day)."""
MERGE_BATCH = 1000
"""Rows per ``MERGE`` statement (its array parameter stays well under BigQuery's 10 MB)."""

_STANDARD_TYPE = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}
_PROJECT = re.compile(r"[a-z][a-z0-9.:-]{0,61}[a-z0-9]")
_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}")
_HIVE_SEGMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class _TableInfo:
    """What inserting into a table needs: its columns by name, its key, its partitioning."""

    fields: Mapping[str, bigquery.SchemaField]
    key: str
    partition_column: str | None


class BigQueryAnalytics:
    """:class:`~fmnist.platform.analytics.Analytics` on a BigQuery dataset."""

    def __init__(
        self,
        project: str,
        dataset: str,
        *,
        client: bigquery.Client | None = None,
        location: str | None = None,
        labels: Mapping[str, str] | None = None,
        parquet_time_column: str | None = "ts",
        emulator_url: str | None = None,
    ) -> None:
        """Use dataset ``dataset`` of project ``project`` (the dataset must exist; Terraform
        creates it). ``client`` defaults to ``bigquery.Client(project, location=location)``,
        made on first use with the application default credentials; ``location`` is where
        jobs run (None: BigQuery takes the dataset's). ``labels`` go on the tables created
        and on every job. ``parquet_time_column`` is the column :meth:`register_parquet`
        partitions by (None: not partitioned). ``emulator_url`` points the default client at a
        BigQuery emulator (``gcp.bigquery_emulator_url``) with anonymous credentials."""
        if not _PROJECT.fullmatch(project):
            raise ValueError(f"invalid project id {project!r}")
        if not _DATASET.fullmatch(dataset):
            raise ValueError(f"invalid dataset id {dataset!r} (letters, digits, underscores)")
        self.project = project
        self.dataset = dataset
        self.location = location
        self.labels = dict(labels or {})
        self.parquet_time_column = parquet_time_column
        self._client = client
        self.emulator_url = emulator_url
        self._tables: dict[str, _TableInfo] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> bigquery.Client:
        """The BigQuery client (created on first use)."""
        with self._lock:
            if self._client is None:
                from google.cloud import bigquery

                if self.emulator_url:
                    from google.api_core.client_options import ClientOptions
                    from google.auth.credentials import AnonymousCredentials

                    self._client = bigquery.Client(
                        project=self.project,
                        location=self.location,
                        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                        client_options=ClientOptions(api_endpoint=self.emulator_url),
                    )
                else:
                    self._client = bigquery.Client(project=self.project, location=self.location)
            return self._client

    def table_id(self, table: str) -> str:
        """``project.dataset.table``."""
        return f"{self.project}.{self.dataset}.{_identifier(table)}"

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run ``sql`` (BigQuery dialect) with ``@name`` parameters; rows as dicts."""
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            default_dataset=f"{self.project}.{self.dataset}",
            query_parameters=[query_parameter(n, v) for n, v in (parameters or {}).items()],
            labels=self.labels,
        )
        job = self.client.query(sql, job_config=config, location=self.location)
        return [dict(row.items()) for row in job.result()]

    def ensure_table(self, table: str, schema: Sequence[Mapping[str, str]], key: str) -> None:
        """Create ``table`` from the BigQuery JSON schema unless it exists: partitioned by day
        on its first time column, clustered by ``model_version`` where present, ``key``
        recorded in the label :data:`KEY_LABEL`. An existing table is left as it is."""
        from google.cloud import bigquery

        fields = [bigquery.SchemaField.from_api_repr(dict(field)) for field in schema]
        names = [_identifier(f.name) for f in fields]
        if key not in names:
            raise ValueError(f"key {key!r} is not a column of {table!r}")
        spec = bigquery.Table(self.table_id(table), schema=fields)
        partition = _partition_column(fields)
        if partition is not None:
            spec.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field=partition
            )
        if CLUSTER_COLUMN in names:
            spec.clustering_fields = [CLUSTER_COLUMN]
        spec.labels = {**self.labels, KEY_LABEL: key.lower()}
        created = self.client.create_table(spec, exists_ok=True)
        self._tables[table] = _table_info(created, default_key=key)

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """``MERGE`` the rows whose key is not in ``table`` yet (the first of a key repeated in
        ``rows`` wins); returns how many were added. Columns are those of the first row."""
        if not rows:
            return 0
        info = self._info(table)
        names = [_identifier(n) for n in rows[0]]
        missing = [n for n in names if n not in info.fields]
        if missing or info.key not in names:
            raise ValueError(
                f"rows for {table!r} need its key {info.key!r} and only its columns; "
                f"unknown: {missing}"
            )
        unique: dict[Any, Mapping[str, Any]] = {}
        for row in rows:
            unique.setdefault(row[info.key], row)
        batch = list(unique.values())
        written = 0
        for start in range(0, len(batch), MERGE_BATCH):
            written += self._merge(table, info, names, batch[start : start + MERGE_BATCH])
        return written

    def _merge(
        self, table: str, info: _TableInfo, names: list[str], rows: list[Mapping[str, Any]]
    ) -> int:
        from google.cloud import bigquery

        structs = [
            bigquery.StructQueryParameter(
                None, *(_field_parameter(info.fields[n], row.get(n)) for n in names)
            )
            for row in rows
        ]
        parameters: list[Any] = [bigquery.ArrayQueryParameter("rows", "STRUCT", structs)]
        on = f"t.`{info.key}` = s.`{info.key}`"
        part = info.partition_column
        if part is not None and part in names:
            values = [_field_value(info.fields[part], row.get(part)) for row in rows]
            if all(v is not None for v in values):
                kind = _kind(info.fields[part])
                parameters += [
                    bigquery.ScalarQueryParameter("since", kind, min(values)),
                    bigquery.ScalarQueryParameter("until", kind, max(values)),
                ]
                on += f" AND t.`{part}` BETWEEN @since AND @until"
        columns = ", ".join(f"`{n}`" for n in names)
        sql = (  # identifiers checked: _identifier, the constructor's patterns
            f"MERGE `{self.table_id(table)}` AS t "  # noqa: S608  # nosec B608
            f"USING (SELECT {', '.join(f'r.`{n}` AS `{n}`' for n in names)} "
            "FROM UNNEST(@rows) AS r) AS s "
            f"ON {on} "
            f"WHEN NOT MATCHED THEN INSERT ({columns}) "
            f"VALUES ({', '.join(f's.`{n}`' for n in names)})"
        )
        config = bigquery.QueryJobConfig(query_parameters=parameters, labels=self.labels)
        job = self.client.query(sql, job_config=config, location=self.location)
        job.result()
        return int(job.num_dml_affected_rows or 0)

    def _info(self, table: str) -> _TableInfo:
        info = self._tables.get(table)
        if info is None:
            info = _table_info(self.client.get_table(self.table_id(table)), default_key=None)
            self._tables[table] = info
        return info

    def register_parquet(self, table: str, url_glob: str) -> None:
        """Load the Parquet files matching ``url_glob`` (``gs://``) into ``table``, replacing
        its rows (a load job, ``WRITE_TRUNCATE``; see the module docstring)."""
        from google.cloud import bigquery

        uri, hive_prefix = load_source(url_glob)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
            labels=self.labels,
        )
        options = bigquery.ParquetOptions()  # type: ignore[no-untyped-call]
        options.enable_list_inference = True  # list<double> as REPEATED FLOAT64, not a record
        config.parquet_options = options
        if hive_prefix is not None:
            hive = bigquery.HivePartitioningOptions()
            hive.mode = "AUTO"
            hive.source_uri_prefix = hive_prefix
            config.hive_partitioning = hive
        if self.parquet_time_column is not None:
            config.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field=self.parquet_time_column
            )
            config.clustering_fields = [CLUSTER_COLUMN]
        job = self.client.load_table_from_uri(
            uri, self.table_id(table), job_config=config, location=self.location
        )
        job.result()
        self._tables.pop(table, None)


def load_source(url_glob: str) -> tuple[str, str | None]:
    """The load job's source URI for a Parquet glob, and its Hive partitioning prefix.

    BigQuery takes one ``*`` per URI, and it matches across ``/``: DuckDB's recursive
    ``prefix/**/*.parquet`` becomes ``prefix/*.parquet``. The prefix (None: no Hive
    partitioning) ends before the first ``key=value`` folder of the glob, or before the
    wildcard when the glob reached into folders (``**``)."""
    if not url_glob.startswith("gs://"):
        raise ValueError(f"BigQuery loads Parquet from Cloud Storage (gs://...), not {url_glob!r}")
    recursive = "**" in url_glob
    uri = re.sub(r"\*\*(/\*)?", "*", url_glob)
    if uri.count("*") > 1:
        raise ValueError(f"BigQuery takes one '*' wildcard per URI: {url_glob!r}")
    parts = uri.split("/")
    for index, part in enumerate(parts[3:], start=3):  # gs:, "", bucket, then the path
        if _HIVE_SEGMENT.match(part):
            return uri, "/".join(parts[:index]) + "/"
        if "*" in part:
            return uri, ("/".join(parts[:index]) + "/") if recursive else None
    return uri, None


def query_parameter(name: str, value: Any) -> Any:
    """The BigQuery query parameter ``@name`` for a Python value (its type from the value's).

    ``bool`` BOOL, ``int`` INT64, ``float`` FLOAT64, ``Decimal`` NUMERIC, ``str`` STRING,
    ``bytes`` BYTES, an aware ``datetime`` TIMESTAMP, a naive one DATETIME, ``date`` DATE,
    ``time`` TIME; a list or tuple an ARRAY of its first element's type. A ``bigquery`` query
    parameter passes unchanged. ``None`` has no type: pass a typed ``ScalarQueryParameter``."""
    from google.cloud import bigquery

    if isinstance(
        value,
        bigquery.ScalarQueryParameter
        | bigquery.ArrayQueryParameter
        | bigquery.StructQueryParameter,
    ):
        return value
    if isinstance(value, list | tuple):
        kinds = {_scalar_type(name, v) for v in value if v is not None}
        if len(kinds) != 1:
            raise TypeError(
                f"parameter @{name}: an array needs elements of one type (got {sorted(kinds)}); "
                "pass a bigquery.ArrayQueryParameter"
            )
        return bigquery.ArrayQueryParameter(name, kinds.pop(), list(value))
    return bigquery.ScalarQueryParameter(name, _scalar_type(name, value), value)


def _scalar_type(name: str, value: Any) -> str:
    if value is None:
        raise TypeError(f"parameter @{name} is None: pass a typed bigquery.ScalarQueryParameter")
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, Decimal):
        return "NUMERIC"
    if isinstance(value, str):
        return "STRING"
    if isinstance(value, bytes):
        return "BYTES"
    if isinstance(value, datetime):
        return "DATETIME" if value.tzinfo is None else "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    if isinstance(value, time):
        return "TIME"
    raise TypeError(f"parameter @{name}: no BigQuery type for {type(value).__name__}")


def _field_value(field: bigquery.SchemaField, value: Any) -> Any:
    """``value`` for column ``field``: ISO text parsed for the time types."""
    if not isinstance(value, str):
        return value
    kind = _kind(field)
    if kind in ("TIMESTAMP", "DATETIME"):
        return datetime.fromisoformat(value)
    if kind == "DATE":
        return date.fromisoformat(value)
    return value


def _field_parameter(field: bigquery.SchemaField, value: Any) -> Any:
    """The struct member for ``value`` in column ``field``, typed by the column."""
    from google.cloud import bigquery

    kind = _kind(field)
    if kind in ("RECORD", "STRUCT"):
        raise ValueError(f"column {field.name!r}: RECORD columns are not supported")
    if field.mode == "REPEATED":
        values = [_field_value(field, v) for v in value or []]
        return bigquery.ArrayQueryParameter(field.name, kind, values)
    return bigquery.ScalarQueryParameter(field.name, kind, _field_value(field, value))


def _kind(field: bigquery.SchemaField) -> str:
    """The standard SQL name of the column's type (``INTEGER`` is ``INT64``...)."""
    kind = str(field.field_type).upper()
    return _STANDARD_TYPE.get(kind, kind)


def _partition_column(fields: Sequence[bigquery.SchemaField]) -> str | None:
    for field in fields:
        if _kind(field) in TIME_TYPES and field.mode != "REPEATED":
            return str(field.name)
    return None


def _table_info(table: bigquery.Table, default_key: str | None) -> _TableInfo:
    fields = {f.name: f for f in table.schema}
    lowered = {n.lower(): n for n in fields}
    key = lowered.get((table.labels or {}).get(KEY_LABEL, ""), default_key)
    if key is None:
        raise ValueError(
            f"table {table.table_id!r} has no {KEY_LABEL!r} label: call ensure_table first "
            "(or label the table with its key column)"
        )
    partitioning = table.time_partitioning
    column = partitioning.field if partitioning is not None else None
    return _TableInfo(fields, key, column)


def _identifier(name: str) -> str:
    if not name.isidentifier():
        raise ValueError(f"invalid identifier {name!r}")
    return name
