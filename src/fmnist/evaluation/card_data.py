"""The model card's data: what was measured, and the card as typed sections of blocks.

:class:`CardDetails` carries the responsible-evaluation results into the card;
:func:`fmnist.evaluation.card_sections.build_model_card` turns them, with the evaluation report
and the gate decision, into a :class:`ModelCard` (sections of paragraphs, bullet lists, tables
and figures), which :mod:`fmnist.evaluation.model_card` renders through the Markdown and HTML
templates of :mod:`fmnist.reporting`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from fmnist.evaluation.behavioural import BehaviouralReport
from fmnist.evaluation.bootstrap import BootstrapIntervals
from fmnist.evaluation.disparity import ClassDisparity, ConfusedPair
from fmnist.evaluation.slices import SliceReport


@dataclass(frozen=True)
class CardImage:
    """A PNG shown in the card, with its caption (also its alt text)."""

    kind: ClassVar[str] = "figure"
    caption: str
    png: bytes
    file_name: str = ""
    """Where the PNG lies next to the Markdown card (relative), when it was written."""
    thumbnail: bool = False
    """Shown small, side by side with other thumbnails (explanation examples)."""


@dataclass(frozen=True)
class RealPhotoFigures:
    """Real-photo figures measured for this very model version by ``fmnist experiment
    real-world`` (shares are of the photos counted next to them; ``None``: no such photos)."""

    source: str
    """Where the figures come from (the report folder or the tracked run)."""
    preprocessing: str
    mappable_photos: int
    """Photos whose garment has a Fashion-MNIST class."""
    unmappable_photos: int
    mappable_accuracy: float | None
    """Share of mappable photos whose top class is a right one."""
    mappable_wrong_answers: float | None
    """Share of mappable photos answered with a wrong class under the unknown rule."""
    mappable_abstention: float | None
    unmappable_abstention: float | None

    @classmethod
    def from_report(cls, report: Mapping[str, Any], source: str) -> RealPhotoFigures:
        """The figures of a real-world experiment report (its ``report.json``)."""
        summary = report["summary"]
        return cls(
            source=source,
            preprocessing=str(report["preprocessing"]),
            mappable_photos=int(summary["mappable_photos"]),
            unmappable_photos=int(summary["unmappable_photos"]),
            mappable_accuracy=summary.get("mappable_accuracy"),
            mappable_wrong_answers=summary.get("mappable_wrong_answers"),
            mappable_abstention=summary.get("mappable_abstention"),
            unmappable_abstention=summary.get("unmappable_abstention"),
        )


@dataclass(frozen=True)
class CardDetails:
    """The responsible-evaluation results shown in the card (every field optional)."""

    intervals: BootstrapIntervals | None = None
    disparity: ClassDisparity | None = None
    confused_pairs: Sequence[ConfusedPair] = ()
    slices: SliceReport | None = None
    behavioural: BehaviouralReport | None = None
    classwise_ece: Mapping[str, float] | None = None
    figures: Mapping[str, CardImage] = field(default_factory=dict)
    """Keys: ``confusion_matrix``, ``reliability_diagram``, ``classwise_reliability``,
    ``slices``."""
    explanations: Sequence[CardImage] = ()
    explanations_note: str | None = None
    data_counts: Mapping[str, int] | None = None
    """Images per split of the snapshot (train, val, test)."""
    data_source: str | None = None
    real_photos: RealPhotoFigures | None = None
    """Measured on real photos for this version; ``None``: not measured for it."""


@dataclass(frozen=True)
class Table:
    """A table; ``highlight`` holds the indices of rows to emphasise."""

    kind: ClassVar[str] = "table"
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    highlight: frozenset[int] = frozenset()
    numeric: frozenset[int] = frozenset()
    """Indices of right-aligned columns."""


@dataclass(frozen=True)
class Bullets:
    """A bullet list."""

    kind: ClassVar[str] = "bullets"
    items: Sequence[str]


Block = str | Bullets | Table | CardImage
"""A paragraph (inline Markdown: ``code`` and **bold**), a list, a table or a figure."""


@dataclass(frozen=True)
class Section:
    """A titled part of the card."""

    title: str
    blocks: Sequence[Block]


@dataclass(frozen=True)
class ModelCard:
    """The whole card: a title and its sections, in order."""

    title: str
    sections: Sequence[Section]
