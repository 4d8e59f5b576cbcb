"""The storage port over a local folder and fsspec's in-memory filesystem; atomic writes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from fmnist.atomic import atomic_write_bytes, atomic_write_text
from fmnist.platform.storage import FsspecStorage


def test_local_storage(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path / "lake"))

    assert storage.list_dirs("snapshots") == []
    assert not storage.exists("snapshots/a/x.bin")
    storage.write_bytes("snapshots/a/x.bin", b"one")
    storage.write_bytes("snapshots/b/y.bin", b"two")
    storage.write_bytes("snapshots/a/x.bin", b"three")  # overwrite in place
    storage.write_bytes("snapshots/top.txt", b"not a folder")

    assert storage.exists("snapshots/a/x.bin")
    assert storage.read_bytes("snapshots/a/x.bin") == b"three"
    assert storage.list_dirs("snapshots") == ["a", "b"]
    assert storage.local_path("snapshots/a/x.bin") == tmp_path / "lake" / "snapshots/a/x.bin"
    assert (tmp_path / "lake" / "snapshots" / "b" / "y.bin").read_bytes() == b"two"
    assert sorted(p.name for p in (tmp_path / "lake/snapshots/a").iterdir()) == ["x.bin"]
    assert storage.url == str(tmp_path / "lake")


def test_memory_storage() -> None:
    url = f"memory://fmnist-tests-{uuid.uuid4().hex}/lake"
    storage = FsspecStorage(url)

    assert storage.url == url
    assert storage.list_dirs("snapshots") == []
    assert not storage.exists("snapshots/a/x.bin")
    storage.write_bytes("snapshots/a/x.bin", b"one")
    storage.write_bytes("snapshots/b/y.bin", b"two")

    assert storage.exists("snapshots/a/x.bin")
    assert storage.read_bytes("/snapshots/b/y.bin") == b"two"
    assert storage.list_dirs("snapshots") == ["a", "b"]
    assert storage.local_path("snapshots/a/x.bin") is None


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.json"
    atomic_write_text(target, "first ✓")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "text is not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
