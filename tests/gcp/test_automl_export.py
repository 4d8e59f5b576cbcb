"""The Vertex AI AutoML dataset import: images and the import CSV written to Cloud Storage (the
GCS emulator), as ``fmnist automl export`` writes them before a launch."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs

from fmnist.automl.vertex import VERTEX_LABELS, build_job_spec, export_snapshot, read_import_csv
from fmnist.config import DataSettings, ValidationSettings
from fmnist.data.snapshot import load_snapshot, write_snapshot
from fmnist.data.sources import RawDataset
from fmnist.platform.storage import FsspecStorage, Storage

pytestmark = pytest.mark.gcp

PROJECT = "fmnist-test"


@pytest.fixture
def bucket(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[gcs.Bucket]:
    """A new bucket of the emulator."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    client = gcs.Client(project=PROJECT, credentials=AnonymousCredentials())
    yield client.create_bucket(f"fmnist-automl-{uuid.uuid4().hex[:10]}")
    import gcsfs

    gcsfs.GCSFileSystem.clear_instance_cache()


def test_the_import_file_lists_gs_uris_that_exist(
    bucket: gcs.Bucket, raw_subset: RawDataset, tmp_path: Path
) -> None:
    lake = FsspecStorage(str(tmp_path / "lake"))
    write_snapshot(lake, raw_subset, DataSettings(), ValidationSettings())
    snapshot = load_snapshot(lake)

    def open_storage(url: str) -> Storage:
        return FsspecStorage(url)

    root = f"gs://{bucket.name}/automl"
    result = export_snapshot(snapshot, root, open_storage, limit_per_split=4)

    assert result.counts == {"training": 4, "validation": 4, "test": 4}
    rows = read_import_csv(bucket.blob("automl/import.csv").download_as_text())
    assert len(rows) == 12
    names = {blob.name for blob in bucket.list_blobs(prefix="automl/images/")}
    for ml_use, uri, label in rows:
        assert uri.startswith(f"gs://{bucket.name}/automl/images/{ml_use}/{label}/")
        assert uri.removeprefix(f"gs://{bucket.name}/") in names  # the image is there
        assert label in VERTEX_LABELS
    spec = build_job_spec(f"{root}/import.csv", project=PROJECT, location="europe-west4")
    assert spec.dataset["gcs_source"] == [f"{root}/import.csv"]
    assert not any("not in Cloud Storage" in warning for warning in spec.warnings)
