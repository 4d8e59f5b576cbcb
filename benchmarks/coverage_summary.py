"""The test coverage of the last ``make test``, kept as a small result file for the docs.

Run with ``.venv/bin/python benchmarks/coverage_summary.py`` after ``pytest --cov`` (``make
test`` does it). Reads the ``.coverage`` data file that run left, writes
``results/coverage.json`` (totals, per-package figures, the machine and the date; coverage.py's
own JSON report is megabytes of line numbers) and re-renders the pages it feeds (the KPI table).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import coverage

from fmnist.atomic import atomic_write_text
from fmnist.runtime_info import cores_usable, cpu_model, load_average

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULT = HERE / "results" / "coverage.json"


def package_of(path: str) -> str:
    """``fmnist.serving`` for ``.../src/fmnist/serving/app.py`` (``fmnist`` for top-level files)."""
    parts = Path(path).parts
    inner = parts[parts.index("fmnist") + 1 :] if "fmnist" in parts else parts[-1:]
    return "fmnist" if len(inner) <= 1 else f"fmnist.{inner[0]}"


def summarise(data_file: Path) -> dict[str, Any]:
    """Totals of ``data_file``, overall and per package (from coverage.py's JSON report)."""
    cov = coverage.Coverage(data_file=str(data_file), config_file=str(REPO / "pyproject.toml"))
    cov.load()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out))
        report = json.loads(out.read_text(encoding="utf-8"))
    keys = ("num_statements", "missing_lines", "num_branches", "num_partial_branches")
    packages: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(keys, 0))
    for path, entry in report["files"].items():
        for key in keys:
            packages[package_of(path)][key] += entry["summary"][key]
    totals = {key: report["totals"][key] for key in keys}
    return {
        "totals": {**totals, "percent_covered": round(report["totals"]["percent_covered"], 2)},
        "packages": {
            name: {**figures, "percent_covered": _percent(figures)}
            for name, figures in sorted(packages.items())
        },
    }


def _percent(f: dict[str, int]) -> float:
    """coverage.py's figure: covered lines and branches over all lines and branches."""
    total = f["num_statements"] + f["num_branches"]
    covered = (
        f["num_statements"] - f["missing_lines"] + f["num_branches"] - f["num_partial_branches"]
    )
    return round(100.0 * covered / total, 2) if total else 100.0


def main(argv: list[str] | None = None) -> int:
    """Summarise the coverage data, write the result file, refresh the pages it feeds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-file", type=Path, default=REPO / ".coverage")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    if not args.data_file.is_file():
        print(f"error: {args.data_file}: no coverage data (run make test first)", file=sys.stderr)
        return 2
    result = {
        # when the tests ran: the data file's time, not this summary's
        "measured_at": datetime.fromtimestamp(args.data_file.stat().st_mtime, UTC).isoformat(
            timespec="seconds"
        ),
        "machine": {"cpu": cpu_model(), "cores": cores_usable(), "load_average": load_average()},
        "command": "make test (pytest --cov, heavy, agnostic, serve_only and gcp tests excluded)",
        "coverage_py": coverage.__version__,
        **summarise(args.data_file),
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    t = result["totals"]
    print(
        f"coverage {t['percent_covered']:.2f}% ({t['num_statements']:,} statements) -> {args.out}"
    )
    if args.out.resolve() == RESULT.resolve():
        from figures import refresh_after  # the KPI table and every page fed by this file

        refresh_after(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
