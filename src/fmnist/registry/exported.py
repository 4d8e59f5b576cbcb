"""A read-only model registry over a folder written by ``fmnist models export``.

The serving-only install (the ``serve`` extra, the API container image) has no MLflow: it serves
versions exported from the registry into a self-contained folder::

    <root>/registry.json                      index: models, versions, aliases, tags, cards
    <root>/models/<name>/<version>/model.onnx the files MLflow's download gives
    <root>/cards/<name>/<version>/...         the model cards (HTML and Markdown)

:class:`ExportedRegistry` answers the reads serving does (versions, aliases, downloads, cards)
and refuses every write with a :class:`~fmnist.platform.registry.RegistryError` naming the
MLflow registry. :func:`export_registry` writes it so that a server reading it meanwhile never
sees half an export.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from fmnist.atomic import atomic_write_text
from fmnist.platform.registry import CHAMPION, ModelVersionInfo, RegistryError, RunRecord
from fmnist.registry.model_cards import ARTIFACT_FOLDER, CARD_FILES

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fmnist.platform.registry import ModelRegistry

EXPORT_FORMAT = "fmnist-model-export/1"
INDEX_FILE = "registry.json"
CARD_FOLDER = ARTIFACT_FOLDER
"""The run artifact folder of model cards (as :mod:`fmnist.registry.model_cards` reads it)."""
CARD_NAMES = tuple(CARD_FILES.values())


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_registry` wrote."""

    root: Path
    versions: tuple[ModelVersionInfo, ...]
    bytes_written: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "root": str(self.root),
            "versions": [f"{v.name}/{v.version}" for v in self.versions],
            "aliases": {f"{v.name}/{v.version}": list(v.aliases) for v in self.versions},
            "bytes": self.bytes_written,
        }


