"""Photo classes to Fashion-MNIST classes: a versioned YAML file, validated with its line numbers.

A mapping says, for every class of a labelled photo collection, which Fashion-MNIST classes are a
right answer (a set: ``shoes`` maps to Sandal, Sneaker and Ankle boot) or that none is (an empty
list: the right answer is "unknown"). Example: ``config/real-world/clothing-small.yaml``.
Errors are :class:`MappingError` naming the file, the line and the class.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fmnist import CLASS_NAMES
from fmnist.errors import FmnistError
from fmnist.identity import digest_text


class MappingError(FmnistError):
    """A mapping file is unreadable or names a class that does not exist."""


class MappingSource(BaseModel):
    """Where the photos come from and how a user elsewhere gets them."""

    model_config = ConfigDict(extra="forbid")

    title: str
    licence: str | None = None
    url: str | None = None
    download: str | None = Field(None, description="a command that fetches the photos")
    layout: str | None = None


class _MappingFile(BaseModel):
    """The YAML document as written."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    name: str = Field(min_length=1)
    source: MappingSource | None = None
    classes: dict[str, list[str]] = Field(min_length=1)


@dataclass(frozen=True)
class ClassMapping:
    """A validated mapping: photo class -> the Fashion-MNIST class ids that are right answers."""

    name: str
    version: int
    path: Path
    sha256: str
    """SHA-256 of the file's bytes (recorded with every result)."""
    classes: Mapping[str, frozenset[int]]
    source: MappingSource | None = None

    @property
    def photo_classes(self) -> tuple[str, ...]:
        """The photo classes, sorted."""
        return tuple(sorted(self.classes))

    def targets(self, photo_class: str) -> frozenset[int]:
        """The Fashion-MNIST class ids that are right for ``photo_class`` (empty: unknown)."""
        try:
            return self.classes[photo_class]
        except KeyError:
            raise MappingError(
                f"photo class {photo_class!r} is not in mapping {self.path} "
                f"(classes: {', '.join(self.photo_classes)})"
            ) from None

    def is_mappable(self, photo_class: str) -> bool:
        """Whether some Fashion-MNIST class is a right answer for ``photo_class``."""
        return bool(self.targets(photo_class))

    def target_names(self, photo_class: str) -> list[str]:
        """The right Fashion-MNIST class names for ``photo_class``, in class-id order."""
        return [CLASS_NAMES[i] for i in sorted(self.targets(photo_class))]

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly view (for reports and MLflow)."""
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "sha256": self.sha256,
            "classes": {c: self.target_names(c) for c in self.photo_classes},
        }


def _class_lines(text: str) -> dict[str, tuple[int, list[int]]]:
    """Per photo class under ``classes:``: its key's line and the line of each list item."""
    lines: dict[str, tuple[int, list[int]]] = {}
    root = yaml.compose(text)
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if key.value != "classes" or not isinstance(value, yaml.MappingNode):
            continue
        for class_key, items in value.value:
            item_lines = (
                [item.start_mark.line + 1 for item in items.value]
                if isinstance(items, yaml.SequenceNode)
                else []
            )
            lines[str(class_key.value)] = (class_key.start_mark.line + 1, item_lines)
    return lines


def _top_level_lines(text: str) -> dict[str, int]:
    root = yaml.compose(text)
    if not isinstance(root, yaml.MappingNode):
        return {}
    return {str(k.value): k.start_mark.line + 1 for k, _ in root.value}


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, CLASS_NAMES, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in CLASS_NAMES}
        close = [lowered[name.lower()]] if name.lower() in lowered else []
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_mapping(text: str, path: Path) -> ClassMapping:
    """Validate the YAML ``text`` of the mapping file ``path`` (see :func:`load_mapping`)."""
    try:
        data = yaml.safe_load(text)
        class_lines = _class_lines(text)
        top_lines = _top_level_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise MappingError(f"{where}: {getattr(exc, 'problem', None) or 'invalid YAML'}") from exc
    if not isinstance(data, dict):
        raise MappingError(f"{path}:1: a mapping file is a YAML mapping with 'classes'")
    try:
        document = _MappingFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = [str(p) for p in error["loc"]]
        line = 1
        if loc and loc[0] == "classes" and len(loc) > 1 and loc[1] in class_lines:
            line = class_lines[loc[1]][0]
        elif loc and loc[0] in top_lines:
            line = top_lines[loc[0]]
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        raise MappingError(f"{path}:{line}: {'.'.join(loc) or 'file'}: {message}") from None
    ids = {name: i for i, name in enumerate(CLASS_NAMES)}
    classes: dict[str, frozenset[int]] = {}
    for photo_class, names in document.classes.items():
        key_line, item_lines = class_lines.get(photo_class, (1, []))
        if not photo_class.strip() or "/" in photo_class:
            raise MappingError(f"{path}:{key_line}: invalid photo class name {photo_class!r}")
        for k, name in enumerate(names):
            if name not in ids:
                line = item_lines[k] if k < len(item_lines) else key_line
                raise MappingError(
                    f"{path}:{line}: unknown Fashion-MNIST class {name!r} for photo class "
                    f"{photo_class!r}{_suggest(name)} (classes: {', '.join(CLASS_NAMES)})"
                )
        if len(set(names)) != len(names):
            raise MappingError(
                f"{path}:{key_line}: photo class {photo_class!r} lists a Fashion-MNIST class twice"
            )
        classes[photo_class] = frozenset(ids[n] for n in names)
    return ClassMapping(
        name=document.name,
        version=document.version,
        path=path,
        sha256=digest_text(text),
        classes=classes,
        source=document.source,
    )


def load_mapping(path: Path | str) -> ClassMapping:
    """Read and validate a mapping file.

    Raises :class:`MappingError` for an unreadable file, invalid YAML, unknown keys, or a
    Fashion-MNIST class name that does not exist (naming the class, the file and the line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{path}: cannot read mapping file ({exc.strerror})") from exc
    return parse_mapping(text, path)
