"""The storage port on ``gs://`` (gcsfs) against fake-gcs-server (started once per session).

gcsfs and google-cloud-storage both find the emulator through ``STORAGE_EMULATOR_HOST``; no
credentials are needed (without Application Default Credentials gcsfs falls back to anonymous
access). gcsfs's own bucket-type lookup (the Storage Control API, which the emulator does not
serve) fails and falls back to plain GCS with a logged warning: harmless.

Each test uses a bucket of its own.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fsspec
import numpy as np
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs

from fmnist.config import DataSettings, ValidationSettings
from fmnist.data.snapshot import list_snapshots, load_snapshot, write_snapshot
from fmnist.data.sources import RawDataset
from fmnist.platform.registry import ModelVersionInfo, RegistryError
from fmnist.platform.storage import FsspecStorage
from fmnist.registry.exported import ExportedRegistry, export_registry
from fmnist.serving.platform_env import fetch_model_export

pytestmark = pytest.mark.gcp

PROJECT = "fmnist-test"


@dataclass(frozen=True)
class Lake:
    """A bucket of the emulator and a lake URL in it."""

    bucket: gcs.Bucket
    url: str

    def object_names(self) -> list[str]:
        """Every object name in the bucket, as the GCS API lists them."""
        return sorted(blob.name for blob in self.bucket.list_blobs())


@pytest.fixture
def lake(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lake]:
    """A new bucket; the lake is ``gs://<bucket>/lake``."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    client = gcs.Client(project=PROJECT, credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"fmnist-{uuid.uuid4().hex[:12]}")
    yield Lake(bucket, f"gs://{bucket.name}/lake")
    # gcsfs caches its filesystems (and their listings) per process: none outlives the test.
    import gcsfs

    gcsfs.GCSFileSystem.clear_instance_cache()


def test_objects_round_trip(lake: Lake) -> None:
    storage = FsspecStorage(lake.url)
    assert storage.url == lake.url and storage.local_path("anything") is None
    assert not storage.exists("snapshots/a/manifest.json")
    assert storage.list_dirs("snapshots") == [] and storage.list_dirs("") == []

    blob = bytes(range(256)) * 1000
    storage.write_bytes("snapshots/a/manifest.json", b"{}")
    storage.write_bytes("snapshots/b/train.parquet", blob)
    storage.write_bytes("/snapshots/b/nested/deeper.bin", b"x")  # a leading / changes nothing
    storage.write_bytes("top.txt", b"top")

    assert lake.object_names() == [
        "lake/snapshots/a/manifest.json",
        "lake/snapshots/b/nested/deeper.bin",
        "lake/snapshots/b/train.parquet",
        "lake/top.txt",
    ]
    assert storage.read_bytes("snapshots/b/train.parquet") == blob
    assert storage.read_bytes("snapshots/a/manifest.json") == b"{}"
    assert storage.exists("snapshots/a/manifest.json") and storage.exists("snapshots/b")
    assert not storage.exists("snapshots/c") and not storage.exists("snapshots/a/other.json")
    assert storage.list_dirs("") == ["snapshots"]
    assert storage.list_dirs("snapshots") == ["a", "b"]
    assert storage.list_dirs("snapshots/b") == ["nested"]
    assert storage.list_dirs("snapshots/a") == [] and storage.list_dirs("nowhere") == []
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("snapshots/a/missing.json")

    storage.write_bytes("top.txt", b"replaced")
    assert storage.read_bytes("top.txt") == b"replaced"
    assert FsspecStorage(lake.url).read_bytes("top.txt") == b"replaced"
    assert lake.bucket.blob("lake/top.txt").download_as_bytes() == b"replaced"


def test_objects_written_by_another_process_are_seen(lake: Lake) -> None:
    storage = FsspecStorage(lake.url)
    storage.write_bytes("snapshots/a/manifest.json", b"{}")
    assert storage.list_dirs("snapshots") == ["a"]
    # Another process (a training job, say) commits a snapshot meanwhile.
    lake.bucket.blob("lake/snapshots/b/manifest.json").upload_from_string(b"{}")
    assert storage.exists("snapshots/b/manifest.json")
    assert storage.list_dirs("snapshots") == ["a", "b"]


