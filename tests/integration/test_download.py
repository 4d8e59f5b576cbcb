"""Downloads from a real HTTP server on 127.0.0.1 serving the real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fmnist.config import load_settings
from fmnist.data.sources import (
    DATASET_FILES,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    DownloadSource,
    RawDataset,
    default_sources,
    load_raw,
)
from fmnist.errors import ChecksumError, DataNotFoundError
from helpers import OfflineEnv, closed_port, regzip_with_changed_byte
from local_mirror import Mirror

pytestmark = pytest.mark.network

GZ = {f.name: f"{f.name}.gz" for f in DATASET_FILES}


def use_mirrors(offline_env: OfflineEnv, *urls: str, retries: int = 0) -> Path:
    """Point the chain at ``urls`` (no data_dir, no Debian folder); return the cache folder."""
    offline_env(data__mirrors=json.dumps(list(urls)), data__download_retries=str(retries))
    return load_settings().settings.cache_dir / "fashion-mnist"


def load() -> RawDataset:
    return load_raw(default_sources(load_settings().settings, show_progress=False))


def cache_listing(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_download_verifies_and_caches(
    mirror: Mirror, offline_env: OfflineEnv, raw_dataset: RawDataset
) -> None:
    cache = use_mirrors(offline_env, mirror.url)

    raw = load()

    assert raw.source == f"download: {mirror.url}"
    assert raw.content_hash == raw_dataset.content_hash
    np.testing.assert_array_equal(raw.train_labels, raw_dataset.train_labels)
    np.testing.assert_array_equal(raw.test_images, raw_dataset.test_images)
    assert cache_listing(cache) == sorted(GZ.values())  # no .part leftovers
    assert mirror.state.requests == dict.fromkeys(GZ.values(), 1)

    again = load()

    assert again.source == f"user cache: {cache}"
    assert again.content_hash == raw_dataset.content_hash
    assert mirror.state.total_requests == 4  # the second load never hit the server


def test_corrupted_download_is_rejected_and_not_cached(
    mirror: Mirror, offline_env: OfflineEnv
) -> None:
    name = GZ[TRAIN_LABELS.name]
    mirror.state.files[name] = regzip_with_changed_byte(mirror.state.files[name])
    cache = use_mirrors(offline_env, mirror.url)

    with pytest.raises(ChecksumError) as info:
        load()

    message = str(info.value)
    assert message.startswith(f"{TRAIN_LABELS.name} downloaded from {mirror.url}{name}")
    assert "not saved" in message
    # The file verified before it stays; the corrupted one and any partial file are gone.
    assert cache_listing(cache) == [GZ[TRAIN_IMAGES.name]]


def test_server_errors_are_retried(
    mirror: Mirror, offline_env: OfflineEnv, raw_dataset: RawDataset
) -> None:
    name = GZ[TRAIN_LABELS.name]
    mirror.state.fail(name, 500, 500)
    use_mirrors(offline_env, mirror.url, retries=2)

    raw = load()

    assert raw.content_hash == raw_dataset.content_hash
    assert mirror.state.requests[name] == 3
    assert mirror.state.requests[GZ[TRAIN_IMAGES.name]] == 1


def test_retries_run_out(mirror: Mirror, offline_env: OfflineEnv) -> None:
    name = GZ[TRAIN_IMAGES.name]
    mirror.state.fail(name, 503, 429, 500)
    cache = use_mirrors(offline_env, mirror.url, retries=1)

    with pytest.raises(DataNotFoundError) as info:
        load()

    message = str(info.value)
    assert "HTTP 429 (after 2 attempts)" in message
    assert mirror.state.requests[name] == 2
    assert cache_listing(cache) == []


def test_not_found_lists_the_sources(
    mirror: Mirror, offline_env: OfflineEnv, tmp_path: Path
) -> None:
    del mirror.state.files[GZ[TRAIN_IMAGES.name]]
    cache = use_mirrors(offline_env, mirror.url, retries=3)

    with pytest.raises(DataNotFoundError) as info:
        load()

    message = str(info.value)
    assert (
        f"Sources tried in order: 1. user cache: {cache}; "
        f"2. Debian package dataset-fashion-mnist: {tmp_path / 'no-debian-dataset'}; "
        f"3. download: {mirror.url}."
    ) in message
    assert f"Last error: could not download {TRAIN_IMAGES.name}: " in message
    assert f"{mirror.url}{GZ[TRAIN_IMAGES.name]}: HTTP 404" in message
    assert mirror.state.requests[GZ[TRAIN_IMAGES.name]] == 1  # a 404 is not retried


def test_dead_mirror_falls_back_to_the_next(
    mirror: Mirror, offline_env: OfflineEnv, raw_dataset: RawDataset
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/"
    use_mirrors(offline_env, dead, mirror.url)

    raw = load()

    assert raw.source == f"download: {dead}, {mirror.url}"
    assert raw.content_hash == raw_dataset.content_hash
    assert mirror.state.total_requests == 4


def test_files_finished_by_an_earlier_run_are_reused(
    mirror: Mirror, offline_env: OfflineEnv, fmnist_data_dir: Path
) -> None:
    cache = use_mirrors(offline_env, mirror.url)
    cache.mkdir(parents=True)
    name = GZ[TRAIN_IMAGES.name]
    (cache / name).write_bytes((fmnist_data_dir / name).read_bytes())

    load()

    assert mirror.state.requests[name] == 0
    assert mirror.state.total_requests == 3


def test_download_source_with_progress_bar(mirror: Mirror, tmp_path: Path) -> None:
    source = DownloadSource(mirrors=[mirror.url], cache_dir=tmp_path / "dl", retries=0)

    path = source.locate(TRAIN_LABELS)

    assert path == tmp_path / "dl" / GZ[TRAIN_LABELS.name]
    assert path.read_bytes() == mirror.state.files[GZ[TRAIN_LABELS.name]]
    assert source.describe() == f"download: {mirror.url}"
