"""``fmnist monitor export`` (and ``compact``) through Typer's test runner."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import Result
from typer.testing import CliRunner

from fmnist.cli import app
from fmnist.config import load_settings
from fmnist.identity import digest_text
from fmnist.monitoring.client_ids import client_id_hasher
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.prediction_log import PredictionLog, open_prediction_log
from prediction_records import BASE, records

REQUIRED = {"request_id", "timestamp", "model_version", "predicted_class", "probabilities", "arm"}


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture
def log() -> PredictionLog:
    log = open_prediction_log(load_settings().settings)
    log.append(records(30))
    return log


def test_jsonl_to_stdout_one_record_per_line(log: PredictionLog) -> None:
    result = run("monitor", "export")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["request_id"] for r in rows] == [f"req-{i:05d}" for i in range(30)]
    assert rows[0].keys() >= REQUIRED and "pixels" not in rows[0]
    first = log.get("req-00000")
    assert first is not None
    assert rows[0]["timestamp"] == first.timestamp
    assert rows[0]["probabilities"] == list(first.probabilities)
    assert (rows[0]["model_version"], rows[0]["arm"], rows[0]["photo_flags"]) == (
        1,
        "",
        {"segmented": True},
    )


def test_last_since_and_pixels(log: PredictionLog) -> None:
    last = run("monitor", "export", "--last", "3", "--with-pixels")
    assert last.exit_code == 0, last.output
    rows = [json.loads(line) for line in last.stdout.splitlines()]
    assert [r["request_id"] for r in rows] == ["req-00027", "req-00028", "req-00029"]
    assert base64.b64decode(rows[0]["pixels"]) == bytes([27]) * 784

    since = run("monitor", "export", "--since", (BASE + timedelta(hours=25)).isoformat())
    assert [json.loads(x)["request_id"] for x in since.stdout.splitlines()] == [
        f"req-{i:05d}" for i in range(25, 30)
    ]
    recent = run("monitor", "export", "--since", "1h")  # the records are from 2024
    assert recent.exit_code == 0 and recent.stdout == ""


def test_compacted_days_are_exported_too(log: PredictionLog) -> None:
    log.compact(BASE.date() + timedelta(days=1))
    result = run("monitor", "export", "--last", "10")
    assert [json.loads(x)["request_id"] for x in result.stdout.splitlines()] == [
        f"req-{i:05d}" for i in range(20, 30)
    ]


def test_parquet_and_jsonl_files(log: PredictionLog, tmp_path: Path) -> None:
    out = tmp_path / "export" / "log.parquet"
    result = run("monitor", "export", "--format", "parquet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote 30 records" in result.stderr
    table = pq.read_table(out)
    assert table.num_rows == 30 and set(table.column_names) >= REQUIRED
    assert table.column("probabilities").to_pylist()[0] == list(log.window(30)[0].probabilities)
    assert [p.name for p in out.parent.iterdir()] == ["log.parquet"]  # no temporary left

    jsonl = tmp_path / "log.jsonl"
    assert run("monitor", "export", "--last", "2", "--out", str(jsonl)).exit_code == 0
    assert len(jsonl.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "csv"], "--format must be one of jsonl, parquet, got 'csv'"),
        (["--format", "parquet"], "--format parquet needs --out FILE"),
        (["--last", "0"], "--last must be at least 1, got 0"),
        (["--since", "yesterday"], "invalid time 'yesterday'"),
    ],
)
def test_bad_arguments_give_one_line(log: PredictionLog, args: list[str], message: str) -> None:
    result = run("monitor", "export", *args)
    assert result.exit_code == 2
    assert message in error_line(result)


def test_a_missing_log_is_named() -> None:
    result = run("monitor", "export")
    assert result.exit_code == 2
    assert "no prediction log at" in error_line(result)


def test_compact_command(log: PredictionLog) -> None:
    result = run("monitor", "compact", "--before", "2024-05-02")
    assert result.exit_code == 0, result.output
    assert "compacted 1 days (24 rows into 1 segments, 24 live rows removed)" in result.stderr
    assert log.segments.days() == []  # 2024 is past the 90-day retention: all deleted
    assert log.count() == 0
    bad = run("monitor", "compact", "--before", "May")
    assert "--before must be a date" in error_line(bad)


def test_purge_deletes_a_clients_records_by_the_id_it_sent(log: PredictionLog) -> None:
    settings = load_settings().settings
    hasher = client_id_hasher(settings)
    mine = [
        dataclasses.replace(r, client_id=hasher("alice@example.com")) for r in records(5, start=100)
    ]
    legacy = dataclasses.replace(  # logged before client ids were salted
        records(1, start=200)[0], client_id=digest_text("alice@example.com", length=32)
    )
    log.append([*mine, legacy])
    FeedbackStore(log).record(mine[0].request_id, 3)

    dry = run("monitor", "purge", "--client", "alice@example.com", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would delete 6 predictions of 1 client(s)" in dry.stderr
    assert log.count() == 36

    done = run("monitor", "purge", "--client", "alice@example.com")
    assert done.exit_code == 0, done.output
    assert "deleted 6 predictions of 1 client(s) (6 live, 0 compacted; 0 segments " in done.stderr
    assert "and 1 feedback" in done.stderr
    assert log.count() == 30
    exported = run("monitor", "export").stdout
    assert all(h not in exported for h in hasher.candidates("alice@example.com"))
    assert "--client needs a non-empty client id" in error_line(
        run("monitor", "purge", "--client", " ")
    )
