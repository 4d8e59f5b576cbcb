"""Model references as ``?model=`` and the commands take them, resolved on the registry port.

A reference is a version or alias of the configured registered model (``champion``, ``3``),
``NAME@REF`` for a version or alias of another registered model (``fmnist-photos@champion``), or
a bare registered model name (``fmnist-photos``: its champion, else its newest version).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from fmnist.errors import FmnistError
from fmnist.platform.registry import CHAMPION, RegistryError

if TYPE_CHECKING:
    from collections.abc import Callable

    from fmnist.platform.registry import ModelRegistry, ModelVersionInfo

REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$"
"""What a model reference may look like (a registered model name, optionally ``@REF``)."""
_REF = re.compile(REF_PATTERN)
MODEL_FILE = "model.onnx"


class ModelReferenceError(FmnistError):
    """No registered version matches the reference (or it is not a valid reference)."""


def resolve_reference(
    registries: Callable[[str | None], ModelRegistry], ref: str
) -> tuple[ModelRegistry, ModelVersionInfo]:
    """The registry of the model ``ref`` names and its version (see the module docstring);
    ``registries(name)`` gives the registry of a registered model, ``registries(None)`` the
    configured one.

    Raises :class:`ModelReferenceError`.
    """
    if not _REF.match(ref):
        raise ModelReferenceError(f"invalid model reference {ref!r}")
    if "@" in ref:
        name, _, version_ref = ref.partition("@")
        named = registries(name)
        try:
            return named, named.get(version_ref)
        except RegistryError as exc:
            raise ModelReferenceError(
                f"model {name!r} has no version or alias {version_ref!r}"
            ) from exc
    default = registries(None)
    try:
        return default, default.get(ref)
    except RegistryError:
        if ref.isdigit():
            raise ModelReferenceError(
                f"model {default.model_name!r} has no version {ref}"
            ) from None
    other = registries(ref)
    try:
        return other, other.get(CHAMPION)
    except RegistryError:
        versions = other.list_versions()
    if not versions:
        raise ModelReferenceError(
            f"unknown model {ref!r}: not a version or alias of {default.model_name!r} "
            "nor a registered model name"
        )
    return other, versions[0]


def download_version(registry: ModelRegistry, version: int, final: Path) -> Path:
    """Version ``version`` of ``registry.model_name`` in folder ``final``, downloaded once,
    atomically (into a temporary folder beside it, then renamed)."""
    if (final / MODEL_FILE).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=final.parent))
    try:
        folder = registry.download(str(version), temp)
        try:
            folder.rename(final)
        except OSError:
            if not (final / MODEL_FILE).is_file():  # not a concurrent download: a failure
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return final
