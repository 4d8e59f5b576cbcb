"""The leaderboard page: rows read back, merged, and rendered from the template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmnist.pipelines.leaderboard_page import (
    KEPT_MARKER,
    LeaderboardRow,
    kept_sections,
    merge_rows,
    read_rows,
    render_markdown,
    render_targets,
    write_outputs,
)

DOCS = Path(__file__).resolve().parents[3] / "docs"


@pytest.fixture
def rows() -> list[LeaderboardRow]:
    """The published leaderboard's rows."""
    return read_rows(DOCS / "benchmarks.json")


def test_the_published_page_is_the_rendering_of_the_published_rows(
    rows: list[LeaderboardRow],
) -> None:
    """``fmnist benchmark`` writes both files from the same rows, so they must agree (the
    sections of other tools after the kept marker aside)."""
    assert rows
    page = DOCS / "benchmarks.md"
    kept = kept_sections(page)
    assert kept.startswith(KEPT_MARKER)
    assert render_markdown(rows, kept) == page.read_text(encoding="utf-8")


def test_rewriting_the_leaderboard_keeps_the_sections_of_other_tools(
    rows: list[LeaderboardRow], tmp_path: Path
) -> None:
    page = tmp_path / "benchmarks.md"
    kept = (
        f"{KEPT_MARKER}\n\n## Pareto\n\n<!-- pareto: begin -->\nkept text\n<!-- pareto: end -->\n"
    )
    page.write_text("# Old leaderboard\n\nold rows\n\n" + kept, encoding="utf-8")
    write_outputs(tmp_path, rows[:2])
    text = page.read_text(encoding="utf-8")
    assert "old rows" not in text and text.endswith(kept)
    assert text.startswith(render_markdown(rows[:2]).rstrip())
    assert kept_sections(tmp_path / "absent.md") == ""


def test_rows_without_classical_models_say_the_baselines_were_not_run(
    rows: list[LeaderboardRow],
) -> None:
    text = render_markdown([r for r in rows if r.kind != "classical"])
    assert "Not run this time (`--models baselines`)" in text and "is 89.7% (SVC" in text
    assert "–" in render_markdown([])  # no snapshot: an en dash, not an error


def test_targets_name_the_best_row_or_say_not_measured(rows: list[LeaderboardRow]) -> None:
    lines = render_targets([r for r in rows if r.model != "vit"])
    assert lines[:2] == ["| target | minimum | best measured | met |", "|---|---|---|---|"]
    assert lines[-1] == "| vit | 92.0% | not measured | – |"
    single = max((r for r in rows if r.kind != "ensemble"), key=lambda r: r.test_accuracy)
    assert f"| best single model | 94.5% | {single.model} {single.test_accuracy:.2%}" in lines[2]


def test_new_rows_replace_old_ones_and_all_are_sorted(rows: list[LeaderboardRow]) -> None:
    better = rows[-1].model_copy(update={"test_accuracy": 0.999})
    merged = merge_rows(rows, [better])
    assert merged[0] == better and len(merged) == len(rows)
    assert [r.test_accuracy for r in merged] == sorted(
        (r.test_accuracy for r in merged), reverse=True
    )


def test_outputs_are_written_and_read_back(rows: list[LeaderboardRow], tmp_path: Path) -> None:
    paths = write_outputs(tmp_path, rows)
    assert read_rows(paths["json"]) == rows
    assert json.loads(paths["json"].read_text())[0]["model"] == rows[0].model
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_rows(tmp_path / "absent.json") == []