class ExportedRegistry:
    """The registered versions of ``model_name`` as exported under ``root`` (read-only)."""

    def __init__(self, root: Path, model_name: str, experiment_name: str = "") -> None:
        """Bind to ``root`` (read lazily: a missing export is a :class:`RegistryError` on use)."""
        self.root = Path(root)
        self.model_name = model_name
        self.experiment_name = experiment_name
        self.tracking_uri = self.root.resolve().as_uri()

    # -- reads ---------------------------------------------------------------------------------

    def _index(self) -> dict[str, Any]:
        path = self.root / INDEX_FILE
        try:
            index = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RegistryError(
                f"no exported models at {self.root} (write them with `fmnist models export`)"
            ) from None
        except (OSError, ValueError) as exc:
            raise RegistryError(f"unreadable model export index {path}: {exc}") from None
        if not isinstance(index, dict) or index.get("format") != EXPORT_FORMAT:
            raise RegistryError(f"{path} is not a model export of format {EXPORT_FORMAT}")
        return index

    def list_versions(self) -> list[ModelVersionInfo]:
        """Every exported version of the model, newest first."""
        entries = self._index().get("models", {}).get(self.model_name, [])
        versions = [
            ModelVersionInfo(
                name=self.model_name,
                version=int(e["version"]),
                aliases=tuple(e.get("aliases", ())),
                tags=dict(e.get("tags", {})),
                run_id=e.get("run_id"),
                source=str(e.get("source", "")),
                created_at=str(e.get("created_at", "")),
            )
            for e in entries
        ]
        return sorted(versions, key=lambda v: v.version, reverse=True)

    def get(self, ref: str) -> ModelVersionInfo:
        """The version named by a number or an alias."""
        for info in self.list_versions():
            if (ref.isdigit() and info.version == int(ref)) or ref in info.aliases:
                return info
        raise RegistryError(f"model {self.model_name!r} has no exported version or alias {ref!r}")

    def download(self, ref: str, destination: Path) -> Path:
        """Copy a version's model folder into ``destination``; returns the folder."""
        info = self.get(ref)
        source = self.root / "models" / info.name / str(info.version)
        if not (source / "model.onnx").is_file():
            raise RegistryError(f"version {info.version} has no model.onnx under {source}")
        return Path(shutil.copytree(source, Path(destination) / "model"))

    def list_run_artifacts(self, run_id: str, path: str) -> list[str]:
        """The exported model cards of ``run_id`` (the only run artifacts an export holds)."""
        folder = self._card_folder(run_id)
        if path.strip("/") != CARD_FOLDER or folder is None:
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_file())

    def download_run_artifacts(self, run_id: str, path: str, destination: Path) -> Path:
        """Copy one exported card (``<card folder>/<file>``) of ``run_id`` into ``destination``."""
        folder, _, name = path.strip("/").partition("/")
        cards = self._card_folder(run_id)
        if folder != CARD_FOLDER or cards is None or not (cards / name).is_file():
            raise RegistryError(f"run {run_id} has no exported artifact {path!r}")
        return Path(shutil.copy2(cards / name, Path(destination) / name))

    def _card_folder(self, run_id: str) -> Path | None:
        for info in self.list_versions():
            if info.run_id == run_id:
                folder = self.root / "cards" / info.name / str(info.version)
                return folder if folder.is_dir() else None
        return None

    def run_url(self, run_id: str) -> str:
        """Where the run was tracked (the export keeps no tracking server)."""
        return f"{self.tracking_uri}#run={run_id}"

    # -- everything else needs the tracking server ---------------------------------------------

    def _read_only(self, operation: str) -> NoReturn:
        raise RegistryError(
            f"{operation} needs the MLflow registry: {self.root} is a read-only model export"
        )

    def experiment_id(self) -> str:
        """Not available: an export has no experiments."""
        self._read_only("experiments")

    def start_run(
        self, run_name: str, tags: Mapping[str, str]
    ) -> contextlib.AbstractContextManager[str]:
        """Not available: an export records no runs."""
        self._read_only("starting a run")

    def resume_run(self, run_id: str) -> contextlib.AbstractContextManager[str]:
        """Not available: an export records no runs."""
        self._read_only("resuming a run")

    def open_run(
        self, run_name: str, tags: Mapping[str, str], parent_run_id: str | None = None
    ) -> contextlib.AbstractContextManager[str]:
        """Not available: an export records no runs."""
        self._read_only("opening a run")

    def run_params(self, run_id: str) -> dict[str, str]:
        """Not available: an export keeps no run parameters."""
        self._read_only("run parameters")

    def run_tags(self, run_id: str) -> dict[str, str]:
        """Not available: an export keeps no run tags."""
        self._read_only("run tags")

    def run_record(self, run_id: str) -> RunRecord:
        """Not available: an export keeps no runs."""
        self._read_only("run records")

    def find_runs(self, tags: Mapping[str, str], max_results: int = 20) -> list[RunRecord]:
        """Not available: an export keeps no runs."""
        self._read_only("searching runs")

    def latest_run(self, step: str = "train") -> str:
        """Not available: an export keeps no runs."""
        self._read_only("finding runs")

    def set_run_tag(self, run_id: str, key: str, value: str) -> None:
        """Not available: read-only."""
        self._read_only("tagging a run")

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Not available: read-only."""
        self._read_only("logging parameters")

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        """Not available: read-only."""
        self._read_only("logging metrics")

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        """Not available: read-only."""
        self._read_only("logging artifacts")

    def log_and_register(
        self,
        run_id: str,
        onnx_path: Path,
        weights_path: Path,
        input_example: npt.NDArray[np.uint8],
        tags: Mapping[str, str],
        description: str = "",
        extra_artifacts: Mapping[str, Path] | None = None,
    ) -> ModelVersionInfo:
        """Not available: read-only."""
        self._read_only("registering a model")

    def set_alias(self, alias: str, version: int) -> None:
        """Not available: read-only (move aliases in MLflow, then export again)."""
        self._read_only("moving an alias")

    def promote(self, ref: str, reason: str = "") -> ModelVersionInfo:
        """Not available: read-only (promote in MLflow, then export again)."""
        self._read_only("promotion")

    def rollback(self) -> tuple[ModelVersionInfo, ModelVersionInfo]:
        """Not available: read-only (roll back in MLflow, then export again)."""
        self._read_only("rollback")


def export_registry(
    registries: Sequence[ModelRegistry], root: Path, refs: Sequence[str] = ()
) -> ExportSummary:
    """Export versions of each registry's model into ``root``.

    ``refs`` (numbers or aliases) name the versions to export from every registry; empty means
    every version that carries an alias (``champion``, ``challenger``, ...). A registry whose
    model has no such version is skipped; the first (the configured model) must have a
    champion. Raises :class:`RegistryError`.

    A version's folder never changes once written (each is staged, then renamed into place),
    and the index is replaced in one rename after them, so a server reading ``root`` meanwhile
    sees the old export or the new one. Versions the new index no longer lists are deleted last.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": {},
    }
    exported: list[ModelVersionInfo] = []
    for position, registry in enumerate(registries):
        chosen = _chosen_versions(registry, refs, required=position == 0)
        if chosen:
            index["models"][registry.model_name] = [info.to_dict() for info in chosen]
        for info in chosen:
            _export_version(registry, info, root)
            exported.append(info)
    atomic_write_text(root / INDEX_FILE, json.dumps(index, indent=2))
    kept = {(info.name, str(info.version)) for info in exported}
    for kind in ("models", "cards"):
        for folder in sorted((root / kind).glob("*/*")):
            if (folder.parent.name, folder.name) not in kept:
                shutil.rmtree(folder, ignore_errors=True)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return ExportSummary(root, tuple(exported), size)


