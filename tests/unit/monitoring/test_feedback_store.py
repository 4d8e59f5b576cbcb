"""The feedback contract (created, unchanged, conflict, unknown id, invalid) and live accuracy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from fmnist.monitoring.errors import (
    FeedbackConflictError,
    InvalidFeedbackError,
    UnknownRequestError,
)
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.prediction_log import PredictionLog
from prediction_records import BASE, record, records


@pytest.fixture
def log(tmp_path: Path) -> PredictionLog:
    log = PredictionLog(tmp_path / "predictions.db", tmp_path / "segments")
    log.append(records(30))
    return log


@pytest.fixture
def store(log: PredictionLog) -> FeedbackStore:
    return FeedbackStore(log)


def test_first_write_creates_and_a_repeat_is_unchanged(store: FeedbackStore) -> None:
    assert store.record("req-00004", 4) == "created"
    assert store.record("req-00004", 4) == "unchanged"
    stored = store.get("req-00004")
    assert stored is not None and (stored.label, stored.unknown) == (4, False)
    assert store.count() == 1


def test_a_different_label_conflicts_and_keeps_the_first(store: FeedbackStore) -> None:
    store.record("req-00004", 4)
    with pytest.raises(
        FeedbackConflictError, match="already has feedback label 4; refusing label 5"
    ):
        store.record("req-00004", 5)
    with pytest.raises(FeedbackConflictError):
        store.record("req-00004", None, unknown=True)
    stored = store.get("req-00004")
    assert stored is not None and stored.label == 4


def test_out_of_scope_feedback(store: FeedbackStore) -> None:
    assert store.record("req-00007", None, unknown=True) == "created"
    assert store.record("req-00007", None, unknown=True) == "unchanged"
    with pytest.raises(FeedbackConflictError, match="unknown"):
        store.record("req-00007", 7)
    stored = store.get("req-00007")
    assert stored is not None and (stored.label, stored.unknown) == (None, True)


def test_unknown_request_id(store: FeedbackStore) -> None:
    with pytest.raises(UnknownRequestError, match="'nope'"):
        store.record("nope", 1)
    assert store.count() == 0


@pytest.mark.parametrize("label", [10, -1, True, "3", 2.0, None])
def test_invalid_labels(store: FeedbackStore, label: object) -> None:
    with pytest.raises(InvalidFeedbackError):
        store.record("req-00001", label)  # type: ignore[arg-type]
    assert store.count() == 0


def test_label_and_unknown_together_is_invalid(store: FeedbackStore) -> None:
    with pytest.raises(InvalidFeedbackError, match="not both"):
        store.record("req-00001", 1, unknown=True)


def test_feedback_on_a_compacted_prediction(log: PredictionLog, store: FeedbackStore) -> None:
    log.compact(BASE.date() + timedelta(days=1))
    assert store.record("req-00002", 2) == "created"
    accuracy = store.live_accuracy()
    assert accuracy.models[0].overall is not None and accuracy.models[0].overall.correct == 1


def test_live_accuracy_on_a_hand_made_example(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db", tmp_path / "s")
    at = BASE + timedelta(hours=1)
    log.append(
        [
            record(1, at, predicted=0),  # label 0: right
            record(2, at, predicted=1),  # label 1: right
            record(3, at, predicted=2),  # label 0: wrong
            record(4, at, predicted=-1),  # label 3: abstained, counts as wrong
            record(5, at, predicted=-1),  # out of scope, flagged unknown
            record(6, at, predicted=5),  # out of scope, answered Sandal
            record(7, at, predicted=8, model_version=2),  # label 8: right
            record(8, BASE + timedelta(days=2), predicted=9, model_version=2),  # label 9: right
            record(9, at, predicted=4, model_name="photos"),  # label 3: wrong
        ]
    )
    store = FeedbackStore(log)
    for i, label in [(1, 0), (2, 1), (3, 0), (4, 3), (7, 8), (8, 9), (9, 3)]:
        store.record(f"req-{i:05d}", label)
    for i in (5, 6):
        store.record(f"req-{i:05d}", None, unknown=True)

    result = store.live_accuracy()
    assert [(m.model_name, m.model_version) for m in result.models] == [
        ("fmnist-classifier", 1),
        ("fmnist-classifier", 2),
        ("photos", 1),
    ]
    v1 = result.for_version("fmnist-classifier", 1)
    assert v1 is not None and v1.overall is not None
    assert (v1.overall.n, v1.overall.correct, v1.overall.accuracy) == (4, 2, 0.5)
    # Wilson 95% interval of 2/4, worked by hand: centre 0.5, half-width 0.3500.
    assert v1.overall.low == pytest.approx(0.1500, abs=1e-4)
    assert v1.overall.high == pytest.approx(0.8500, abs=1e-4)
    assert {c: (e.n, e.correct) for c, e in v1.per_class.items()} == {
        "T-shirt/top": (2, 1),
        "Trouser": (1, 1),
        "Dress": (1, 0),
    }
    assert (v1.abstained, v1.out_of_scope, v1.out_of_scope_flagged) == (1, 2, 1)
    trouser = v1.per_class["Trouser"]  # 1/1: Wilson [0.2065, 1]
    assert trouser.low == pytest.approx(0.2065, abs=1e-4)
    assert trouser.high == 1.0

    only = store.live_accuracy(model_name="fmnist-classifier", since=BASE + timedelta(days=1))
    assert [(m.model_version, m.overall.n if m.overall else 0) for m in only.models] == [(2, 1)]
    empty = FeedbackStore(PredictionLog(tmp_path / "e.db", tmp_path / "es")).live_accuracy()
    assert empty.models == ()
    assert result.for_version("fmnist-classifier", 99) is None


def test_out_of_scope_only_has_no_overall_estimate(store: FeedbackStore) -> None:
    store.record("req-00001", None, unknown=True)
    model = store.live_accuracy().models[0]
    assert model.overall is None and model.per_class == {} and model.out_of_scope == 1
