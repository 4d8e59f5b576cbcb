"""One step of a canary: advance the challenger's share, hold, or roll back, by guard metrics.

Guards compare the challenger with the champion over the traffic since the last change:

* p95 latency above ``guard_latency_ratio`` times the champion's and more than
  ``guard_latency_slack_ms`` above it -> roll back;
* unknown-answer rate more than ``guard_unknown_increase`` above the champion's -> roll back;
* error rate (failed predictions over attempts) more than ``guard_error_increase`` above the
  champion's -> roll back;
* accuracy on labelled traffic significantly worse (always-valid p-value <= alpha) -> roll back.

With the guards holding, the canary advances to the next of ``canary_steps`` once the
challenger has answered ``canary_min_requests`` at this step; when the next step would be all
of the traffic (or there is none) it is ``complete``: ready for promotion, which is a separate,
audited act (``fmnist ab step --apply`` or ``fmnist models promote``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fmnist.config import RolloutSettings
from fmnist.rollout.readout import ABReadout

CanaryAction = Literal["advance", "hold", "rollback", "complete"]
MIN_ARM_REQUESTS = 30
"""Fewer requests on either arm: the rate guards (errors, latency, unknown) wait."""


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


def error_rates(readout: ABReadout, failures: Mapping[str, int]) -> dict[str, float]:
    """Per arm: failed predictions over attempts (answered plus failed)."""
    rates = {}
    for arm in readout.arms:
        failed = failures.get(arm.arm, 0)
        attempts = arm.requests + failed
        rates[arm.arm] = failed / attempts if attempts else 0.0
    return rates


def _rate_guards(
    readout: ABReadout, policy: RolloutSettings, failures: Mapping[str, int], *, latency: bool
) -> list[str]:
    champion, challenger = readout.arms
    broken = []
    rates = error_rates(readout, failures)
    increase = rates[challenger.arm] - rates[champion.arm]
    if increase > policy.guard_error_increase:
        broken.append(
            f"error rate {rates[challenger.arm]:.3f} is {increase:+.3f} above the champion's "
            f"(limit +{policy.guard_error_increase})"
        )
    if latency and champion.latency_p95_ms and challenger.latency_p95_ms is not None:
        ratio = challenger.latency_p95_ms / champion.latency_p95_ms
        slower = challenger.latency_p95_ms - champion.latency_p95_ms
        if ratio > policy.guard_latency_ratio and slower > policy.guard_latency_slack_ms:
            broken.append(
                f"p95 latency {challenger.latency_p95_ms:.2f} ms is {ratio:.2f}x the champion's "
                f"{champion.latency_p95_ms:.2f} ms (limit {policy.guard_latency_ratio}x and "
                f"+{policy.guard_latency_slack_ms:g} ms)"
            )
    if champion.unknown_rate is not None and challenger.unknown_rate is not None:
        increase = challenger.unknown_rate - champion.unknown_rate
        if increase > policy.guard_unknown_increase:
            broken.append(
                f"unknown rate {challenger.unknown_rate:.3f} is {increase:+.3f} above the "
                f"champion's (limit +{policy.guard_unknown_increase})"
            )
    return broken


def guards(
    readout: ABReadout,
    policy: RolloutSettings,
    failures: Mapping[str, int] | None = None,
    *,
    latency: bool = True,
) -> list[str]:
    """The guards the challenger breaks (empty when they all hold), each with its numbers.
    Without ``latency`` the latency guard is left out (a shadow's scoring queues behind the
    champion's requests, so its latency is not what users would see)."""
    champion, challenger = readout.arms
    broken: list[str] = []
    if min(champion.requests, challenger.requests) >= MIN_ARM_REQUESTS:
        broken += _rate_guards(readout, policy, failures or {}, latency=latency)
    p_value, difference = readout.p_value_always_valid, readout.difference
    worse = p_value is not None and difference is not None and difference < 0
    if worse and p_value is not None and p_value <= readout.alpha:
        broken.append(
            f"accuracy {difference:+.2%} against the champion, always-valid p "
            f"{p_value:.3g} <= {readout.alpha}"
        )
    return broken


def decide_canary(
    readout: ABReadout, policy: RolloutSettings, failures: Mapping[str, int] | None = None
) -> CanaryDecision:
    """The next step of the canary whose current share is ``policy.share``."""
    share = policy.share
    broken = guards(readout, policy, failures)
    if broken:
        return CanaryDecision("rollback", share, 0.0, broken)
    steps = sorted(policy.canary_steps)
    later = [s for s in steps if s > share]
    seen = readout.arms[1].requests
    if seen < policy.canary_min_requests:
        return CanaryDecision(
            "hold",
            share,
            share,
            [f"{seen} challenger requests at this step, {policy.canary_min_requests} needed"],
        )
    if not later or later[0] >= 1.0:  # all of the traffic is what promotion means
        return CanaryDecision(
            "complete",
            share,
            1.0,
            [f"guards hold over {seen} challenger requests at the last step: ready to promote"],
        )
    return CanaryDecision(
        "advance", share, later[0], [f"guards hold over {seen} challenger requests"]
    )
