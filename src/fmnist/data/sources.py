"""Where the raw Fashion-MNIST files come from, verified by the SHA-256 of their content.

Sources are tried in a fixed order: ``FMNIST_DATA_DIR``, the user cache, Debian's package
directory, then a download from the official mirrors into the user cache. The first source that
holds all four files is used; a file whose content does not match its checksum is an error that
names it, never a reason to silently try elsewhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import httpx
import numpy as np
import numpy.typing as npt
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from fmnist.config import Settings
from fmnist.data.idx import check_pair, parse_idx, read_raw
from fmnist.errors import ChecksumError, DataNotFoundError, DownloadError
from fmnist.identity import digest_text

Split = Literal["train", "test"]


@dataclass(frozen=True)
class DatasetFile:
    """One of the four original files and the SHA-256 of its decompressed content."""

    name: str
    sha256: str


TRAIN_IMAGES = DatasetFile(
    "train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
)
TRAIN_LABELS = DatasetFile(
    "train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
)
TEST_IMAGES = DatasetFile(
    "t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
)
TEST_LABELS = DatasetFile(
    "t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
)
DATASET_FILES: tuple[DatasetFile, ...] = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)


@dataclass(frozen=True)
class RawDataset:
    """The verified original train and test arrays and where they came from."""

    train_images: npt.NDArray[np.uint8]
    train_labels: npt.NDArray[np.uint8]
    test_images: npt.NDArray[np.uint8]
    test_labels: npt.NDArray[np.uint8]
    source: str
    checksums: dict[str, str] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """SHA-256 over the four files' content hashes: the identity of the raw data."""
        joined = "\n".join(f"{name}={digest}" for name, digest in sorted(self.checksums.items()))
        return digest_text(joined)


class DataSource(Protocol):
    """A place that may hold the four dataset files."""

    @property
    def label(self) -> str:
        """A short name of the source."""
        ...

    def describe(self) -> str:
        """A one-line description for the 'sources tried' listing."""
        ...

    def locate(self, file: DatasetFile) -> Path | None:
        """The local path of ``file`` in this source, or None if it is not there."""
        ...


@dataclass(frozen=True)
class DirectorySource:
    """A local folder holding the files, plain or gzipped."""

    label: str
    directory: Path

    def describe(self) -> str:
        """Name the folder."""
        return f"{self.label}: {self.directory}"

    def locate(self, file: DatasetFile) -> Path | None:
        """Find ``NAME`` or ``NAME.gz`` in the folder."""
        for candidate in (self.directory / file.name, self.directory / f"{file.name}.gz"):
            if candidate.is_file():
                return candidate
        return None


