"""The closed loop end to end, on the real system: ``fmnist serve`` in its own process, HTTP on
loopback, a webhook receiver, the monitor's check, retraining, gates, shadow, canary and
promotion or rollback (:mod:`fmnist.demo.loop`, the same code ``fmnist demo loop`` runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist import cli
from fmnist.composition import build_services
from fmnist.config import load_settings
from fmnist.demo.loop import run_loop
from fmnist.platform.registry import CHAMPION

pytestmark = pytest.mark.network


@pytest.fixture(autouse=True)
def _data(fmnist_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_DATA_DIR", str(fmnist_data_dir))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def test_drift_retrains_and_promotes_a_better_candidate_with_no_failed_request(
    tmp_path: Path,
) -> None:
    result = run_loop(tmp_path, build_services, variant="good", say=lambda _: None)

    # 1. The control run changes nothing.
    assert result.control == {
        "requests": 300,
        "failed": 0,
        "drift_detected": False,
        "alerts": 0,
        "retrain": None,
        "served": 1,
    }
    # 2. Drift -> alert at the webhook -> retrain -> gates -> shadow -> canary -> promotion.
    assert result.drift_detected
    firing = [a for a in result.alerts if a.get("state") == "firing"]
    assert [a["alert"] for a in firing] == ["drift_detected"]
    assert result.retrain is not None and result.retrain["status"] == "candidate"
    checks = result.retrain["gate_checks"]
    assert checks["drift_window"] and checks["champion"] and checks["accuracy"]
    lineage = result.retrain["lineage"]
    assert lineage["base_snapshot"] and lineage["holdout_rows"] > 0
    assert lineage["log_window"]["labelled"] == lineage["added_rows"] + lineage["holdout_rows"]
    assert result.outcome == "promoted"
    actions = result.audit_actions
    expected = ["retrain.trigger", "retrain.snapshot", "retrain.gates", "rollout.change"]
    assert actions[:4] == expected
    assert "retrain.skipped" in actions  # drift persists: later triggers meet the rollout
    assert actions.index("rollout.canary") < actions.index("canary.advance")
    assert actions[-1] == "rollout.promote"
    # The new version is served (checked through the API) and the registry agrees.
    assert result.served_after == result.champion_before + 1
    settings = load_settings(tmp_path / "loop.yaml").settings
    assert build_services(settings).registry().get(CHAMPION).version == result.served_after
    # 3. Hot promotion under load: requests before and after the switch, none failed.
    probe = result.load_probe
    assert probe is not None and probe.failed == 0 and probe.requests > 50
    assert set(probe.versions) == {1, 2}


def test_a_candidate_trained_on_bad_labels_is_rolled_back_by_the_cli_demo(
    tmp_path: Path,
) -> None:
    out = CliRunner().invoke(
        cli.app, ["demo", "loop", "--home", str(tmp_path), "--variant", "bad", "--json"]
    )
    assert out.exit_code == 0, out.output
    assert "retrain candidate" in out.stdout and "controller: rollback" in out.stdout
    result = json.loads(out.stdout[out.stdout.index("\n{") :])
    assert result["retrain"]["status"] == "candidate"  # it passed gates on the bad labels
    assert result["outcome"] == "rolled back"
    assert result["served_after"] == result["champion_before"] == 1
    assert result["audit_actions"][-1] in ("shadow.rollback", "canary.rollback")
    settings = load_settings(tmp_path / "loop.yaml").settings
    assert build_services(settings).registry().get(CHAMPION).version == 1
