"""The Prometheus assets in monitoring/prometheus pass promtool's checks and rule unit tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS = Path(__file__).resolve().parents[3] / "monitoring" / "prometheus"
RULES = PROMETHEUS / "rules" / "fmnist-alerts.yml"
RULE_TESTS = PROMETHEUS / "tests" / "fmnist-alerts.test.yml"
CONFIG = PROMETHEUS / "prometheus.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    """The promtool binary; missing: skipped locally, a failure under CI=true."""
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool not installed (scripts/install-prometheus.sh; Debian package prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_rules_are_valid(promtool: str) -> None:
    output = _run(promtool, "check", "rules", str(RULES))
    assert "SUCCESS: 9 rules found" in output


def test_rule_unit_tests_pass(promtool: str) -> None:
    assert "SUCCESS" in _run(promtool, "test", "rules", str(RULE_TESTS))


def test_scrape_config_is_valid(promtool: str) -> None:
    output = _run(promtool, "check", "config", str(CONFIG))
    assert "is valid prometheus config file syntax" in output
    assert "SUCCESS: 9 rules found" in output  # the config loads the same rule file
