"""The same predictions scored under several mappings, each against the goals of issue 21.

A mapping decides which answers count as right (``clothing-small`` counts a long-sleeve photo
answered T-shirt/top as right; ``clothing-small-strict`` does not), so one experiment reports its
figures under every mapping it is given: the ``mappings`` block of ``report.json``. Per mapping:

* ``accuracy``: mappable photos answered with a right class over all mappable photos
  (abstentions count as wrong); ``answered_accuracy`` the same over the answered ones;
  ``top1_accuracy`` the top class right whether or not it was withheld;
* abstention on unmappable and on mappable photos;
* per class, each figure against its goal with ``met``;
* the errors: (photo class, answer) pairs with their counts, and the indices of the photos, so a
  contact sheet can show them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fmnist.errors import FmnistError
from fmnist.evaluation.unknown import Verdict
from fmnist.realworld.mapping import ClassMapping
from fmnist.realworld.photos import LabelledPhoto

ACCURACY_GOALS: dict[str, float] = {"clothing-small": 0.80, "clothing-small-strict": 0.70}
"""Issue 21's accuracy goal per mapping name (answered right / all mappable photos)."""
UNMAPPABLE_ABSTENTION_GOAL = 0.65
"""At least this share of photos of unmappable classes answered "unknown"."""
MAPPABLE_ABSTENTION_GOAL = 0.10
"""At most this share of photos of mappable classes answered "unknown"."""
TOP_ERRORS = 12
"""Error pairs kept in the summary (all are in ``errors.pairs``)."""


class MappingMismatchError(FmnistError):
    """A second mapping does not list the same photo classes as the first."""


def check_same_classes(primary: ClassMapping, other: ClassMapping) -> None:
    """Raise :class:`MappingMismatchError` unless both mappings list the same photo classes."""
    if set(primary.photo_classes) != set(other.photo_classes):
        missing = sorted(set(primary.photo_classes) ^ set(other.photo_classes))
        raise MappingMismatchError(
            f"mapping {other.path} ({other.name}) and {primary.path} ({primary.name}) list "
            f"different photo classes: {', '.join(missing)}"
        )


def goal(value: float | None, op: str, target: float | None) -> dict[str, Any]:
    """``{"target": ">= 80%", "value": ..., "met": ...}`` (``met`` None without a target)."""
    if target is None:
        return {"target": None, "value": value, "met": None}
    met = value is not None and (value >= target if op == ">=" else value <= target)
    return {"target": f"{op} {target:.0%}", "value": value, "met": met}


def _share(hits: Sequence[bool]) -> float | None:
    return sum(hits) / len(hits) if hits else None


@dataclass(frozen=True)
class MappingScore:
    """One mapping's block of the report and the indices of its wrong photos."""

    block: dict[str, Any]
    error_indices: tuple[int, ...]


def score_mapping(
    photos: Sequence[LabelledPhoto],
    verdicts: Sequence[Verdict],
    top1: npt.NDArray[np.intp],
    mapping: ClassMapping,
    *,
    accuracy_goal: float | None = None,
) -> MappingScore:
    """Score the predictions under ``mapping`` (goal: ``accuracy_goal``, else the mapping's
    entry in :data:`ACCURACY_GOALS`, else none)."""
    target = accuracy_goal if accuracy_goal is not None else ACCURACY_GOALS.get(mapping.name)
    right = [
        (v.class_id is not None and v.class_id in mapping.targets(p.photo_class))
        for p, v in zip(photos, verdicts, strict=True)
    ]
    mappable = [i for i, p in enumerate(photos) if mapping.is_mappable(p.photo_class)]
    unmappable = [i for i, p in enumerate(photos) if not mapping.is_mappable(p.photo_class)]
    answered = [i for i in mappable if not verdicts[i].is_unknown]
    summary = {
        "mappable_photos": len(mappable),
        "unmappable_photos": len(unmappable),
        "accuracy": _share([right[i] for i in mappable]),
        "answered_accuracy": _share([right[i] for i in answered]),
        "top1_accuracy": _share(
            [int(top1[i]) in mapping.targets(photos[i].photo_class) for i in mappable]
        ),
        "mappable_abstention": _share([verdicts[i].is_unknown for i in mappable]),
        "unmappable_abstention": _share([verdicts[i].is_unknown for i in unmappable]),
    }
    goals = {
        "accuracy": goal(summary["accuracy"], ">=", target),
        "unmappable_abstention": goal(
            summary["unmappable_abstention"], ">=", UNMAPPABLE_ABSTENTION_GOAL
        ),
        "mappable_abstention": goal(summary["mappable_abstention"], "<=", MAPPABLE_ABSTENTION_GOAL),
    }
    per_class: dict[str, dict[str, Any]] = {}
    for name in mapping.photo_classes:
        rows = [i for i, p in enumerate(photos) if p.photo_class == name]
        if not rows:
            continue
        abstention = _share([verdicts[i].is_unknown for i in rows])
        row: dict[str, Any] = {"n": len(rows), "mapped_to": mapping.target_names(name)}
        if mapping.is_mappable(name):
            accuracy = _share([right[i] for i in rows])
            row |= {
                "accuracy": accuracy,
                "abstention": abstention,
                "goals": {
                    "accuracy": goal(accuracy, ">=", target),
                    "abstention": goal(abstention, "<=", MAPPABLE_ABSTENTION_GOAL),
                },
            }
        else:
            row |= {
                "abstention": abstention,
                "goals": {"abstention": goal(abstention, ">=", UNMAPPABLE_ABSTENTION_GOAL)},
            }
        per_class[name] = row
    wrong = tuple(
        i
        for i, p in enumerate(photos)
        if (right[i] is False and mapping.is_mappable(p.photo_class))
        or (not mapping.is_mappable(p.photo_class) and not verdicts[i].is_unknown)
    )
    pairs = Counter((photos[i].photo_class, verdicts[i].label) for i in wrong)
    block = {
        **mapping.describe(),
        "summary": summary,
        "goals": goals,
        "met": all(g["met"] is not False for g in goals.values()),
        "per_class": per_class,
        "errors": {
            "count": len(wrong),
            "pairs": [
                {"photo_class": c, "answer": a, "count": n}
                for (c, a), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
        },
    }
    return MappingScore(block, wrong)


def score_mappings(
    photos: Sequence[LabelledPhoto],
    verdicts: Sequence[Verdict],
    top1: npt.NDArray[np.intp],
    mappings: Sequence[ClassMapping],
) -> dict[str, MappingScore]:
    """:func:`score_mapping` for each mapping, by name (the first is the report's own)."""
    scores: dict[str, MappingScore] = {}
    for mapping in mappings:
        check_same_classes(mappings[0], mapping)
        if mapping.name in scores:
            raise MappingMismatchError(f"two mappings are called {mapping.name!r}")
        scores[mapping.name] = score_mapping(photos, verdicts, top1, mapping)
    return scores


def strictly_wrong_but_leniently_right(
    lenient: MappingScore, strict: MappingScore
) -> tuple[int, ...]:
    """Photos wrong under ``strict`` that ``lenient`` counts as right (the mapping's slack)."""
    return tuple(sorted(set(strict.error_indices) - set(lenient.error_indices)))
