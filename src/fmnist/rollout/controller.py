"""The rollout controller: shadow -> canary -> promotion, or rollback, one audited step at a time.

A candidate that passed its gates starts in ``shadow`` (:func:`start_rollout`): the champion
answers, the challenger scores the same inputs. :func:`step_rollout` looks at the traffic since
the last change and:

* ``shadow``: rolls back when a guard breaks (:func:`~fmnist.rollout.canary.guards`; not
  latency, which users see from the canary's first step on); once the
  challenger has scored ``shadow_min_requests``, the exact paired McNemar test on the same
  labelled requests (one look) rolls back a challenger significantly worse than the
  champion, else moves to a canary at the first of ``canary_steps``; before that it holds.
* ``canary``: advances, holds or rolls back (:func:`~fmnist.rollout.canary.decide_canary`);
  at the last step the challenger is promoted: the registry's champion alias moves to it and
  every server hot-reloads it on its next registry poll.

Applied steps are written to the rollout state (every server picks them up), to the audit
log, and as a tag on the challenger's MLflow run. An ``ab`` experiment is a person's and is
left alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from fmnist.audit import AuditLog, audit_path
from fmnist.config import RolloutSettings, Settings
from fmnist.platform.registry import ModelVersionInfo, RegistryError
from fmnist.rollout.canary import decide_canary, error_rates, guards
from fmnist.rollout.failures import failure_counts, failures_path
from fmnist.rollout.readout import ab_readout, paired_shadow_readout
from fmnist.rollout.state import read_state, state_path, write_state

if TYPE_CHECKING:
    from fmnist.platform.services import Services

StepAction = Literal["idle", "hold", "canary", "advance", "rollback", "promote", "complete"]


@dataclass(frozen=True)
class RolloutStep:
    """What one step decided (and whether it was applied), with the numbers behind it."""

    mode: str
    action: StepAction
    share_from: float
    share_to: float
    reasons: list[str] = field(default_factory=list)
    applied: bool = False
    challenger: str = ""
    readout: dict[str, Any] | None = None
    promoted_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return asdict(self)


def current_rollout(settings: Settings) -> RolloutSettings:
    """The rollout in force: the state file's, else the settings'."""
    return read_state(state_path(settings.home), settings.rollout) or settings.rollout


def _audit(settings: Settings) -> AuditLog:
    return AuditLog(audit_path(settings.home, settings.rollout.audit_path))


def start_rollout(
    settings: Settings,
    challenger: str,
    *,
    experiment: str,
    actor: str,
    reason: str,
    mode: Literal["shadow", "canary"] = "shadow",
) -> RolloutSettings:
    """Put ``challenger`` (a version or alias) in shadow, or in a canary at its first step,
    under ``experiment``; audited."""
    previous = current_rollout(settings)
    share = 0.0 if mode == "shadow" else sorted(previous.canary_steps)[0]
    config = previous.model_copy(
        update={"mode": mode, "challenger": challenger, "experiment": experiment, "share": share}
    )
    write_state(state_path(settings.home), config)
    _audit(settings).append(
        actor,
        "rollout.change",
        reason,
        {"from": previous.model_dump(mode="json"), "to": config.model_dump(mode="json")},
    )
    return config


def _decide(
    services: Services, config: RolloutSettings
) -> tuple[StepAction, float, list[str], dict[str, Any]]:
    settings = services.settings
    path = state_path(settings.home)
    since = datetime.fromtimestamp(path.stat().st_mtime, UTC) if path.exists() else None
    readout = ab_readout(
        services.prediction_log,
        services.feedback,
        experiment=config.experiment,
        since=since,
        alpha=config.alpha,
    )
    failures = failure_counts(failures_path(settings.home), since)
    numbers = {**readout.to_dict(), "error_rates": error_rates(readout, failures)}
    if config.mode == "shadow":
        broken = guards(readout, config, failures, latency=False)
        scored = readout.arms[1].requests
        if scored >= config.shadow_min_requests and not broken:
            # One look, on the same requests: the exact paired test of "challenger worse".
            paired = paired_shadow_readout(services.prediction_log, services.feedback, since=since)
            numbers["paired"] = asdict(paired)
            if paired.p_worse <= config.alpha:
                broken.append(
                    f"accuracy {paired.difference:+.2%} against the champion on the same "
                    f"{paired.n} labelled requests (+{paired.b}/-{paired.c}; McNemar p "
                    f"{paired.p_worse:.3g} <= {config.alpha})"
                )
        if broken:
            return "rollback", 0.0, broken, numbers
        if scored >= config.shadow_min_requests:
            first = sorted(config.canary_steps)[0]
            return "canary", first, [f"guards hold over {scored} shadow-scored requests"], numbers
        needed = config.shadow_min_requests
        return "hold", 0.0, [f"{scored} shadow-scored, {needed} needed"], numbers
    decision = decide_canary(readout, config, failures)
    action: StepAction = "promote" if decision.action == "complete" else decision.action
    return action, decision.share_to, decision.reasons, numbers


def step_rollout(
    services: Services, *, apply: bool, actor: str, promote: bool = True
) -> RolloutStep:
    """One step of the running shadow or canary (see the module docstring). Without
    ``promote`` a finished canary is reported as ``complete`` and left for a person."""
    settings = services.settings
    config = current_rollout(settings)
    if config.mode not in ("shadow", "canary"):
        return RolloutStep(config.mode, "idle", config.share, config.share, ["no shadow or canary"])
    action, share_to, reasons, numbers = _decide(services, config)
    if action == "promote" and not promote:
        action = "complete"
    step = RolloutStep(
        config.mode, action, config.share, share_to, reasons, challenger=config.challenger
    )
    if not apply or action in ("hold", "complete"):
        return RolloutStep(**{**asdict(step), "readout": numbers})
    registry = services.registry()
    try:
        candidate: ModelVersionInfo | None = registry.get(config.challenger)
    except RegistryError:  # a rollback must happen even when the registry cannot say more
        if action == "promote":
            raise
        candidate = None
    promoted: int | None = None
    if action == "promote" and candidate is not None:
        promoted = registry.promote(
            str(candidate.version), reason=f"canary {config.experiment} completed"
        ).version
        new = config.model_copy(update={"mode": "off", "share": 0.0})
    elif action == "rollback":
        new = config.model_copy(update={"mode": "off", "share": 0.0})
    else:
        new = config.model_copy(update={"mode": "canary", "share": share_to})
    write_state(state_path(settings.home), new)
    audit_action = f"canary.{action}" if action in ("advance", "rollback") else f"rollout.{action}"
    if config.mode == "shadow" and action == "rollback":
        audit_action = "shadow.rollback"
    _audit(settings).append(
        actor,
        audit_action,
        "; ".join(reasons),
        {
            "experiment": config.experiment,
            "challenger": {
                "ref": config.challenger,
                "version": None if candidate is None else candidate.version,
            },
            "share_from": config.share,
            "share_to": share_to,
            "readout": numbers,
        },
    )
    if candidate is not None and candidate.run_id:
        registry.set_run_tag(candidate.run_id, "fmnist.rollout", f"{action}: {'; '.join(reasons)}")
    return RolloutStep(
        **{**asdict(step), "applied": True, "readout": numbers, "promoted_version": promoted}
    )
