"""Photo folders as batch input: decoded and preprocessed on a thread pool, in path order."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from fmnist import IMAGE_SIZE
from fmnist.batch.inputs import BatchInput, InputChunk
from fmnist.errors import InvalidImageError
from fmnist.identity import digest_chunks

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".jfif", ".pgm", ".ppm"}
)
"""File name endings (case-insensitive) collected from an image folder."""


PreprocessFn = Callable[[bytes], tuple[npt.NDArray[np.uint8], float]]


class FolderInput(BatchInput):
    """A folder of photos (searched recursively; hidden entries skipped), in path order.

    Photos are read, decoded and preprocessed on a thread pool; an unreadable photo becomes an
    error row. The reference of a row is the photo's path relative to the folder.
    """

    default_shard_size = 2_048

    def __init__(self, path: Path, preprocess: PreprocessFn, workers: int | None = None) -> None:
        """List the photos under ``path``; ``preprocess`` turns file bytes into 28x28 pixels."""
        self.kind, self.path = "folder", path
        self.files = _list_images(path)
        self.num_rows = len(self.files)
        self.refs = [f.relative_to(path).as_posix() for f in self.files]
        self._preprocess = preprocess
        self._workers = workers or max(1, len(os.sched_getaffinity(0)))
        self._pool: ThreadPoolExecutor | None = None

    def fingerprint(self) -> dict[str, Any]:
        """Folder path and a hash of every photo's relative path, size and mtime."""
        return {
            "kind": "folder",
            "path": str(self.path.resolve()),
            "files": self.num_rows,
            "listing_sha256": digest_chunks(self._listing()),
        }

    def _listing(self) -> Iterator[bytes]:
        """One line per photo: ``REF\\0SIZE\\0MTIME_NS`` (``REF\\0?`` when it cannot be read)."""
        for file, ref in zip(self.files, self.refs, strict=True):
            try:
                stat = file.stat()
            except OSError:
                yield f"{ref}\0?\n".encode()
            else:
                yield f"{ref}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()

    def _load(self, file: Path) -> tuple[npt.NDArray[np.uint8] | None, float, str | None]:
        try:
            data = file.read_bytes()
        except OSError as exc:
            return None, float("nan"), f"cannot read: {exc.strerror or exc}"
        try:
            pixels, foreground = self._preprocess(data)
        except InvalidImageError as exc:
            return None, float("nan"), str(exc)
        return pixels, foreground, None

    def read(
        self, start: int, stop: int, progress: Callable[[int], None] | None = None
    ) -> InputChunk:
        """Decode photos ``start``-``stop`` in parallel; failures become error rows. Each
        decoded photo is reported to ``progress``."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="fmnist-decode")

        def load(file: Path) -> tuple[npt.NDArray[np.uint8] | None, float, str | None]:
            loaded = self._load(file)
            if progress is not None:
                progress(1)
            return loaded

        results = list(self._pool.map(load, self.files[start:stop]))
        n = len(results)
        pixels = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        foreground = np.full(n, np.nan, dtype=np.float64)
        errors: list[str | None] = []
        for i, (image, fraction, error) in enumerate(results):
            if image is not None:
                pixels[i] = image
                foreground[i] = fraction
            errors.append(error)
        return InputChunk(
            pa.array(self.refs[start:stop], type=pa.string()),
            pixels,
            errors if any(e is not None for e in errors) else None,
            foreground,
            progress_reported=progress is not None,
        )

    def close(self) -> None:
        """Stop the decoding threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _list_images(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, onerror=None):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        found.extend(
            base / f
            for f in files
            if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS
        )
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    return found