def test_writes_are_atomic(lake: Lake) -> None:
    """Readers see the old object or the new one, never a part, and an upload that stops
    before its end (a writer killed mid-way) leaves the object as it was."""
    storage = FsspecStorage(lake.url)
    size = 3 * 2**20
    versions = [bytes([v]) * size for v in range(4)]
    storage.write_bytes("model.bin", versions[0])
    seen: set[int] = set()
    torn: list[int] = []
    done = threading.Event()

    def read() -> None:
        reader = FsspecStorage(lake.url)
        while not done.is_set():
            data = reader.read_bytes("model.bin")
            if data in versions:
                seen.add(data[0])
            else:
                torn.append(len(data))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for version in (*versions[1:], *versions):
            storage.write_bytes("model.bin", version)
    finally:
        done.set()
        thread.join()
    assert torn == [] and seen

    # A resumable upload that sent 1 MiB of 4 and stopped: nothing of it is visible.
    fs, root = fsspec.core.url_to_fs(lake.url)
    partial = fs.open(f"{root}/model.bin", "wb", block_size=2**18)
    partial.write(b"\xff" * 2**20)
    partial.flush()  # the chunks went to the server; the object is not committed
    try:
        assert lake.bucket.blob("lake/model.bin").download_as_bytes() == versions[-1]
        assert not lake.bucket.blob("lake/new.bin").exists()
        assert storage.read_bytes("model.bin") == versions[-1]
    finally:
        partial.discard()
    assert lake.bucket.blob("lake/model.bin").download_as_bytes() == versions[-1]


def test_a_data_snapshot_round_trips_on_gcs(
    lake: Lake, raw_subset: RawDataset, tmp_path: Path
) -> None:
    storage = FsspecStorage(lake.url)
    manifest, report = write_snapshot(storage, raw_subset, DataSettings(), ValidationSettings())
    assert report is not None and report.passed
    prefix = f"lake/snapshots/{manifest.snapshot_id}/"
    assert lake.object_names() == sorted(
        [prefix + name for name in manifest.files] + [prefix + "manifest.json"]
    )

    # The same input in a local lake gives the same snapshot, byte for byte.
    local = FsspecStorage(str(tmp_path / "lake"))
    local_manifest, _ = write_snapshot(local, raw_subset, DataSettings(), ValidationSettings())
    assert local_manifest.snapshot_id == manifest.snapshot_id
    assert local_manifest.files == manifest.files

    loaded = load_snapshot(FsspecStorage(lake.url))  # verifies every file's checksum
    expected = load_snapshot(local)
    assert loaded.manifest == manifest
    for split in ("train", "val", "test"):
        assert np.array_equal(loaded.images[split], expected.images[split])
        assert np.array_equal(loaded.labels[split], expected.labels[split])
        assert np.array_equal(loaded.source_index[split], expected.source_index[split])
    assert sum(len(v) for v in loaded.labels.values()) == 7_000

    again, again_report = write_snapshot(storage, raw_subset, DataSettings(), ValidationSettings())
    assert again == manifest and again_report is None  # already there: nothing written
    assert list_snapshots(storage) == [manifest]


class OneModelRegistry:
    """The reads :func:`export_registry` makes, for model ``fmnist-classifier`` with version 2
    (champion) and version 1 (no alias)."""

    model_name = "fmnist-classifier"
    ONNX = b"\x08\x07fake-onnx-model" * 100

    def list_versions(self) -> list[ModelVersionInfo]:
        return [
            ModelVersionInfo(
                self.model_name, v, ("champion",) if v == 2 else (), {}, None, f"m/{v}", "t"
            )
            for v in (2, 1)
        ]

    def get(self, ref: str) -> ModelVersionInfo:
        for info in self.list_versions():
            if str(info.version) == ref or ref in info.aliases:
                return info
        raise RegistryError(ref)

    def download(self, ref: str, destination: Path) -> Path:
        folder = destination / "model"
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(self.ONNX + ref.encode())
        (folder / "MLmodel").write_text(f"version: {ref}\n")
        return folder


def test_exported_models_travel_through_gcs(lake: Lake, tmp_path: Path) -> None:
    """`fmnist models export` output uploaded to ``gs://`` through the storage port, then
    fetched as a serving container does with ``AIP_STORAGE_URI``, serves the champion."""
    export = tmp_path / "export"
    summary = export_registry([OneModelRegistry()], export)
    assert [v.version for v in summary.versions] == [2]

    uri = f"{lake.url}/exports/2024-05-01"
    remote = FsspecStorage(uri)
    files = sorted(p for p in export.rglob("*") if p.is_file())
    for path in files:
        remote.write_bytes(path.relative_to(export).as_posix(), path.read_bytes())
    assert lake.object_names() == sorted(
        f"lake/exports/2024-05-01/{p.relative_to(export).as_posix()}" for p in files
    )
    assert json.loads(remote.read_bytes("registry.json"))["models"]["fmnist-classifier"]

    home = tmp_path / "home"
    fetched = fetch_model_export(FsspecStorage(uri), uri, home)
    assert fetch_model_export(FsspecStorage(uri), uri, home) == fetched  # reused when whole
    registry = ExportedRegistry(fetched, "fmnist-classifier")
    champion = registry.get("champion")
    assert champion.version == 2
    model = registry.download("champion", tmp_path / "served")
    assert (model / "model.onnx").read_bytes() == OneModelRegistry.ONNX + b"2"
