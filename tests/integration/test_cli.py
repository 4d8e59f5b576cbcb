"""The ``fmnist`` command line, driven in-process through Typer's test runner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from fmnist import __version__, cli
from fmnist.config import DataSettings
from fmnist.data.snapshot import snapshot_id
from fmnist.data.sources import DATASET_FILES, RawDataset
from fmnist.errors import ConfigError, SnapshotNotFoundError
from helpers import OfflineEnv
from local_mirror import Mirror


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep Rich from wrapping long paths and ids in tables."""
    monkeypatch.setattr(cli.console, "width", 240)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli.app, list(args))


def single_error_line(result: Result) -> str:
    """The one stderr line of an expected failure, checked for shape."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"fmnist {__version__}"


def test_config_show_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_DATA__VAL_FRACTION", "0.2")
    result = run("config", "show")

    assert result.exit_code == 0, result.output
    assert "fmnist settings (profile: local)" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "data.val_fraction" in line)
    assert "0.2" in row
    assert "env FMNIST_DATA__VAL_FRACTION" in row


def test_config_show_json_with_provenance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("data:\n  split_seed: 5\n", encoding="utf-8")
    monkeypatch.setenv("FMNIST_DATA__VAL_FRACTION", "0.2")

    result = run("--config", str(config), "config", "show", "--json")

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["data.val_fraction"] == {
        "value": 0.2,
        "source": "env FMNIST_DATA__VAL_FRACTION",
    }
    assert payload["data.split_seed"] == {"value": 5, "source": f"{config}:2"}
    assert payload["profile"] == {"value": "local", "source": "default"}
    assert payload["home"]["value"] == str(tmp_path / "home")


def test_invalid_setting_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_DATA__VAL_FRACTION", "0.9")
    result = run("config", "show")

    assert result.exit_code == 2
    line = single_error_line(result)
    assert line.startswith("error: invalid setting 'data.val_fraction'")
    assert line.endswith("[from env FMNIST_DATA__VAL_FRACTION]")
    assert result.stdout == ""


def test_invalid_setting_with_debug_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_DATA__VAL_FRACTION", "0.9")
    result = run("--debug", "config", "show")

    assert isinstance(result.exception, ConfigError)
    assert "data.val_fraction" in str(result.exception)
    assert result.exit_code == 1


def test_bad_config_file_is_one_error_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("data:\n  no_such_key: 1\n", encoding="utf-8")
    result = run("--config", str(config), "config", "show")

    assert result.exit_code == 2
    line = single_error_line(result)
    assert "'data.no_such_key': unknown setting" in line
    assert f"[from {config}:2]" in line


def test_data_sources(fmnist_data_dir: Path, offline_env: OfflineEnv, tmp_path: Path) -> None:
    env = offline_env(fmnist_data_dir)
    result = run("data", "sources")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"1. FMNIST_DATA_DIR: {fmnist_data_dir}  (complete)",
        f"2. user cache: {tmp_path / 'cache' / 'fmnist' / 'fashion-mnist'}  (0/4 files)",
        f"3. Debian package dataset-fashion-mnist: {env['FMNIST_DEBIAN_DATA_DIR']}  (0/4 files)",
        f"4. download: {json.loads(env['FMNIST_DATA__MIRRORS'])[0]}  "
        "(used only when no folder above is complete)",
    ]


def test_data_fetch(
    fmnist_data_dir: Path, offline_env: OfflineEnv, raw_dataset: RawDataset
) -> None:
    offline_env(fmnist_data_dir)
    result = run("data", "fetch")

    assert result.exit_code == 0, result.output
    assert f"source: FMNIST_DATA_DIR: {fmnist_data_dir}" in result.stdout
    for file in DATASET_FILES:
        assert f"ok {file.name}  sha256 {file.sha256[:16]}..." in result.stdout
    assert "train 60,000 + test 10,000 images loaded and verified" in result.stdout
    assert f"content hash {raw_dataset.content_hash[:16]}" in result.stdout


def test_data_validate_writes_the_report(
    fmnist_data_dir: Path, offline_env: OfflineEnv, tmp_path: Path, raw_dataset: RawDataset
) -> None:
    offline_env(fmnist_data_dir)
    result = run("data", "validate")

    assert result.exit_code == 0, result.output
    report = tmp_path / "home" / "reports" / f"validation-{raw_dataset.content_hash[:16]}.json"
    assert f"report: {report}" in result.stdout
    data = json.loads(report.read_text())
    assert data["passed"] is True
    assert data["dataset"] == raw_dataset.content_hash
    assert "validation PASSED: 0 of 14 failed" in result.stdout
    assert "leakage: 0 test images also in train (0 with another label)" in result.stdout


def test_data_validate_failure_exits_1_and_still_writes_the_report(
    fmnist_data_dir: Path, offline_env: OfflineEnv, tmp_path: Path
) -> None:
    offline_env(fmnist_data_dir, validation__blank_range="255", validation__max_blank_fraction="0")
    report = tmp_path / "out" / "report.json"
    result = run("data", "validate", "--report", str(report))

    assert result.exit_code == 1
    line = single_error_line(result)
    assert line == (
        "error: data validation failed: train.blank_fraction, test.blank_fraction "
        f"(report: {report})"
    )
    data = json.loads(report.read_text())
    assert data["passed"] is False
    assert {c["name"] for c in data["checks"] if not c["passed"]} == {
        "train.blank_fraction",
        "test.blank_fraction",
    }
    assert "validation FAILED: 2 of 14 failed" in result.stdout


def test_snapshot_lifecycle(
    fmnist_data_dir: Path, offline_env: OfflineEnv, tmp_path: Path, raw_dataset: RawDataset
) -> None:
    offline_env(fmnist_data_dir)
    sid = snapshot_id(raw_dataset, DataSettings())
    lake = tmp_path / "home" / "lake"

    first = run("data", "snapshot")
    assert first.exit_code == 0, first.output
    assert f"wrote snapshot {sid}" in first.stdout
    assert f"location: {lake}/snapshots/{sid}" in first.stdout
    assert "(train 54,000, val 6,000, test 10,000; parquet)" in first.stdout

    second = run("data", "snapshot")
    assert second.exit_code == 0, second.output
    assert f"snapshot {sid} already exists; nothing written" in second.stdout

    listing = run("data", "list")
    assert listing.exit_code == 0, listing.output
    row = next(line for line in listing.stdout.splitlines() if sid in line)
    assert re.search(r"parquet.*54,000.*6,000.*10,000.*passed", row), row

    shown = run("data", "show", sid[:6])
    assert shown.exit_code == 0, shown.output
    manifest = json.loads(shown.stdout)
    assert manifest["snapshot_id"] == sid
    assert manifest["counts"] == {"train": 54_000, "val": 6_000, "test": 10_000}

    validated = run("data", "validate", "--snapshot", sid[:6])
    assert validated.exit_code == 0, validated.output
    report = json.loads((tmp_path / "home" / "reports" / f"validation-{sid}.json").read_text())
    assert report["dataset"] == sid
    assert list(report["splits"]) == ["train", "val", "test"]
    assert [leak["split"] for leak in report["leakage"]] == ["val", "test"]


def test_empty_lake() -> None:
    listing = run("data", "list")
    assert listing.exit_code == 0, listing.output
    assert "snapshots in" in listing.stdout

    shown = run("data", "show", "abc")
    assert shown.exit_code == 2
    assert "no snapshot in" in single_error_line(shown)


def test_expected_failure_with_debug_propagates() -> None:
    result = run("--debug", "data", "show", "abc")
    assert isinstance(result.exception, SnapshotNotFoundError)


def test_nothing_found_lists_the_sources(offline_env: OfflineEnv, tmp_path: Path) -> None:
    env = offline_env()
    result = run("data", "fetch")

    assert result.exit_code == 2
    line = single_error_line(result)
    mirror = json.loads(env["FMNIST_DATA__MIRRORS"])[0]
    assert (
        f"1. user cache: {tmp_path / 'cache' / 'fmnist' / 'fashion-mnist'}; "
        f"2. Debian package dataset-fashion-mnist: {env['FMNIST_DEBIAN_DATA_DIR']}; "
        f"3. download: {mirror}."
    ) in line
    assert "Last error: could not download train-images-idx3-ubyte" in line
    assert "ConnectError" in line


@pytest.mark.network
def test_fetch_downloads_with_progress(
    mirror: Mirror, offline_env: OfflineEnv, tmp_path: Path
) -> None:
    offline_env(data__mirrors=json.dumps([mirror.url]))
    result = run("data", "fetch")

    assert result.exit_code == 0, result.output
    assert f"source: download: {mirror.url}" in result.stdout
    assert mirror.state.total_requests == 4
    cache = tmp_path / "cache" / "fmnist" / "fashion-mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{f.name}.gz" for f in DATASET_FILES)