@dataclass(frozen=True)
class DownloadSource:
    """The official mirrors; files are downloaded, verified, then moved into ``cache_dir``."""

    mirrors: Sequence[str]
    cache_dir: Path
    retries: int = 3
    timeout_s: float = 60.0
    show_progress: bool = True
    label: str = "download"

    def describe(self) -> str:
        """Name the mirrors."""
        return f"{self.label}: {', '.join(self.mirrors)}"

    def locate(self, file: DatasetFile) -> Path | None:
        """Download ``file`` (gzipped) into the cache and return its path."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        target = self.cache_dir / f"{file.name}.gz"
        if target.is_file():  # finished by an earlier, interrupted run; verified when read
            return target
        failures: list[str] = []
        for mirror in self.mirrors:
            url = mirror.rstrip("/") + f"/{file.name}.gz"
            try:
                self._fetch(url, file, target)
                return target
            except DownloadError as exc:
                failures.append(str(exc))
        raise DownloadError(f"could not download {file.name}: " + "; ".join(failures))

    def _fetch(self, url: str, file: DatasetFile, target: Path) -> None:
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        attempts = self.retries + 1
        # Transport errors and 5xx/429 are retried with backoff 0.5 s, 1 s, 2 s... (at most 8 s);
        # a 4xx is a DownloadError, final for this mirror.
        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.5, max=8.0),
            retry=retry_if_exception_type((httpx.HTTPError, OSError)),
            reraise=True,
        )
        try:
            try:
                retrying(self._stream, url, tmp)
            except (httpx.HTTPError, OSError) as exc:
                raise DownloadError(
                    f"{url}: {exc.__class__.__name__}: {exc} (after {attempts} attempts)"
                ) from exc
            raw = read_raw(tmp)
            if raw.sha256 != file.sha256:
                raise ChecksumError(
                    f"{file.name} downloaded from {url} has SHA-256 {raw.sha256}, expected "
                    f"{file.sha256}; not saved"
                )
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)

    def _stream(self, url: str, tmp: Path) -> None:
        with httpx.stream("GET", url, timeout=self.timeout_s, follow_redirects=True) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise httpx.HTTPStatusError(
                    f"HTTP {response.status_code}", request=response.request, response=response
                )
            if response.status_code != 200:
                # A 4xx is final for this mirror: retrying will not change it.
                raise DownloadError(f"{url}: HTTP {response.status_code}")
            total = int(response.headers.get("content-length", 0)) or None
            with (
                Progress(
                    TextColumn("[bold]{task.description}"),
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    TimeRemainingColumn(),
                    disable=not self.show_progress,
                ) as progress,
                tmp.open("wb") as out,
            ):
                task = progress.add_task(url.rsplit("/", 1)[-1], total=total)
                for chunk in response.iter_bytes(1 << 16):
                    out.write(chunk)
                    progress.advance(task, len(chunk))


def default_sources(settings: Settings, *, show_progress: bool = True) -> list[DataSource]:
    """The source chain in its fixed order, as configured."""
    sources: list[DataSource] = []
    if settings.data_dir is not None:
        sources.append(DirectorySource("FMNIST_DATA_DIR", settings.data_dir))
    cache = settings.cache_dir / "fashion-mnist"
    sources.append(DirectorySource("user cache", cache))
    debian = DirectorySource("Debian package dataset-fashion-mnist", settings.debian_data_dir)
    sources.append(debian)
    sources.append(
        DownloadSource(
            mirrors=tuple(settings.data.mirrors),
            cache_dir=cache,
            retries=settings.data.download_retries,
            timeout_s=settings.data.download_timeout_s,
            show_progress=show_progress,
        )
    )
    return sources


def _read_verified(path: Path, file: DatasetFile) -> npt.NDArray[np.generic]:
    raw = read_raw(path)
    if raw.sha256 != file.sha256:
        raise ChecksumError(
            f"{path}: SHA-256 of the decompressed content is {raw.sha256}, expected "
            f"{file.sha256} for {file.name}"
        )
    return parse_idx(raw.content, str(path))


def load_from(paths: dict[str, Path], source: str) -> RawDataset:
    """Read, verify and parse the four files at ``paths`` (keyed by file name)."""
    arrays = {f.name: _read_verified(paths[f.name], f) for f in DATASET_FILES}
    train = check_pair(
        arrays[TRAIN_IMAGES.name],
        arrays[TRAIN_LABELS.name],
        str(paths[TRAIN_IMAGES.name]),
        str(paths[TRAIN_LABELS.name]),
    )
    test = check_pair(
        arrays[TEST_IMAGES.name],
        arrays[TEST_LABELS.name],
        str(paths[TEST_IMAGES.name]),
        str(paths[TEST_LABELS.name]),
    )
    return RawDataset(
        train_images=train[0],
        train_labels=train[1],
        test_images=test[0],
        test_labels=test[1],
        source=source,
        checksums={f.name: f.sha256 for f in DATASET_FILES},
    )


def load_raw(sources: Sequence[DataSource]) -> RawDataset:
    """Load the dataset from the first source that holds all four files.

    Directory sources are probed without side effects; a download source is only used when no
    earlier source has the files. Raises :class:`DataNotFoundError` listing the order tried.
    """
    for source in sources:
        if isinstance(source, DirectorySource):
            located = {f.name: source.locate(f) for f in DATASET_FILES}
            if all(located.values()):
                return load_from({k: v for k, v in located.items() if v}, source.describe())
            continue
        try:
            downloaded: dict[str, Path] = {}
            for file in DATASET_FILES:
                path = source.locate(file)
                if path is None:
                    break
                downloaded[file.name] = path
            else:
                return load_from(downloaded, source.describe())
        except DownloadError as exc:
            raise DataNotFoundError(_not_found_message(sources, str(exc))) from exc
    raise DataNotFoundError(_not_found_message(sources, None))


def _not_found_message(sources: Sequence[DataSource], last_error: str | None) -> str:
    tried = "; ".join(f"{i}. {s.describe()}" for i, s in enumerate(sources, 1))
    tail = f" Last error: {last_error}." if last_error else ""
    return (
        "Fashion-MNIST not found. Sources tried in order: "
        f"{tried}. Install it with 'apt-get install dataset-fashion-mnist' or set "
        f"FMNIST_DATA_DIR to a folder with the four IDX files.{tail}"
    )
