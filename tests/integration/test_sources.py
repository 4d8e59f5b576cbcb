"""Local sources: directory lookup, checksum verification and the fixed source chain."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from fmnist.config import load_settings
from fmnist.data.sources import (
    DATASET_FILES,
    TRAIN_LABELS,
    DirectorySource,
    DownloadSource,
    RawDataset,
    default_sources,
    load_raw,
)
from fmnist.errors import ChecksumError, DataNotFoundError
from helpers import OfflineEnv, regzip_with_changed_byte


def link_dataset(src: Path, dst: Path, *, skip: str | None = None) -> Path:
    """A folder of symlinks to the real files (all but ``skip``)."""
    dst.mkdir(parents=True, exist_ok=True)
    for file in DATASET_FILES:
        if file.name != skip:
            (dst / f"{file.name}.gz").symlink_to(src / f"{file.name}.gz")
    return dst


def test_real_dataset_is_complete_and_verified(raw_dataset: RawDataset) -> None:
    assert raw_dataset.train_images.shape == (60_000, 28, 28)
    assert raw_dataset.train_labels.shape == (60_000,)
    assert raw_dataset.test_images.shape == (10_000, 28, 28)
    assert raw_dataset.test_labels.shape == (10_000,)
    assert raw_dataset.train_images.dtype == np.uint8
    assert set(np.unique(raw_dataset.train_labels).tolist()) == set(range(10))
    assert raw_dataset.checksums == {f.name: f.sha256 for f in DATASET_FILES}
    assert len(raw_dataset.content_hash) == 64
    int(raw_dataset.content_hash, 16)


def test_directory_source_finds_plain_and_gzipped_files(tmp_path: Path) -> None:
    source = DirectorySource("here", tmp_path)
    assert source.locate(TRAIN_LABELS) is None
    (tmp_path / f"{TRAIN_LABELS.name}.gz").write_bytes(b"")
    assert source.locate(TRAIN_LABELS) == tmp_path / f"{TRAIN_LABELS.name}.gz"
    (tmp_path / TRAIN_LABELS.name).write_bytes(b"")
    assert source.locate(TRAIN_LABELS) == tmp_path / TRAIN_LABELS.name  # plain first
    assert source.describe() == f"here: {tmp_path}"


def test_uncompressed_files_load_like_gzipped_ones(
    fmnist_data_dir: Path, raw_dataset: RawDataset, tmp_path: Path
) -> None:
    folder = link_dataset(fmnist_data_dir, tmp_path / "mixed", skip=TRAIN_LABELS.name)
    gz = (fmnist_data_dir / f"{TRAIN_LABELS.name}.gz").read_bytes()
    (folder / TRAIN_LABELS.name).write_bytes(gzip.decompress(gz))

    raw = load_raw([DirectorySource("mixed", folder)])

    np.testing.assert_array_equal(raw.train_labels, raw_dataset.train_labels)
    assert raw.content_hash == raw_dataset.content_hash


def test_changed_byte_is_a_checksum_error_without_fallthrough(
    fmnist_data_dir: Path, tmp_path: Path
) -> None:
    bad = link_dataset(fmnist_data_dir, tmp_path / "bad", skip=TRAIN_LABELS.name)
    gz = (fmnist_data_dir / f"{TRAIN_LABELS.name}.gz").read_bytes()
    bad_labels = bad / f"{TRAIN_LABELS.name}.gz"
    bad_labels.write_bytes(regzip_with_changed_byte(gz))
    good = DirectorySource("good", fmnist_data_dir)

    with pytest.raises(ChecksumError) as info:
        load_raw([DirectorySource("bad", bad), good])

    message = str(info.value)
    assert message.startswith(f"{bad_labels}: SHA-256")
    assert f"expected {TRAIN_LABELS.sha256}" in message


def test_incomplete_folder_is_skipped(fmnist_data_dir: Path, tmp_path: Path) -> None:
    partial = link_dataset(fmnist_data_dir, tmp_path / "partial", skip=TRAIN_LABELS.name)
    raw = load_raw([DirectorySource("partial", partial), DirectorySource("full", fmnist_data_dir)])
    assert raw.source == f"full: {fmnist_data_dir}"


def test_nothing_found_lists_the_sources_in_order(tmp_path: Path) -> None:
    sources = [DirectorySource("first", tmp_path / "a"), DirectorySource("second", tmp_path / "b")]
    with pytest.raises(DataNotFoundError) as info:
        load_raw(sources)
    message = str(info.value)
    assert f"1. first: {tmp_path / 'a'}; 2. second: {tmp_path / 'b'}" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "Last error" not in message


def test_default_chain_order(
    fmnist_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FMNIST_DATA_DIR", str(fmnist_data_dir))
    monkeypatch.setenv("FMNIST_DATA__DOWNLOAD_RETRIES", "1")
    monkeypatch.setenv("FMNIST_DATA__DOWNLOAD_TIMEOUT_S", "5")
    settings = load_settings().settings

    sources = default_sources(settings, show_progress=False)

    assert [s.label for s in sources] == [
        "FMNIST_DATA_DIR",
        "user cache",
        "Debian package dataset-fashion-mnist",
        "download",
    ]
    cache = tmp_path / "cache" / "fmnist" / "fashion-mnist"
    assert sources[1] == DirectorySource("user cache", cache)
    download = sources[3]
    assert isinstance(download, DownloadSource)
    assert download.cache_dir == cache
    assert (download.retries, download.timeout_s, download.show_progress) == (1, 5.0, False)
    assert download.describe().startswith("download: http://fashion-mnist.s3-website")


def test_default_chain_without_data_dir_starts_with_the_cache() -> None:
    sources = default_sources(load_settings().settings)
    assert [s.label for s in sources] == [
        "user cache",
        "Debian package dataset-fashion-mnist",
        "download",
    ]


def test_load_via_settings_uses_data_dir_first(
    fmnist_data_dir: Path, offline_env: OfflineEnv, raw_dataset: RawDataset
) -> None:
    offline_env(fmnist_data_dir)
    raw = load_raw(default_sources(load_settings().settings, show_progress=False))
    assert raw.source == f"FMNIST_DATA_DIR: {fmnist_data_dir}"
    assert raw.content_hash == raw_dataset.content_hash
