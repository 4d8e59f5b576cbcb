"""Fetch the model card of a registered version from its run's MLflow artifacts.

``fmnist evaluate`` logs ``evaluation/model_card.md`` and ``evaluation/model_card.html`` to the
training run of every version it registers; a version finds its card through its run id. Used
by ``fmnist models card`` and ``GET /v1/models/{name}/{version}/card``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fmnist.atomic import atomic_write_bytes
from fmnist.platform.registry import ModelRegistry, RegistryError

CardFormat = Literal["html", "md"]
CARD_FILES: dict[CardFormat, str] = {"html": "model_card.html", "md": "model_card.md"}
MEDIA_TYPES: dict[CardFormat, str] = {
    "html": "text/html; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
}
ARTIFACT_FOLDER = "evaluation"


class ModelCardNotFoundError(RegistryError):
    """The version exists but no model card was logged for it."""


@dataclass(frozen=True)
class ModelCard:
    """One version's card in one format."""

    name: str
    version: int
    run_id: str
    format: CardFormat
    content: bytes

    @property
    def media_type(self) -> str:
        """The HTTP media type of :attr:`content`."""
        return MEDIA_TYPES[self.format]


def fetch_model_card(
    registry: ModelRegistry,
    ref: str,
    card_format: CardFormat = "html",
    cache_dir: Path | None = None,
) -> ModelCard:
    """The card of version ``ref`` (number or alias) of ``registry.model_name``.

    Raises :class:`RegistryError` for an unknown version or alias and
    :class:`ModelCardNotFoundError` when the version has no card. With ``cache_dir``, cards are
    kept under ``<cache_dir>/<name>/<version>/`` (a version's run, hence its card, never
    changes) and written there atomically.
    """
    if card_format not in CARD_FILES:
        raise ValueError(f"unknown card format {card_format!r}; use one of: html, md")
    info = registry.get(ref)
    file_name = CARD_FILES[card_format]
    cached = None if cache_dir is None else cache_dir / info.name / str(info.version) / file_name
    if not info.run_id:
        raise ModelCardNotFoundError(
            f"version {info.version} of {info.name!r} has no run, hence no model card"
        )
    if cached is not None and cached.is_file():
        content = cached.read_bytes()
    else:
        listed = set(registry.list_run_artifacts(info.run_id, ARTIFACT_FOLDER))
        if file_name not in listed:
            raise ModelCardNotFoundError(
                f"version {info.version} of {info.name!r} has no model card: "
                f"{ARTIFACT_FOLDER}/{file_name} is not among the artifacts of run "
                f"{info.run_id} (evaluated before model cards existed?)"
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = registry.download_run_artifacts(
                info.run_id, f"{ARTIFACT_FOLDER}/{file_name}", Path(tmp)
            )
            content = path.read_bytes()
        if cached is not None:
            atomic_write_bytes(cached, content)
    return ModelCard(info.name, info.version, info.run_id, card_format, content)
