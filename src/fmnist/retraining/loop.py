"""The closed loop, run by the monitor after each drift check (``retraining.auto``).

After the check (and its alerts): a due trigger starts a retrain (:func:`retrain`, which
records a skip during cooldown or a running rollout), then one step of the rollout controller
moves a candidate along shadow -> canary -> promotion, or rolls it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fmnist.retraining.guard import read_state
from fmnist.retraining.run import RetrainOutcome, retrain
from fmnist.retraining.triggers import due_trigger
from fmnist.rollout.controller import RolloutStep, step_rollout

if TYPE_CHECKING:
    from fmnist.monitoring.drift import DriftResult
    from fmnist.platform.services import Services

ACTOR = "fmnist monitor"


@dataclass(frozen=True)
class LoopStep:
    """What the loop did after one check."""

    retrain: RetrainOutcome | None
    rollout: RolloutStep

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "retrain": None if self.retrain is None else self.retrain.to_dict(),
            "rollout": self.rollout.to_dict(),
        }


def after_drift_check(services: Services, result: DriftResult | None) -> LoopStep | None:
    """Act on one check's result when ``retraining.auto`` is on (else do nothing)."""
    settings = services.settings
    if not settings.retraining.auto:
        return None
    trigger = due_trigger(
        settings.retraining,
        read_state(settings.home),
        drift=result,
        labelled_feedback=services.feedback.count(),
        now=datetime.now(UTC),
        actor=ACTOR,
    )
    outcome = retrain(services, trigger) if trigger is not None else None
    return LoopStep(outcome, step_rollout(services, apply=True, actor=ACTOR))
