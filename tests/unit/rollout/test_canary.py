"""Canary steps: advance while the guards hold, hold without traffic, roll back on a breach."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist import cli
from fmnist.audit import AuditLog, audit_path
from fmnist.config import RolloutSettings, Settings
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.prediction_log import open_prediction_log
from fmnist.monitoring.records import UNKNOWN
from fmnist.rollout.canary import decide_canary
from fmnist.rollout.readout import ABReadout, ArmReadout
from fmnist.rollout.state import read_state, state_path, write_state
from prediction_records import BASE, record

POLICY = RolloutSettings(mode="canary", share=0.05, canary_min_requests=100)


def arm(name: str, requests: int = 500, p95: float = 2.0, unknown: float = 0.01) -> ArmReadout:
    return ArmReadout(name, requests, 0, 0, None, None, None, p95, unknown)


def readout(challenger: ArmReadout, p_value: float | None = None, diff: float | None = None):
    return ABReadout(
        "e", 0.05, 0.02, (arm("champion"), challenger), diff, None, None, p_value, None, None
    )


def test_the_canary_advances_step_by_step_and_completes() -> None:
    decision = decide_canary(readout(arm("challenger")), POLICY)
    assert (decision.action, decision.share_to) == ("advance", 0.25)
    last = decide_canary(readout(arm("challenger")), POLICY.model_copy(update={"share": 1.0}))
    assert last.action == "complete"
    # The step after 50% would be all of the traffic: that is the promotion, not a step.
    half = decide_canary(readout(arm("challenger")), POLICY.model_copy(update={"share": 0.5}))
    assert (half.action, half.share_to) == ("complete", 1.0)


def test_the_last_step_still_needs_its_traffic() -> None:
    policy = POLICY.model_copy(update={"share": 0.5})
    decision = decide_canary(readout(arm("challenger", requests=20)), policy)
    assert decision.action == "hold"


def test_small_latency_differences_and_tiny_arms_are_not_breaches() -> None:
    slower = decide_canary(readout(arm("challenger", p95=4.0)), POLICY)  # 2x, but +2 ms
    assert slower.action == "advance"
    tiny = ArmReadout("champion", 5, 0, 0, None, None, None, 1.0, 0.0)
    few = ABReadout("e", 0.05, 0.02, (tiny, arm("challenger", unknown=0.5)), *[None] * 6)
    assert decide_canary(few, POLICY).action == "advance"  # 5 champion requests: no rates


def test_a_higher_error_rate_rolls_back() -> None:
    decision = decide_canary(readout(arm("challenger")), POLICY, {"challenger": 25})
    assert decision.action == "rollback" and "error rate 0.048" in decision.reasons[0]
    same = decide_canary(readout(arm("challenger")), POLICY, {"challenger": 2, "champion": 2})
    assert same.action == "advance"


def test_the_canary_holds_until_the_challenger_has_traffic() -> None:
    decision = decide_canary(readout(arm("challenger", requests=20)), POLICY)
    assert decision.action == "hold" and "20 challenger requests" in decision.reasons[0]


@pytest.mark.parametrize(
    ("challenger", "p_value", "diff", "reason"),
    [
        (arm("challenger", p95=12.0), None, None, "p95 latency"),
        (arm("challenger", unknown=0.2), None, None, "unknown rate"),
        (arm("challenger"), 0.001, -0.05, "accuracy -5.00%"),
    ],
)
def test_a_broken_guard_rolls_back(
    challenger: ArmReadout, p_value: float | None, diff: float | None, reason: str
) -> None:
    decision = decide_canary(readout(challenger, p_value, diff), POLICY)
    assert (decision.action, decision.share_to) == ("rollback", 0.0)
    assert reason in decision.reasons[0]
    better = decide_canary(readout(arm("challenger"), 0.001, +0.05), POLICY)
    assert better.action == "advance"  # significantly better is no breach


def test_the_command_applies_a_step_and_a_rollback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FMNIST_HOME", str(tmp_path))
    settings = Settings()
    path = state_path(tmp_path)
    write_state(path, POLICY)
    log = open_prediction_log(settings)
    for i in range(300):
        name = "champion" if i % 2 else "challenger"
        log.append([dataclasses.replace(record(i, BASE), arm=name, timestamp=_now())])
    log.close()
    runner = CliRunner()
    out = runner.invoke(cli.app, ["ab", "canary", "--apply", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["action"] == "advance"
    state = read_state(path, settings.rollout)
    assert state is not None and state.share == 0.25 and state.mode == "canary"
    # Now the challenger answers "unknown" far more often than the champion: roll back.
    log = open_prediction_log(settings)
    for i in range(300, 600):
        name = "champion" if i % 2 else "challenger"
        answer = UNKNOWN if name == "challenger" else record(i, BASE).predicted_class
        rec = dataclasses.replace(
            record(i, BASE), arm=name, predicted_class=answer, timestamp=_now()
        )
        log.append([rec])
    FeedbackStore(log)  # the store exists; no labels are needed for this guard
    log.close()
    out = runner.invoke(cli.app, ["ab", "canary", "--apply"])
    assert out.exit_code == 0 and "rollback" in out.stdout
    state = read_state(path, settings.rollout)
    assert state is not None and state.mode == "off"
    actions = [e["action"] for e in AuditLog(audit_path(tmp_path, None)).read()]
    assert actions == ["canary.advance", "canary.rollback"]
    stopped = runner.invoke(cli.app, ["ab", "canary"])
    assert stopped.exit_code == 2


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()
