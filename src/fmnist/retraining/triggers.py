"""What starts a retrain: drift, a schedule, enough new labelled feedback, or a person.

:func:`due_trigger` looks at one monitor check and the state of the last retrain and returns
the trigger that is due, if any (drift first, then feedback, then the schedule). Storm
protection (cooldown, lock, a rollout in progress) is applied by the retrain itself, so a
trigger that arrives at the wrong time is recorded as skipped, with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from fmnist.config import RetrainingSettings
    from fmnist.monitoring.drift import DriftResult
    from fmnist.retraining.guard import RetrainState

TriggerKind = Literal["drift", "schedule", "feedback", "manual"]


@dataclass(frozen=True)
class Trigger:
    """Why a retrain is asked for, by whom, and the log window it should learn from."""

    kind: TriggerKind
    actor: str
    reason: str
    since: datetime | None = None
    until: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "kind": self.kind,
            "actor": self.actor,
            "reason": self.reason,
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "details": self.details,
        }


def _parse(stamp: str | None) -> datetime | None:
    if stamp is None:
        return None
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def due_trigger(
    policy: RetrainingSettings,
    state: RetrainState,
    *,
    drift: DriftResult | None,
    labelled_feedback: int,
    now: datetime,
    actor: str = "fmnist monitor",
) -> Trigger | None:
    """The trigger due after a monitor check, or None."""
    since_last = _parse(state.window_end)
    if drift is not None and drift.drift_detected:
        failed = [t.name for t in drift.tests if t.fired]
        return Trigger(
            "drift",
            actor,
            f"drift detected by {', '.join(failed) or 'the monitor'} over "
            f"{drift.window.size} predictions",
            since=_parse(drift.window.start),
            until=_parse(drift.window.end),
            details={"tests": failed, "report": drift.report_path, "window": drift.window.size},
        )
    new_feedback = labelled_feedback - state.feedback_seen
    if new_feedback >= policy.min_new_feedback:
        return Trigger(
            "feedback",
            actor,
            f"{new_feedback} new labelled feedback (threshold {policy.min_new_feedback})",
            since=since_last,
            until=now,
            details={"new_feedback": new_feedback},
        )
    if policy.schedule_interval_h is not None:
        elapsed = state.seconds_since_start(now)
        if elapsed is None or elapsed >= policy.schedule_interval_h * 3600:
            return Trigger(
                "schedule",
                actor,
                f"scheduled every {policy.schedule_interval_h:g} h",
                since=since_last,
                until=now,
            )
    return None
