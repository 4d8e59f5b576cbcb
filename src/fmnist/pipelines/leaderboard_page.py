"""The leaderboard's rows and its published files: ``benchmarks.json``, ``.md`` and the chart.

:class:`LeaderboardRow` is what :mod:`fmnist.pipelines.leaderboard` measures per model. The page
is the template ``leaderboard.md.j2`` of :mod:`fmnist.reporting`, rendered from the rows; the
chart is drawn with Matplotlib. Every file is written atomically.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from fmnist.atomic import atomic_write_bytes, atomic_write_text
from fmnist.reporting.templates import render

RESULT_FILES = ("benchmarks.json", "benchmarks.md", "images/benchmarks.png")

TARGETS: tuple[tuple[str, str, float], ...] = (
    ("best single model", "single", 0.945),
    ("ensemble", "ensemble", 0.955),
    ("vit", "vit", 0.92),
)
"""(what, which rows, minimum test accuracy): the model-zoo targets of the product issue."""


class LeaderboardRow(BaseModel):
    """One model on the leaderboard (``None`` where a measure does not apply)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str
    kind: str
    """``neural``, ``ensemble`` or ``classical``."""
    architecture: str
    params: int | None
    test_accuracy: float
    macro_f1: float
    ece: float | None
    train_seconds: float
    precision: str
    threads: int | None
    n_train: int | None
    epochs: int | None
    onnx_mb: float | None
    latency_ms_b1: float | None
    throughput_b256: float | None
    command: str
    run_id: str
    config_hash: str
    snapshot_id: str
    registered_model: str | None
    version: int | None
    champion: bool
    gates_passed: bool | None
    reused: bool
    measured_at: str
    machine: dict[str, str]
    members: list[dict[str, Any]] | None = None
    notes: str = ""


def read_rows(path: Path) -> list[LeaderboardRow]:
    """Rows of an existing ``benchmarks.json`` (none if absent or of another format)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [LeaderboardRow.model_validate(r) for r in data]
    except (OSError, ValueError, TypeError):
        return []


def merge_rows(
    previous: Sequence[LeaderboardRow], new: Sequence[LeaderboardRow]
) -> list[LeaderboardRow]:
    """``new`` rows replace previous rows of the same model; sorted by test accuracy."""
    fresh = {r.model for r in new}
    kept = [r for r in previous if r.model not in fresh]
    return sorted([*kept, *new], key=lambda r: (-r.test_accuracy, r.model))


@dataclass(frozen=True)
class TargetStatus:
    """One target of :data:`TARGETS` and the best row it concerns (``None``: not measured)."""

    what: str
    minimum: float
    best: LeaderboardRow | None

    @property
    def shortfall(self) -> float | None:
        """Test-accuracy points missing to the minimum; ``None`` when met or not measured."""
        if self.best is None or self.best.test_accuracy >= self.minimum:
            return None
        return (self.minimum - self.best.test_accuracy) * 100


def target_status(rows: Sequence[LeaderboardRow]) -> list[TargetStatus]:
    """Each target of :data:`TARGETS` with the best row that it concerns."""
    out = []
    for what, which, minimum in TARGETS:
        if which == "single":
            candidates = [r for r in rows if r.kind != "ensemble"]
        else:
            candidates = [r for r in rows if r.model == which]
        best = max(candidates, key=lambda r: r.test_accuracy) if candidates else None
        out.append(TargetStatus(what, minimum, best))
    return out


def render_targets(rows: Sequence[LeaderboardRow]) -> list[str]:
    """Markdown lines: each target of :data:`TARGETS` against the best row that it concerns."""
    return render("leaderboard_targets.md.j2", targets=target_status(rows)).splitlines()


def _best(rows: Sequence[LeaderboardRow]) -> LeaderboardRow | None:
    return max(rows, key=lambda r: r.test_accuracy) if rows else None


def render_markdown(rows: Sequence[LeaderboardRow]) -> str:
    """The leaderboard page: table, targets, classical comparison, commands, chart."""
    from fmnist.training.baselines import (
        PUBLISHED_BEST_CLASSICAL,
        PUBLISHED_BEST_CLASSICAL_ACCURACY,
    )

    return render(
        "leaderboard.md.j2",
        rows=rows,
        machine=rows[0].machine if rows else {},
        snapshots=sorted({r.snapshot_id for r in rows}),
        targets=target_status(rows),
        classical=_best([r for r in rows if r.kind == "classical"]),
        neural=_best([r for r in rows if r.kind != "classical"]),
        published_model=PUBLISHED_BEST_CLASSICAL,
        published_accuracy=PUBLISHED_BEST_CLASSICAL_ACCURACY,
    )


def render_chart(rows: Sequence[LeaderboardRow]) -> bytes:
    """A PNG bar chart: test accuracy per model, labelled with the training time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fmnist.training.baselines import PUBLISHED_BEST_CLASSICAL_ACCURACY

    ordered = sorted(rows, key=lambda r: r.test_accuracy)
    colors = {"neural": "#3b6ea5", "ensemble": "#7a4fa0", "classical": "#9a9a9a"}
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(ordered), 3) + 1.2), dpi=120)
    try:
        names = [r.model for r in ordered]
        values = [r.test_accuracy * 100 for r in ordered]
        ax.barh(names, values, color=[colors.get(r.kind, "#555555") for r in ordered])
        low = min([*values, PUBLISHED_BEST_CLASSICAL_ACCURACY * 100]) - 2
        ax.set_xlim(max(low, 0), 100)
        for y, r in enumerate(ordered):
            ax.text(
                r.test_accuracy * 100 + 0.1,
                y,
                f"{r.test_accuracy:.2%} · {r.train_seconds:,.0f} s",
                va="center",
                fontsize=8,
            )
        ax.axvline(
            PUBLISHED_BEST_CLASSICAL_ACCURACY * 100,
            color="#c0392b",
            linestyle="--",
            linewidth=1,
            label="published best classical (SVC, 89.7%)",
        )
        ax.set_xlabel("test accuracy (%) · label: training wall time")
        ax.set_title("Fashion-MNIST leaderboard")
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
    finally:
        plt.close(fig)
    return buffer.getvalue()


def write_outputs(out: Path, rows: Sequence[LeaderboardRow]) -> dict[str, Path]:
    """Write ``benchmarks.json``, ``benchmarks.md`` and ``images/benchmarks.png`` atomically."""
    paths = {
        "json": out / "benchmarks.json",
        "markdown": out / "benchmarks.md",
        "chart": out / "images" / "benchmarks.png",
    }
    payload = [r.model_dump(mode="json") for r in rows]
    atomic_write_bytes(paths["chart"], render_chart(rows))
    atomic_write_text(paths["markdown"], render_markdown(rows))
    atomic_write_text(paths["json"], json.dumps(payload, indent=2) + "\n")
    return paths
