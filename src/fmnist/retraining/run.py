"""One retrain, from trigger to a gated candidate in shadow (or a recorded reason why not).

Steps, each written to the audit log with its numbers:

1. ``retrain.trigger``: who or what asked, why, for which log window.
2. Storm protection: within ``cooldown_s`` of the last retrain, while another retrain holds
   the lock, or while a candidate is still in shadow/canary -> ``retrain.skipped``.
3. Data: the champion's training snapshot plus the window's labelled feedback (part held
   out as the drifted-window gate) as a new derived snapshot with lineage, validated first
   -> ``retrain.snapshot`` (or ``retrain.rejected`` when there is too little feedback or
   validation fails).
4. Training: the ``training`` pipeline of the orchestration port (the same one ``fmnist
   pipeline run`` runs) on that snapshot with ``retraining.preset``; the candidate faces the
   gates with non-inferiority against the champion and superiority on the held-out window,
   and is registered either way -> ``retrain.gates``.
5. A candidate that passed starts in shadow (``retraining.rollout``) -> ``rollout.change``; one
   that failed is never served (the gate tags refuse it to ``?model=`` and to the rollout).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from fmnist.audit import AuditLog, audit_path
from fmnist.data.snapshot import load_snapshot, write_derived_snapshot
from fmnist.errors import ValidationFailedError
from fmnist.platform.registry import CHAMPION
from fmnist.retraining.guard import (
    RetrainBusyError,
    RetrainState,
    read_state,
    retrain_lock,
    write_state,
)
from fmnist.retraining.window_data import window_data
from fmnist.rollout.controller import current_rollout, start_rollout

if TYPE_CHECKING:
    from fmnist.config import Settings
    from fmnist.platform.services import Services
    from fmnist.retraining.triggers import Trigger

RetrainStatus = Literal["skipped", "rejected", "failed_gates", "candidate", "registered"]


@dataclass(frozen=True)
class RetrainOutcome:
    """How a retrain ended: ``skipped`` (not started), ``rejected`` (data), ``failed_gates``
    (registered, never served), ``candidate`` (in shadow/canary) or ``registered`` (passed;
    ``retraining.rollout`` is none)."""

    status: RetrainStatus
    reason: str
    trigger: dict[str, Any]
    snapshot_id: str | None = None
    run_id: str | None = None
    version: int | None = None
    accuracy: float | None = None
    gate_checks: dict[str, bool] = field(default_factory=dict)
    gate_reasons: list[str] = field(default_factory=list)
    lineage: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return asdict(self)


def _audit(settings: Settings) -> AuditLog:
    return AuditLog(audit_path(settings.home, settings.rollout.audit_path))


def _storm_reason(settings: Settings, state: RetrainState, now: datetime) -> str | None:
    elapsed = state.seconds_since_start(now)
    cooldown = settings.retraining.cooldown_s
    if elapsed is not None and elapsed < cooldown:
        return f"cooldown: the last retrain started {elapsed:.0f} s ago (cooldown {cooldown:g} s)"
    rollout = current_rollout(settings)
    if rollout.mode in ("shadow", "canary"):
        return f"a candidate ({rollout.challenger}) is still in {rollout.mode}"
    return None


def retrain(services: Services, trigger: Trigger, *, force: bool = False) -> RetrainOutcome:
    """Run one retrain for ``trigger`` (see the module docstring); ``force`` ignores the
    cooldown and a rollout in progress, never the lock."""
    settings = services.settings
    audit = _audit(settings)
    described = trigger.to_dict()
    audit.append(trigger.actor, "retrain.trigger", trigger.reason, described)
    now = datetime.now(UTC)
    reason = None if force else _storm_reason(settings, read_state(settings.home), now)
    if reason is not None:
        audit.append(trigger.actor, "retrain.skipped", reason, {"trigger": trigger.kind})
        return RetrainOutcome("skipped", reason, described)
    try:
        with retrain_lock(settings.home):
            return _retrain_locked(services, trigger, audit, described)
    except RetrainBusyError as exc:
        audit.append(trigger.actor, "retrain.skipped", str(exc), {"trigger": trigger.kind})
        return RetrainOutcome("skipped", str(exc), described)


def _retrain_locked(
    services: Services, trigger: Trigger, audit: AuditLog, described: dict[str, Any]
) -> RetrainOutcome:
    settings = services.settings
    policy = settings.retraining
    state = RetrainState(
        started_at=datetime.now(UTC).isoformat(),
        trigger=trigger.kind,
        feedback_seen=services.feedback.count(),
        window_end=(trigger.until or datetime.now(UTC)).isoformat(),
    )
    write_state(settings.home, state)

    def finish(outcome: RetrainOutcome) -> RetrainOutcome:
        write_state(
            settings.home,
            replace(
                state,
                finished_at=datetime.now(UTC).isoformat(),
                outcome=outcome.status,
                version=outcome.version,
            ),
        )
        return outcome

    registry = services.registry()
    champion = registry.get(CHAMPION)
    base = load_snapshot(services.storage, champion.tags.get("snapshot_id"))
    data = window_data(
        services.prediction_log,
        services.feedback,
        since=trigger.since,
        until=trigger.until,
        holdout_fraction=policy.holdout_fraction,
    )
    lineage = {"trigger": described, "champion_version": champion.version, **data.lineage}
    if data.labelled < policy.min_feedback or not len(data.holdout[1]):
        reason = (
            f"too little labelled feedback in the window: {len(data.train[1])} to train on, "
            f"{len(data.holdout[1])} held out (retraining.min_feedback={policy.min_feedback})"
        )
        audit.append(trigger.actor, "retrain.rejected", reason, {"lineage": lineage})
        return finish(RetrainOutcome("rejected", reason, described, lineage=lineage))
    try:
        manifest, _ = write_derived_snapshot(
            services.storage,
            base,
            data.train,
            data.holdout,
            settings.validation,
            lineage,
            weight=policy.feedback_weight,
        )
    except ValidationFailedError as exc:
        audit.append(trigger.actor, "retrain.rejected", str(exc), {"lineage": lineage})
        return finish(RetrainOutcome("rejected", str(exc), described, lineage=lineage))
    audit.append(
        trigger.actor,
        "retrain.snapshot",
        f"snapshot {manifest.snapshot_id}: {data.labelled} labelled window images "
        f"({len(data.holdout[1])} held out) on base {base.snapshot_id}",
        {"snapshot_id": manifest.snapshot_id, "lineage": manifest.lineage},
    )
    run = services.orchestrator.run(
        "training",
        {
            "preset": policy.preset,
            "snapshot_id": manifest.snapshot_id,
            "promote": False,
            "champion_test": "non_inferiority",
        },
    )
    outputs = dict(run.outputs)
    version = outputs.get("version")
    passed = bool(outputs.get("gates_passed"))
    for key, value in (
        ("fmnist.retrain.trigger", trigger.kind),
        ("fmnist.retrain.reason", trigger.reason[:500]),
        ("fmnist.retrain.snapshot", manifest.snapshot_id),
    ):
        registry.set_run_tag(run.run_id, key, value)
    checks = {str(k): bool(v) for k, v in dict(outputs.get("gate_checks") or {}).items()}
    reasons = [str(r) for r in outputs.get("gate_reasons") or []]
    verdict = "passed" if passed else "failed: " + "; ".join(reasons)
    audit.append(
        trigger.actor,
        "retrain.gates",
        f"version {version} {verdict}",
        {
            "version": version,
            "run_id": run.run_id,
            "accuracy": outputs.get("accuracy"),
            "checks": checks,
            "reasons": reasons,
            "snapshot_id": manifest.snapshot_id,
        },
    )
    result = RetrainOutcome(
        "failed_gates",
        verdict,
        described,
        snapshot_id=manifest.snapshot_id,
        run_id=run.run_id,
        version=int(version) if version is not None else None,
        accuracy=outputs.get("accuracy"),
        gate_checks=checks,
        gate_reasons=reasons,
        lineage=manifest.lineage,
    )
    if not passed or result.version is None:
        return finish(result)
    if policy.rollout == "none":
        return finish(replace(result, status="registered"))
    start_rollout(
        settings,
        str(result.version),
        mode=policy.rollout,
        experiment=f"retrain-v{result.version}",
        actor=trigger.actor,
        reason=f"retrained candidate v{result.version} passed its gates ({trigger.kind})",
    )
    return finish(replace(result, status="candidate"))
