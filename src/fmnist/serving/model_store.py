"""Which model answers a request: registry references resolved to loaded ONNX classifiers.

The default model is ``serving.model_ref`` (alias ``champion``) of the default registered model.
``?model=REF`` may be a version number or alias of that model, the name of another registered
model (served at its ``champion`` alias, else its newest version) or ``NAME@VERSION_OR_ALIAS``.
Files are downloaded once to ``<home>/serving/models/<name>/<version>/`` (atomically) and at
most ``model_cache_size`` models stay loaded (least recently used are dropped; the default is
never dropped). :meth:`ModelStore.refresh` is the hot reload: the new default is loaded beside
the old one and the reference is swapped in one assignment, so requests holding the old object
finish on it and no request fails during a swap.

A downloaded ``model.onnx`` must have the SHA-256 its version was registered with (tag
:data:`~fmnist.platform.registry.MODEL_SHA256_TAG`): a file that differs is refused
(:class:`ModelIntegrityError`) before ONNX Runtime reads it, and its local copy is deleted so a
later attempt downloads it again. A reload that fails (registry or artifact store unreachable,
a refused file) keeps the model served before and raises :class:`ReloadError`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fmnist.config import Settings
from fmnist.errors import FmnistError
from fmnist.evaluation.unknown import energy_threshold_from_metadata
from fmnist.identity import digest_file
from fmnist.platform.registry import MODEL_SHA256_TAG, RegistryError
from fmnist.registry.references import (
    REF_PATTERN,
    ModelReferenceError,
    download_version,
    resolve_reference,
)

if TYPE_CHECKING:
    from fmnist.platform.registry import ModelRegistry, ModelVersionInfo, RegistryFactory
    from fmnist.registry.onnx_runtime import OnnxClassifier

logger = logging.getLogger("fmnist.serving")

ONNX_FILE = "model.onnx"
META_MIN_CONFIDENCE = "abstention.min_confidence"
"""ONNX metadata key of a calibrated confidence floor (see :mod:`fmnist.realworld.abstention`)."""

ModelKey = tuple[str, int]
"""(registered model name, version)."""

_REF = re.compile(REF_PATTERN)
ModelNotFoundError = ModelReferenceError
"""A ``?model=`` reference names no registered version (or is not a valid reference)."""


QUALITY_GATES = ("accuracy", "class_recall", "ece", "drift_window")
"""The gates on the version's own quality (and, for a retrained candidate, on the drifted
window it was trained for). "Significantly better than the champion" (McNemar superiority)
decides promotion only: a version that fails just that one is a fair challenger for an A/B
test and may be served; failing non-inferiority (possibly worse) is a quality failure."""


def gates_failed(info: ModelVersionInfo) -> bool:
    """Whether a version failed a quality gate (:data:`QUALITY_GATES`; versions registered
    before per-check tags existed: the overall verdict) and was not made champion since."""
    if "champion" in info.aliases:
        return False
    names = list(QUALITY_GATES)
    if info.tags.get("gate.champion_test") == "non_inferiority":
        names.append("champion")
    checks = [info.tags.get(f"gate.check.{name}") for name in names]
    if any(check is not None for check in checks):
        return "fail" in checks
    return info.tags.get("gate.passed") == "false"


class NoModelError(FmnistError):
    """The default model (the champion) is not registered."""


class ModelIntegrityError(FmnistError):
    """A model file's SHA-256 differs from the one registered with its version."""


class ReloadError(FmnistError):
    """A reload failed and the model served before keeps serving.

    The message names the cause without local paths (an API answer may show it); ``refused``
    is True when the new version's file failed its checksum, ``served`` is the model kept.
    """

    def __init__(self, message: str, *, served: ModelKey, refused: bool = False) -> None:
        """Describe the failure; ``served`` is the (name, version) still serving."""
        super().__init__(message)
        self.served = served
        self.refused = refused


