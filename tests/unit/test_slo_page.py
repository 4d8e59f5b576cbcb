"""The SLO page's alert table is read from the Prometheus rules, and every alert has a runbook."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.unit.test_docs_figures import figures

slo_report = figures.load("slo_report.py")
REPO = Path(__file__).resolve().parents[2]


def test_every_alerting_rule_is_listed_with_a_runbook_that_exists() -> None:
    rules = yaml.safe_load(slo_report.RULES.read_text(encoding="utf-8"))
    names = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    rows = slo_report.alert_rows()
    assert {row["alert"] for row in rows} == names
    runbooks = (REPO / "docs" / "runbooks.md").read_text(encoding="utf-8")
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", runbooks, flags=re.MULTILINE)
    }
    for row in rows:
        page, _, anchor = row["runbook"].partition("#")
        assert page == "docs/runbooks.md", row
        assert anchor in anchors, f"{row['alert']}: no section #{anchor} in docs/runbooks.md"


def test_a_rule_without_annotations_still_renders(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: up\n"
        "      - alert: A\n        expr: up == 0\n",
        encoding="utf-8",
    )
    assert slo_report.alert_rows(rules) == [
        {"group": "g", "alert": "A", "severity": "", "for": "0s", "description": "", "runbook": ""}
    ]
