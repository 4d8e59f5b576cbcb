"""Fixtures for integration tests: a local mirror serving the real Fashion-MNIST files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fmnist.data.sources import DATASET_FILES
from local_mirror import Mirror, serve


@pytest.fixture(scope="session")
def mirror_files(fmnist_data_dir: Path) -> dict[str, bytes]:
    """The four real .gz files, read once."""
    return {f"{f.name}.gz": (fmnist_data_dir / f"{f.name}.gz").read_bytes() for f in DATASET_FILES}


@pytest.fixture
def mirror(mirror_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    """A local mirror serving the real files; stopped after the test."""
    # Never route 127.0.0.1 through a proxy configured on the machine.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with serve(mirror_files) as running:
        yield running
