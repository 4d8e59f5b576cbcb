"""The A/B readout over a real prediction log with feedback, and the ``fmnist ab`` commands."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist import cli
from fmnist.config import Settings
from fmnist.monitoring.feedback import FeedbackStore
from fmnist.monitoring.prediction_log import PredictionLog, open_prediction_log
from fmnist.monitoring.records import UNKNOWN
from fmnist.rollout.readout import ab_readout
from prediction_records import BASE, record


def fill(log: PredictionLog, *, n: int, wrong_every: dict[str, int]) -> None:
    """``n`` predictions per arm, each labelled; arm A gets every k-th one wrong."""
    feedback = FeedbackStore(log)
    i = 0
    for arm in ("champion", "challenger"):
        for j in range(n):
            base = record(i, BASE, predicted=i % 10)
            answer = UNKNOWN if j == 0 else base.predicted_class
            rec = dataclasses.replace(base, arm=arm, predicted_class=answer, latency_ms=1.0 + j % 5)
            log.append([rec])
            label = i % 10 if j % wrong_every[arm] else (i + 1) % 10
            feedback.record(rec.request_id, label)
            i += 1


def test_the_readout_per_arm_and_its_decision(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db", tmp_path / "segments")
    fill(log, n=1500, wrong_every={"champion": 5, "challenger": 50})  # ~80% against ~98%
    readout = ab_readout(log, FeedbackStore(log), experiment="exp")
    champion, challenger = readout.arms
    assert (champion.arm, challenger.arm) == ("champion", "challenger")
    assert champion.requests == challenger.requests == 1500
    assert champion.labelled == 1500 and champion.unknown_rate == pytest.approx(1 / 1500)
    # Every 5th wrong (plus the unknown answer at j=0, which is wrong and counted as such).
    assert champion.correct == 1500 - 300
    assert champion.accuracy_low < champion.accuracy < champion.accuracy_high
    assert champion.latency_p95_ms == 5.0
    assert readout.difference == pytest.approx(challenger.accuracy - champion.accuracy)
    assert readout.p_value_always_valid < 0.05 and readout.p_value_fixed < 0.05
    assert readout.decision == "ship"
    assert readout.to_dict()["arms"][1]["arm"] == "challenger"


def test_no_decision_without_labels_in_both_arms(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.db", tmp_path / "segments")
    log.append([dataclasses.replace(record(1, BASE), arm="champion")])
    readout = ab_readout(log, FeedbackStore(log))
    assert readout.decision is None and readout.arms[0].requests == 1
    assert readout.arms[1].requests == 0 and readout.arms[1].accuracy is None


def test_the_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_HOME", str(tmp_path))
    log = open_prediction_log(Settings())
    fill(log, n=200, wrong_every={"champion": 10, "challenger": 10})
    log.close()
    runner = CliRunner()
    out = runner.invoke(cli.app, ["ab", "report", "--json", "--experiment", "e1"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert payload["experiment"] == "e1" and payload["decision"] == "continue"
    assert [a["labelled"] for a in payload["arms"]] == [200, 200]
    table = runner.invoke(cli.app, ["ab", "report"])
    assert table.exit_code == 0 and "decision: continue" in table.stdout
    sim = runner.invoke(cli.app, ["ab", "simulate", "--json", "--experiments", "200"])
    assert sim.exit_code == 0, sim.output
    result = json.loads(sim.stdout)
    assert {"false_positive_rate", "power"} <= result.keys()
    shown = runner.invoke(cli.app, ["ab", "simulate", "--experiments", "200"])
    assert shown.exit_code == 0 and "always valid" in shown.stdout
    bad = runner.invoke(cli.app, ["ab", "simulate", "--alpha", "2"])
    assert bad.exit_code == 2
