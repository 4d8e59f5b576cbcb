"""Cost analysis: a thin wrapper over ``fmnist cost report`` that also re-renders the docs.

Run with ``.venv/bin/python benchmarks/cost.py [fmnist cost report options]``; the model lives
in ``src/fmnist/costing`` (its module docs state the method and every assumption). It writes
``results/cost.json``, ``results/cost-report.md`` and ``docs/images/cost/*.png``, then
re-renders the sections those feed: ``docs/cost.md`` (``cost_report``), the short summary in
``docs/gcp.md`` (``cost``) and the KPI table. ``--report-only`` re-renders from the last
result without computing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def render(result: dict[str, Any]) -> str:
    """The ``cost`` section of ``docs/gcp.md`` (a summary linking to ``docs/cost.md``)."""
    from fmnist.costing.render import gcp_summary

    return gcp_summary(result)


def main(argv: list[str] | None = None) -> int:
    """Run ``fmnist cost report`` from the repository root, then refresh the pages."""
    import os

    args = list(sys.argv[1:] if argv is None else argv)
    os.chdir(REPO)
    if "--report-only" not in args:
        from typer.main import get_command

        from fmnist.cli import app

        code = get_command(app).main(["cost", "report", *args], standalone_mode=False)
        if code:
            return int(code)
    sys.path.insert(0, str(HERE))
    import figures

    figures.refresh_after(HERE / "results" / "cost.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
