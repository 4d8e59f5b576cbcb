"""Ground-truth feedback on logged predictions, and live accuracy over it.

Feedback lives in the log's SQLite file (table ``feedback``, committed like an append). Each row
copies what live accuracy needs from its prediction (model, version, predicted class, time), so
accuracy never joins against Parquet segments and survives their compaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from fmnist import CLASS_NAMES
from fmnist.monitoring import log_schema as schema
from fmnist.monitoring.errors import (
    FeedbackConflictError,
    InvalidFeedbackError,
    UnknownRequestError,
)
from fmnist.monitoring.prediction_log import PredictionLog
from fmnist.monitoring.records import UNKNOWN, FeedbackRecord

FeedbackOutcome = Literal["created", "unchanged"]

_INSERT = (
    "INSERT OR IGNORE INTO feedback (request_id, label, unknown, timestamp, ts_us, "
    "prediction_ts_us, model_name, model_version, predicted_class) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _validate(label: object, unknown: bool) -> int | None:
    if unknown:
        if label is not None:
            raise InvalidFeedbackError("give either a label or unknown=true, not both")
        return None
    if label is None:
        raise InvalidFeedbackError("a label (0..9) is required unless unknown=true")
    if isinstance(label, bool) or not isinstance(label, int):
        raise InvalidFeedbackError(f"label must be an integer 0..9, got {label!r}")
    if not 0 <= label < len(CLASS_NAMES):
        raise InvalidFeedbackError(f"label must be 0..{len(CLASS_NAMES) - 1}, got {label}")
    return label


def _describe(label: int | None) -> str:
    return "unknown (out of scope)" if label is None else f"label {label}"


class FeedbackStore:
    """True labels sent for logged predictions (``POST /v1/feedback``)."""

    def __init__(self, log: PredictionLog) -> None:
        """Store feedback in ``log``'s database (its write connection and lock)."""
        self.log = log

    def record(self, request_id: str, label: int | None, unknown: bool = False) -> FeedbackOutcome:
        """Store the label of ``request_id``: ``created`` on the first write, ``unchanged``
        when the same label (or ``unknown``) was stored before.

        Raises :class:`InvalidFeedbackError` for a label outside 0..9 (or with ``unknown``),
        :class:`UnknownRequestError` when no prediction has that id, and
        :class:`FeedbackConflictError` when a different label is stored already.
        """
        value = _validate(label, unknown)
        stored = self.get(request_id)
        if stored is not None:
            return self._compare(stored, value)
        prediction = self.log.get(request_id)
        if prediction is None:
            raise UnknownRequestError(request_id)
        now = datetime.now(UTC)
        changed = self.log.db.write(
            _INSERT,
            (
                request_id,
                value,
                int(unknown),
                now.isoformat(),
                schema.to_us(now),
                schema.timestamp_us(prediction),
                prediction.model_name,
                int(prediction.model_version),
                prediction.predicted_class,
            ),
        )
        if changed:
            return "created"
        stored = self.get(request_id)  # another writer won the race: compare with its label
        assert stored is not None
        return self._compare(stored, value)

    @staticmethod
    def _compare(stored: FeedbackRecord, label: int | None) -> FeedbackOutcome:
        if stored.label == label:
            return "unchanged"
        raise FeedbackConflictError(stored.request_id, _describe(stored.label), _describe(label))

    def get(self, request_id: str) -> FeedbackRecord | None:
        """The feedback stored for ``request_id``, or None."""
        rows = self.log.db.query(
            "SELECT request_id, label, unknown, timestamp FROM feedback WHERE request_id = ?",
            [request_id],
        )
        if not rows:
            return None
        rid, label, unknown, timestamp = rows[0]
        return FeedbackRecord(rid, label, bool(unknown), timestamp)

    def count(self) -> int:
        """The number of feedback rows."""
        return int(self.log.db.query("SELECT count(*) FROM feedback")[0][0])

    def labels(self, since: datetime | None = None) -> list[tuple[str, int | None, str]]:
        """``(request_id, label, predicted_class)`` of every feedback on a prediction made
        since ``since`` (UTC); ``label`` None marks an item outside the ten classes."""
        where, params = (
            ("", []) if since is None else (" WHERE prediction_ts_us >= ?", [schema.to_us(since)])
        )
        rows = self.log.db.query(
            f"SELECT request_id, label, predicted_class FROM feedback{where}",  # noqa: S608  # nosec B608
            params,
        )
        return [(str(r), None if label is None else int(label), str(p)) for r, label, p in rows]

    def live_accuracy(
        self,
        model_name: str | None = None,
        since: datetime | None = None,
        *,
        confidence: float = 0.95,
    ) -> LiveAccuracy:
        """Accuracy of the labelled predictions made since ``since`` (UTC), per model version
        and per true class, with Wilson intervals at ``confidence``.

        A prediction answered ``unknown`` counts as wrong (``abstained`` counts them); items
        marked out of scope are left out (``out_of_scope``, with how many were answered
        ``unknown``: ``out_of_scope_flagged``).
        """
        clauses: list[str] = []
        params: list[object] = []
        if model_name is not None:
            clauses.append("model_name = ?")
            params.append(model_name)
        if since is not None:
            clauses.append("prediction_ts_us >= ?")
            params.append(schema.to_us(since))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.log.db.query(
            "SELECT model_name, model_version, label, predicted_class FROM feedback"  # noqa: S608  # nosec B608
            f"{where} ORDER BY model_name, model_version",
            params,
        )
        groups: dict[tuple[str, int], list[tuple[int | None, str]]] = defaultdict(list)
        for name, version, label, predicted in rows:
            groups[(name, int(version))].append((label, predicted))
        models = tuple(
            _model_accuracy(name, version, items, confidence)
            for (name, version), items in groups.items()
        )
        return LiveAccuracy(confidence, models)