def verify_checksum(path: Path, info: ModelVersionInfo) -> None:
    """Raise :class:`ModelIntegrityError` when ``path`` does not have the SHA-256 registered
    with ``info`` (a version registered without one is not checked)."""
    expected = info.tags.get(MODEL_SHA256_TAG)
    if not expected:
        logger.info(
            "model %s version %d has no registered checksum: not verified", info.name, info.version
        )
        return
    actual = digest_file(path)
    if actual != expected:
        raise ModelIntegrityError(
            f"{info.name} version {info.version} refused: its {ONNX_FILE} has SHA-256 "
            f"{actual[:16]}..., the registry recorded {expected[:16]}..."
        )


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A registered version loaded into an ONNX Runtime session, ready to serve."""

    name: str
    version: int
    classifier: OnnxClassifier
    energy_threshold: float | None
    temperature: float
    loaded_at: datetime
    path: Path
    min_confidence: float | None = None
    """A confidence floor calibrated for this model (metadata ``abstention.min_confidence``);
    None: ``serving.min_confidence`` applies."""
    gates_failed: bool = False
    """The version failed a quality gate (see :func:`gates_failed`) and was not made champion
    since: ``?model=`` serves it to an authenticated admin only."""

    @property
    def key(self) -> ModelKey:
        """(name, version)."""
        return (self.name, self.version)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Label of each class id."""
        return self.classifier.class_names

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        return {
            "name": self.name,
            "version": self.version,
            "loaded_at": self.loaded_at.isoformat(timespec="seconds"),
            "temperature": self.temperature,
            "energy_threshold": self.energy_threshold,
            "min_confidence": self.min_confidence,
        }


@dataclass(frozen=True)
class ReloadResult:
    """What :meth:`ModelStore.refresh` did."""

    changed: bool
    previous: ModelKey | None
    current: ModelKey


def _is_version(ref: str) -> bool:
    return ref.isdigit()


