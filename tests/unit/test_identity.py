"""fmnist.identity: one pinned digest per helper, and the stored identities built on them.

The pinned values were computed with plain ``hashlib`` before the call sites moved to these
helpers; a change here means ids already stored (snapshots, reusable runs) would no longer match.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fmnist.config import DataSettings
from fmnist.data.snapshot import snapshot_id
from fmnist.data.sources import DATASET_FILES, RawDataset
from fmnist.identity import (
    digest_array,
    digest_bytes,
    digest_chunks,
    digest_file,
    digest_json,
    digest_text,
)
from fmnist.realworld.photos import LabelledPhoto

FMNIST_SHA256 = "dd4d3eb61869c55d7750e6fd6ea815819f83117e8de359daf50cdf75a510f2f6"
BLOCKS = bytes(range(256)) * 5000  # 1.28 MB: more than one 1 MiB read block
BLOCKS_SHA256 = "7d471e4af16db5a30ce10aebbc29f5178b2edbad6c7dc2e8ff8ee6e4848a726f"


def test_digest_bytes_and_truncation() -> None:
    assert digest_bytes(b"fmnist") == FMNIST_SHA256
    assert digest_bytes(b"fmnist", length=12) == FMNIST_SHA256[:12]


def test_digest_chunks_equals_the_digest_of_the_concatenation() -> None:
    assert digest_chunks([b"fm", b"", b"nist"]) == FMNIST_SHA256
    assert digest_chunks([]) == digest_bytes(b"")


def test_digest_text_is_utf8() -> None:
    expected = "47fa88832b58d211317146697683c1f26e7db5bf37bd9d821371a8b74e2c73f9"
    assert digest_text("Größe T-shirt/top") == expected


def test_digest_file_reads_in_blocks(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(BLOCKS)
    assert digest_file(path) == BLOCKS_SHA256
    assert digest_file(path, length=12) == BLOCKS_SHA256[:12]


def test_digest_array_hashes_c_order_bytes() -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    expected = "fff3a9bcdd37363d703c1c4f9512533686157868f0d4f16a0f02d0f1da24f9a2"
    assert digest_array(array) == expected
    assert digest_array(np.asfortranarray(array)) == expected


def test_digest_json_sorted_and_insertion_order() -> None:
    value = {"b": 1, "a": [1, 2]}
    assert digest_json(value, length=12) == "3813f9409eb0"
    assert digest_json({"a": [1, 2], "b": 1}, length=12) == "3813f9409eb0"
    assert digest_json(value, length=16, sort_keys=False) == "4df8f5da3554d497"


def test_stored_identities_keep_their_values() -> None:
    """The raw-data content hash, a snapshot id and the photo calibration fold, as stored."""
    pixels, labels = np.zeros((1, 28, 28), np.uint8), np.zeros(1, np.uint8)
    raw = RawDataset(
        pixels, labels, pixels, labels, "test", {f.name: f.sha256 for f in DATASET_FILES}
    )
    assert raw.content_hash == "152d0cf8f1c01470a5670d387a63e076c0cbbe53ad6cfb01526b3a286f8c902a"
    data = DataSettings(snapshot_format="parquet", split_seed=42, val_fraction=0.1)
    assert snapshot_id(raw, data) == "ebef04d91690a9ba"
    folds = [LabelledPhoto(Path(f"/x/p{i}.jpg"), "dress").in_calibration_fold for i in range(10)]
    assert folds == [False, False, True, True, False, False, True, False, True, False]
