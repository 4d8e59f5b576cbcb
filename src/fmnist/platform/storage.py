"""The storage port: a data lake addressed by URL, with atomic object writes.

One adapter, :class:`FsspecStorage` (built by :mod:`fmnist.composition`), serves all three
paradigms: a local folder (``local``), ``gs://`` through gcsfs (``gcp``) and ``s3://`` through
s3fs (``agnostic``). Local writes go to a temporary file that is renamed into place; object
stores publish an object atomically on upload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import fsspec

from fmnist.atomic import atomic_write_bytes


class Storage(Protocol):
    """What the lifecycle needs from a data lake."""

    url: str

    def exists(self, key: str) -> bool:
        """Whether ``key`` (a path relative to the root) exists."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """The content of ``key``."""
        ...

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write ``key`` atomically: readers see the old content or the new, never a part."""
        ...

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the direct sub-folders of ``prefix`` (empty if it does not exist)."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A local filesystem path for ``key`` when the lake is local, else None."""
        ...

    def download(self, prefix: str, destination: Path) -> Path:
        """Copy every object under ``prefix`` into the local folder ``destination``."""
        ...


class FsspecStorage:
    """:class:`Storage` over any fsspec filesystem URL."""

    def __init__(self, url: str) -> None:
        """Open the lake rooted at ``url`` (a folder path or ``proto://bucket/prefix``)."""
        self.url = url
        # No listings cache: objects other processes write (a GCS or S3 lake is shared) must
        # be seen by exists() and list_dirs() of a long-running process.
        self._fs, root = fsspec.core.url_to_fs(url, use_listings_cache=False)
        self._root = root.rstrip("/")
        self._local = "file" in _protocols(self._fs)

    def _path(self, key: str) -> str:
        return f"{self._root}/{key.lstrip('/')}" if key else self._root

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        return bool(self._fs.exists(self._path(key)))

    def read_bytes(self, key: str) -> bytes:
        """The content of ``key``."""
        data: bytes = self._fs.cat_file(self._path(key))
        return data

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write ``key`` atomically (temp file + rename locally, one upload elsewhere)."""
        path = self._path(key)
        if not self._local:
            self._fs.pipe_file(path, data)
            return
        atomic_write_bytes(Path(path), data)

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the direct sub-folders of ``prefix``."""
        path = self._path(prefix)
        if not self._fs.exists(path):
            return []
        entries = self._fs.ls(path, detail=True)
        return sorted(
            str(e["name"]).rstrip("/").rsplit("/", 1)[-1]
            for e in entries
            if e.get("type") == "directory"
        )

    def local_path(self, key: str) -> Path | None:
        """The local path of ``key`` for a local lake, else None."""
        return Path(self._path(key)) if self._local else None

    def download(self, prefix: str, destination: Path) -> Path:
        """Copy every file under ``prefix`` into ``destination`` (created), keeping the layout."""
        root = self._path(prefix).rstrip("/")
        if not self._fs.exists(root):
            raise FileNotFoundError(f"nothing at {self.url.rstrip('/')}/{prefix.lstrip('/')}")
        destination.mkdir(parents=True, exist_ok=True)
        for source in self._fs.find(root):
            target = destination / str(source)[len(root) :].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            self._fs.get_file(source, str(target))
        return destination


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
