"""A retrain asked for at the wrong time is recorded as skipped, with the reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist import cli
from fmnist.audit import AuditLog, audit_path
from fmnist.config import RolloutSettings
from fmnist.retraining.guard import RetrainState, retrain_lock, write_state
from fmnist.rollout.state import state_path
from fmnist.rollout.state import write_state as write_rollout


def retrain(home: Path) -> dict[str, object]:
    out = CliRunner().invoke(cli.app, ["retrain", "--reason", "test", "--json"])
    assert out.exit_code == 0, out.output
    outcome: dict[str, object] = json.loads(out.stdout)
    return outcome


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FMNIST_HOME", str(tmp_path))
    return tmp_path


def test_cooldown_rollout_in_progress_and_lock_each_skip(home: Path) -> None:
    write_state(home, RetrainState(started_at=datetime.now(UTC).isoformat(), trigger="drift"))
    cooled = retrain(home)
    assert cooled["status"] == "skipped" and "cooldown" in str(cooled["reason"])

    write_state(home, RetrainState())
    write_rollout(state_path(home), RolloutSettings(mode="shadow", challenger="7"))
    busy_rollout = retrain(home)
    assert busy_rollout["status"] == "skipped"
    assert "a candidate (7) is still in shadow" in str(busy_rollout["reason"])

    write_rollout(state_path(home), RolloutSettings(mode="off"))
    with retrain_lock(home):
        locked = retrain(home)
    assert locked["status"] == "skipped" and "another retrain is running" in str(locked["reason"])

    entries = AuditLog(audit_path(home, None)).read()
    assert [e["action"] for e in entries] == ["retrain.trigger", "retrain.skipped"] * 3
    assert entries[0]["details"]["kind"] == "manual" and entries[0]["actor"] == "fmnist retrain"