@dataclass(frozen=True)
class Estimate:
    """A proportion ``correct / n`` with its Wilson interval ``[low, high]``."""

    n: int
    correct: int
    accuracy: float
    low: float
    high: float


@dataclass(frozen=True)
class ModelAccuracy:
    """Live accuracy of one model version: overall and per true class (classes with labels)."""

    model_name: str
    model_version: int
    overall: Estimate | None
    per_class: Mapping[str, Estimate]
    abstained: int
    out_of_scope: int
    out_of_scope_flagged: int


@dataclass(frozen=True)
class LiveAccuracy:
    """Live accuracy per model version at one confidence level."""

    confidence: float
    models: tuple[ModelAccuracy, ...]

    def for_version(self, model_name: str, version: int) -> ModelAccuracy | None:
        """The entry of ``model_name`` version ``version``, or None without feedback."""
        for model in self.models:
            if (model.model_name, model.model_version) == (model_name, version):
                return model
        return None


def _estimate(correct: int, n: int, confidence: float) -> Estimate:
    from fmnist.evaluation.slices import wilson_interval

    low, high = wilson_interval(correct, n, confidence)
    return Estimate(n, correct, correct / n, float(low), float(high))


def _model_accuracy(
    name: str, version: int, items: list[tuple[int | None, str]], confidence: float
) -> ModelAccuracy:
    labelled = [(label, predicted) for label, predicted in items if label is not None]
    out_of_scope = [predicted for label, predicted in items if label is None]
    per_class_counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for label, predicted in labelled:
        counts = per_class_counts[label]
        counts[0] += int(predicted == CLASS_NAMES[label])
        counts[1] += 1
    correct = sum(c for c, _ in per_class_counts.values())
    return ModelAccuracy(
        model_name=name,
        model_version=version,
        overall=_estimate(correct, len(labelled), confidence) if labelled else None,
        per_class={
            CLASS_NAMES[label]: _estimate(c, n, confidence)
            for label, (c, n) in sorted(per_class_counts.items())
        },
        abstained=sum(1 for _, predicted in labelled if predicted == UNKNOWN),
        out_of_scope=len(out_of_scope),
        out_of_scope_flagged=sum(1 for predicted in out_of_scope if predicted == UNKNOWN),
    )
