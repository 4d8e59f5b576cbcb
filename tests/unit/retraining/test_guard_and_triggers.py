"""Storm protection (lock, state) and the triggers of a retrain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fmnist.config import RetrainingSettings
from fmnist.monitoring.drift import DriftResult, ReferenceSummary, WindowInfo
from fmnist.monitoring.drift_tests import TestResult
from fmnist.retraining.guard import (
    RetrainBusyError,
    RetrainState,
    read_state,
    retrain_lock,
    write_state,
)
from fmnist.retraining.triggers import due_trigger

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_one_retrain_at_a_time_and_the_lock_is_released(tmp_path: Path) -> None:
    with (
        retrain_lock(tmp_path),
        pytest.raises(RetrainBusyError, match="another retrain is running"),
        retrain_lock(tmp_path),
    ):
        pass
    with retrain_lock(tmp_path):  # free again
        pass


def test_the_state_round_trips_and_starts_empty(tmp_path: Path) -> None:
    assert read_state(tmp_path) == RetrainState()
    state = RetrainState(started_at=NOW.isoformat(), trigger="drift", feedback_seen=40)
    write_state(tmp_path, state)
    assert read_state(tmp_path) == state
    assert state.seconds_since_start(NOW + timedelta(minutes=5)) == 300


def drift(detected: bool) -> DriftResult:
    return DriftResult(
        drift_detected=detected,
        alpha=0.05,
        correction="bonferroni",
        tests=[TestResult(name="mmd", statistic=0.3, p_value=0.001, fired=detected)],
        window=WindowInfo(size=300, start="2026-12-07T11:00:00Z", end="2026-12-07T11:30:00Z"),
        reference=ReferenceSummary(
            model_name="m", model_version=1, n=100, embedding_kind="pca", embedding_note=""
        ),
    )


def test_drift_comes_first_and_carries_its_window() -> None:
    policy = RetrainingSettings(min_new_feedback=10)
    trigger = due_trigger(policy, RetrainState(), drift=drift(True), labelled_feedback=50, now=NOW)
    assert trigger is not None and trigger.kind == "drift"
    assert trigger.since == datetime(2026, 12, 7, 11, tzinfo=UTC)
    assert trigger.until == datetime(2026, 12, 7, 11, 30, tzinfo=UTC)
    assert "mmd" in trigger.reason and trigger.to_dict()["details"]["window"] == 300


def test_feedback_counts_from_the_last_retrain_and_the_schedule_from_its_start() -> None:
    policy = RetrainingSettings(min_new_feedback=100, schedule_interval_h=24)
    last = RetrainState(
        started_at=(NOW - timedelta(hours=2)).isoformat(),
        feedback_seen=500,
        window_end=(NOW - timedelta(hours=2)).isoformat(),
    )
    assert due_trigger(policy, last, drift=drift(False), labelled_feedback=550, now=NOW) is None
    feedback = due_trigger(policy, last, drift=None, labelled_feedback=600, now=NOW)
    assert feedback is not None and feedback.kind == "feedback"
    assert feedback.since == NOW - timedelta(hours=2)
    later = NOW + timedelta(hours=23)
    schedule = due_trigger(policy, last, drift=None, labelled_feedback=500, now=later)
    assert schedule is not None and schedule.kind == "schedule"