class ModelStore:
    """Resolves model references to loaded models; thread-safe, hot-reloadable."""

    def __init__(self, settings: Settings, registries: RegistryFactory) -> None:
        """Prepare the store over the registries ``registries`` builds; nothing is loaded until
        :meth:`load_default` or :meth:`resolve`."""
        self._settings = settings
        self._registry_factory = registries
        self.default_name = settings.tracking.registered_model
        self.default_ref = settings.serving.model_ref
        self.cache_size = settings.serving.model_cache_size
        self.root = settings.home / "serving" / "models"
        self._threads = settings.serving.intra_op_threads
        self._default: LoadedModel | None = None
        self._loaded: OrderedDict[ModelKey, LoadedModel] = OrderedDict()
        self._refs: dict[str, ModelKey] = {}
        self._lock = threading.Lock()  # guards _default, _loaded and _refs
        self._load_lock = threading.Lock()  # one resolution/download/load at a time
        self._registries: dict[str, ModelRegistry] = {}
        self._missing: dict[str, float] = {}  # optional ref -> monotonic time to look again

    # ------------------------------------------------------------------ fast path
    @property
    def default(self) -> LoadedModel | None:
        """The model that answers requests without ``?model=`` (None before the first load)."""
        return self._default

    def cached(self, ref: str | None) -> LoadedModel | None:
        """The model for ``ref`` if it is already resolved and loaded (dict lookups only)."""
        if ref is None or ref == self.default_ref:
            return self._default
        key = self._refs.get(ref)
        return None if key is None else self._loaded_model(key)

    def _loaded_model(self, key: ModelKey) -> LoadedModel | None:
        """The default or an LRU model with ``key`` (marked as recently used), if loaded."""
        default = self._default
        if default is not None and default.key == key:
            return default
        with self._lock:
            model = self._loaded.get(key)
            if model is not None:
                self._loaded.move_to_end(key)
            return model

    def loaded(self) -> list[LoadedModel]:
        """Every loaded model, the default first."""
        with self._lock:
            others = list(self._loaded.values())
        default = self._default
        return ([default] if default is not None else []) + others

    # ------------------------------------------------------------------ slow path (blocking)
    def registry(self, name: str | None = None) -> ModelRegistry:
        """The registry client bound to registered model ``name`` (default: the default)."""
        name = name or self.default_name
        registry = self._registries.get(name)
        if registry is None:
            registry = self._registry_factory(name)
            if name == self.default_name:  # others are kept once they are known to exist
                self._registries[name] = registry
        return registry

    def resolve(self, ref: str | None) -> LoadedModel:
        """The model for ``ref``, resolving, downloading and loading it if needed (blocking).

        Raises :class:`ModelNotFoundError` when no registered version matches.
        """
        model = self.cached(ref)
        if model is not None:
            return model
        if ref is None or ref == self.default_ref:
            return self.load_default()
        if not _REF.match(ref):
            raise ModelNotFoundError(f"invalid model reference {ref!r}")
        with self._load_lock:
            model = self.cached(ref)
            if model is not None:
                return model
            info = self._lookup(ref)
            key = (info.name, info.version)
            model = self._get_or_load(key)
            with self._lock:
                self._refs[ref] = key
            return model

    def resolve_optional(self, ref: str, retry_s: float = 30.0) -> LoadedModel | None:
        """The model for ``ref``, or None when no registered version matches (blocking).

        A miss is remembered for ``retry_s`` seconds, so a model that is not registered (yet)
        costs one registry lookup per interval, not one per request.
        """
        model = self.cached(ref)
        if model is not None:
            return model
        if self._missing.get(ref, 0.0) > time.monotonic():
            return None
        try:
            model = self.resolve(ref)
        except ModelNotFoundError:
            self._missing[ref] = time.monotonic() + retry_s
            return None
        self._missing.pop(ref, None)
        return model

    def _lookup(self, ref: str) -> ModelVersionInfo:
        """The registered version ``ref`` names (see :mod:`fmnist.registry.references`)."""
        registry, info = resolve_reference(self.registry, ref)
        self._registries.setdefault(registry.model_name, registry)
        return info

    def _get_or_load(self, key: ModelKey) -> LoadedModel:
        model = self._loaded_model(key)
        if model is not None:
            return model
        model = self._load(key)
        self._remember(model)
        return model

    def _remember(self, model: LoadedModel) -> None:
        """Keep ``model`` in the LRU, dropping the least recently used beyond the budget."""
        with self._lock:
            self._loaded[model.key] = model
            self._loaded.move_to_end(model.key)
            while self._loaded and len(self._loaded) + 1 > self.cache_size:
                evicted, _ = self._loaded.popitem(last=False)
                for ref in [r for r, k in self._refs.items() if k == evicted]:
                    del self._refs[ref]
                logger.info("model unloaded name=%s version=%d", *evicted)

    def model_dir(self, key: ModelKey) -> Path:
        """Where a version's files are kept: ``<home>/serving/models/<name>/<version>``."""
        return self.root / key[0] / str(key[1])

    def _download(self, key: ModelKey) -> Path:
        """The version's folder, downloading it atomically (temporary folder, then rename)."""
        return download_version(self.registry(key[0]), key[1], self.model_dir(key))

    def _load(self, key: ModelKey) -> LoadedModel:
        """Download if needed, open an ONNX Runtime session and warm it up."""
        from fmnist.registry.onnx_runtime import OnnxClassifier

        started = time.perf_counter()
        folder = self._download(key)
        info = self.registry(key[0]).get(str(key[1]))
        try:
            verify_checksum(folder / ONNX_FILE, info)
        except ModelIntegrityError:
            shutil.rmtree(folder, ignore_errors=True)  # the next attempt downloads it again
            raise
        classifier = OnnxClassifier(folder / ONNX_FILE, intra_op_threads=self._threads)
        classifier.run(np.zeros((1, 28, 28), dtype=np.uint8))  # first call allocates
        floor = classifier.metadata.get(META_MIN_CONFIDENCE)
        model = LoadedModel(
            name=key[0],
            version=key[1],
            classifier=classifier,
            energy_threshold=energy_threshold_from_metadata(classifier.metadata),
            temperature=classifier.temperature or 1.0,
            loaded_at=datetime.now(UTC),
            path=folder,
            min_confidence=float(floor) if floor is not None else None,
            gates_failed=gates_failed(info),
        )
        logger.info(
            "model loaded name=%s version=%d seconds=%.2f",
            key[0],
            key[1],
            time.perf_counter() - started,
        )
        return model

    def _default_key(self) -> ModelKey:
        missing = NoModelError(
            f"no model registered as {self.default_name!r}@{self.default_ref}: "
            "run `fmnist pipeline run` first"
        )
        uri = self._settings.resolved_tracking_uri
        exported = self._settings.serving.model_export is not None  # no tracking store needed
        sqlite = uri.startswith("sqlite:///")
        if not exported and sqlite and not Path(uri.removeprefix("sqlite:///")).is_file():
            raise missing  # no tracking store yet: do not create one just to find it empty
        try:
            info = self.registry().get(self.default_ref)
        except RegistryError as exc:
            raise missing from exc
        return (info.name, info.version)

    def load_default(self) -> LoadedModel:
        """Load the default model if none is loaded yet; raises :class:`NoModelError`."""
        with self._load_lock:
            if self._default is not None:
                return self._default
            model = self._get_or_load(self._default_key())
            self._swap_default(model)
            return model

    def _swap_default(self, model: LoadedModel) -> LoadedModel | None:
        with self._lock:
            previous = self._default
            self._loaded.pop(model.key, None)
            self._default = model  # the atomic swap: one reference assignment
            # Aliases may have moved: resolve them again on their next use.
            for ref in [r for r in self._refs if not _is_version(r.rpartition("@")[2])]:
                del self._refs[ref]
        if previous is not None and previous.key != model.key:
            self._remember(previous)  # still servable as ?model=<version> until evicted
        return previous

    def refresh(self) -> ReloadResult:
        """Serve the version the default alias points at now (blocking; the hot reload).

        With a model served already, a failure keeps it and raises :class:`ReloadError`.
        """
        self._missing.clear()  # optional models registered since are looked up again
        with self._load_lock:
            previous = self._default
            try:
                key = self._default_key()
            except Exception as exc:
                if previous is None:
                    raise
                lookup = f"the registry lookup of {self.default_name}@{self.default_ref} failed"
                raise _reload_failed(previous, lookup, exc) from exc
            if previous is not None and previous.key == key:
                with self._lock:
                    for ref in [r for r in self._refs if not _is_version(r.rpartition("@")[2])]:
                        del self._refs[ref]
                return ReloadResult(False, key, key)
            try:
                model = self._get_or_load(key)
            except Exception as exc:
                if previous is None:
                    raise
                if isinstance(exc, ModelIntegrityError):
                    raise _reload_failed(previous, str(exc), exc, refused=True) from exc
                what = f"{key[0]} version {key[1]} could not be downloaded or loaded"
                raise _reload_failed(previous, what, exc) from exc
            self._swap_default(model)
        logger.info(
            "default model swapped from=%s to=%s",
            f"{previous.name}/{previous.version}" if previous else None,
            f"{key[0]}/{key[1]}",
        )
        return ReloadResult(True, previous.key if previous else None, key)

    def versions(self) -> list[ModelVersionInfo]:
        """Registered versions of the default model, newest first (blocking)."""
        return self.registry().list_versions()

    def close(self) -> None:
        """Drop every loaded model."""
        with self._lock:
            self._loaded.clear()
            self._refs.clear()
        with contextlib.suppress(Exception):
            self._registries.clear()


def _reload_failed(
    previous: LoadedModel, reason: str, cause: Exception, *, refused: bool = False
) -> ReloadError:
    """The :class:`ReloadError` of a reload that failed with ``cause`` (logged in full)."""
    logger.error(
        "model reload failed, still serving %s/%d: %s: %s",
        previous.name,
        previous.version,
        reason,
        cause,
    )
    kept = f"still serving {previous.name} version {previous.version}"
    root: BaseException = cause
    while root.__cause__ is not None:  # NoModelError from RegistryError: name the registry's
        root = root.__cause__
    cause_name = "" if refused else f" ({type(root).__name__})"
    return ReloadError(
        f"reload failed: {reason}{cause_name}; {kept}", served=previous.key, refused=refused
    )
