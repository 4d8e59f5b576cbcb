"""Every generated figure in the docs equals what its generator renders from the result files.

The sections are listed in ``benchmarks/figures.py`` (each with its page, markers, generator and
result files); ``python benchmarks/figures.py`` regenerates them. A section whose result file
is not in this checkout cannot be checked and is reported as an expected failure naming the
command that measures it. Sections that another test already checks (the package diagram, the
leaderboard page) are left to that test.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def _figures() -> ModuleType:
    if "_docs_figures" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "_docs_figures", REPO / "benchmarks" / "figures.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["_docs_figures"] = module
        spec.loader.exec_module(module)
    return sys.modules["_docs_figures"]


figures = _figures()
kpi_report = figures.load("kpi_report.py")


@pytest.mark.parametrize(
    "section", [s for s in figures.SECTIONS if s.checked_by is None], ids=lambda s: s.name
)
def test_generated_section_is_current(section: Any) -> None:
    missing = section.missing_inputs()
    if missing:
        names = ", ".join(figures.rel(p) for p in missing)
        pytest.xfail(f"no {names} in this checkout: measure with {section.command}")
    problem = figures.check(section)
    assert problem is None, problem


def test_every_marker_in_the_docs_belongs_to_a_listed_section() -> None:
    assert figures.unregistered_markers() == {}, (
        "a generated section that benchmarks/figures.py does not list: add a Section to "
        "SECTIONS (its generator's render function and result file)"
    )
    for s in figures.SECTIONS:
        if s.checked_by:
            assert (REPO / s.checked_by).is_file(), s.checked_by


def test_markers_are_found_in_both_spellings() -> None:
    text = "<!-- a: begin (x) -->\n<!-- a: end -->\n<!-- packages:begin -->\n<!-- b: end -->"
    assert figures.marker_names(text) == {"a", "packages"}


def test_kpis_without_result_files_say_not_measured() -> None:
    text = kpi_report.render({})
    assert text.startswith("0 of 9 KPIs measured, 0 met.")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 9
    for row in rows:
        measured = row.split(" | ")[3]
        assert measured.startswith(kpi_report.NOT_MEASURED), row
        assert not re.search(r"\d", measured), row  # no figure without a result file


def test_each_measured_kpi_names_its_file_date_and_machine() -> None:
    results = kpi_report.load_results()
    for kpi in kpi_report.kpis(results):
        if kpi.measured.startswith(kpi_report.NOT_MEASURED):
            continue
        assert "`" in kpi.provenance and re.search(r"\d{4}-\d\d-\d\d", kpi.provenance), kpi
        assert "cores" in kpi.provenance or "machine" in kpi.provenance, kpi
        assert kpi.verdict in ("met", "met (locally)", "**not met**"), kpi


def test_quick_start_is_the_readmes_with_links_into_docs() -> None:
    page = (REPO / "docs" / "quick-start.md").read_text(encoding="utf-8")
    assert "make demo" in page and "make test" in page
    assert "](docs/" not in page and "](lifecycle.md)" in page


def test_a_stale_section_is_reported_and_only_its_span_is_rewritten(tmp_path: Path) -> None:
    doc = tmp_path / "page.md"
    doc.write_text("head\n<!-- demo: begin (x) -->\nold 1.0\n<!-- demo: end -->\ntail\n")
    fresh = "<!-- demo: begin (x) -->\nnew 2.0\n<!-- demo: end -->"
    section = figures.Section("demo", doc, (), "python make_demo.py", lambda: fresh)
    problem = figures.check(section)
    assert problem is not None and "python benchmarks/figures.py demo" in problem
    assert section.updated(doc.read_text()) == f"head\n{fresh}\ntail\n"
    doc.write_text("no markers here\n")
    assert "lacks the markers" in (figures.check(section) or "")
