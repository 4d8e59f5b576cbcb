"""One step of a canary: advance the challenger's share, hold, or roll back, by guard metrics.

Guards compare the challenger with the champion over the traffic since the last change:

* p95 latency above ``guard_latency_ratio`` times the champion's -> roll back;
* unknown-answer rate more than ``guard_unknown_increase`` above the champion's -> roll back;
* accuracy on labelled traffic significantly worse (always-valid p-value <= alpha) -> roll back.

With the guards holding, the canary advances to the next of ``canary_steps`` once the
challenger has answered ``canary_min_requests`` at this step; at the last step it is
``complete`` (promotion is a separate, audited act: ``fmnist models promote challenger``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fmnist.config import RolloutSettings
from fmnist.rollout.readout import ABReadout

CanaryAction = Literal["advance", "hold", "rollback", "complete"]


@dataclass(frozen=True)
class CanaryDecision:
    """What the step decided, from which share to which, and why (with the numbers)."""

    action: CanaryAction
    share_from: float
    share_to: float
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return asdict(self)


def _guards(readout: ABReadout, policy: RolloutSettings) -> list[str]:
    champion, challenger = readout.arms
    broken = []
    if champion.latency_p95_ms and challenger.latency_p95_ms is not None:
        ratio = challenger.latency_p95_ms / champion.latency_p95_ms
        if ratio > policy.guard_latency_ratio:
            broken.append(
                f"p95 latency {challenger.latency_p95_ms:.2f} ms is {ratio:.2f}x the champion's "
                f"{champion.latency_p95_ms:.2f} ms (limit {policy.guard_latency_ratio}x)"
            )
    if champion.unknown_rate is not None and challenger.unknown_rate is not None:
        increase = challenger.unknown_rate - champion.unknown_rate
        if increase > policy.guard_unknown_increase:
            broken.append(
                f"unknown rate {challenger.unknown_rate:.3f} is {increase:+.3f} above the "
                f"champion's (limit +{policy.guard_unknown_increase})"
            )
    p_value, difference = readout.p_value_always_valid, readout.difference
    worse = p_value is not None and difference is not None and difference < 0
    if worse and p_value is not None and p_value <= readout.alpha:
        broken.append(
            f"accuracy {difference:+.2%} against the champion, always-valid p "
            f"{p_value:.3g} <= {readout.alpha}"
        )
    return broken


def decide_canary(readout: ABReadout, policy: RolloutSettings) -> CanaryDecision:
    """The next step of the canary whose current share is ``policy.share``."""
    share = policy.share
    broken = _guards(readout, policy)
    if broken:
        return CanaryDecision("rollback", share, 0.0, broken)
    steps = sorted(policy.canary_steps)
    later = [s for s in steps if s > share]
    if not later:
        return CanaryDecision("complete", share, share, ["the last step holds: ready to promote"])
    seen = readout.arms[1].requests
    if seen < policy.canary_min_requests:
        return CanaryDecision(
            "hold",
            share,
            share,
            [f"{seen} challenger requests at this step, {policy.canary_min_requests} needed"],
        )
    return CanaryDecision(
        "advance", share, later[0], [f"guards hold over {seen} challenger requests"]
    )