def _chosen_versions(
    registry: ModelRegistry, refs: Sequence[str], *, required: bool
) -> list[ModelVersionInfo]:
    if refs:
        chosen: dict[int, ModelVersionInfo] = {}
        for ref in refs:
            try:
                info = registry.get(ref)
            except RegistryError:
                if required:
                    raise
                continue
            chosen[info.version] = info
        return sorted(chosen.values(), key=lambda v: v.version, reverse=True)
    try:
        versions = [v for v in registry.list_versions() if v.aliases]
    except RegistryError:
        versions = []
    if required and not any(CHAMPION in v.aliases for v in versions):
        raise RegistryError(f"model {registry.model_name!r} has no champion to export")
    return versions


def _export_version(registry: ModelRegistry, info: ModelVersionInfo, root: Path) -> None:
    """Write the version's model folder and cards unless already there (they never change)."""
    target = root / "models" / info.name / str(info.version)
    if not (target / "model.onnx").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".export-", dir=target.parent) as tmp:
            (Path(tmp) / "download").mkdir()
            folder = registry.download(str(info.version), Path(tmp) / "download")
            staged = Path(tmp) / "staged"
            shutil.copytree(folder, staged)
            _fsync_tree(staged)
            staged.rename(target)
    cards = root / "cards" / info.name / str(info.version)
    if info.run_id and not cards.is_dir():
        with contextlib.suppress(RegistryError):
            names = [
                name
                for name in registry.list_run_artifacts(info.run_id, CARD_FOLDER)
                if name in CARD_NAMES
            ]
            if names:
                cards.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(prefix=".export-", dir=cards.parent) as tmp:
                    staged = Path(tmp) / "staged"
                    staged.mkdir()
                    for name in names:
                        registry.download_run_artifacts(
                            info.run_id, f"{CARD_FOLDER}/{name}", staged
                        )
                    _fsync_tree(staged)
                    staged.rename(cards)


def _fsync_tree(folder: Path) -> None:
    for path in [*folder.rglob("*"), folder]:
        flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
        fd = os.open(path, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
