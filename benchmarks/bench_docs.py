"""Documentation measured: docstring coverage of ``src/fmnist`` and the pages of the site.

Run with ``.venv/bin/python benchmarks/bench_docs.py`` (about a second). Docstring coverage is
interrogate's, with the settings of ``[tool.interrogate]`` in ``pyproject.toml`` (the same as
``make lint``); pages are the Markdown files under ``docs/``. Writes
``benchmarks/results/docs.json`` (with the date and the machine) and re-renders the KPI table of
``docs/business.md`` (``kpi_report.py``).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from interrogate import config as interrogate_config  # type: ignore[import-untyped]
from interrogate import coverage as interrogate_coverage

from fmnist.runtime_info import benchmark_machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "docs.json"
REPORT_ONLY = ("fail_under", "verbose", "color", "generate_badge", "badge_format", "badge_style")


def docstring_coverage(package: Path = REPO / "src" / "fmnist") -> dict[str, Any]:
    """interrogate's coverage of ``package`` with the project's settings."""
    options = interrogate_config.parse_pyproject_toml(str(REPO / "pyproject.toml"))
    conf = interrogate_config.InterrogateConfig(
        **{k.replace("-", "_"): v for k, v in options.items() if k not in REPORT_ONLY}
    )
    result = interrogate_coverage.InterrogateCoverage(paths=[str(package)], conf=conf)
    found = result.get_coverage()
    return {
        "tool": "interrogate",
        "covered": found.covered,
        "total": found.total,
        "percent": round(found.perc_covered, 2),
        "fail_under": options.get("fail_under"),
    }


def measure() -> dict[str, Any]:
    """The JSON-ready results."""
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": benchmark_machine("interrogate"),
        "docstrings": docstring_coverage(),
        "pages": sum(1 for _ in (REPO / "docs").rglob("*.md")),
    }


def main() -> int:
    """Measure, write the results and re-render the pages they feed."""
    results = measure()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    d = results["docstrings"]
    print(f"docstring coverage {d['percent']}% ({d['covered']} of {d['total']})")
    print(f"{results['pages']} pages under docs/")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from figures import refresh_after  # the KPI table and the README's

    refresh_after(RESULTS)
    print(f"wrote {RESULTS} and the pages it feeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
