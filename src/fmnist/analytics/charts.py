"""The dashboard's charts as PNG bytes (matplotlib, Agg backend: no display needed).

Each function draws one tile of :class:`~fmnist.analytics.dashboard.DashboardData` and returns
the PNG, or None when the tile has nothing to show (no feedback, no drift check, no cost file).
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from fmnist.analytics.dashboard import CONFIDENCE, DashboardData, arm_key, wilson

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
SIZE = (8.0, 3.2)
ALPHA_LINE = 0.05
"""Where the drift chart draws its reference line (the default ``drift.alpha``)."""


def _figure(size: tuple[float, float] = SIZE) -> tuple[Figure, Axes]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    return figure, figure.add_subplot()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _num(times: list[datetime]) -> list[float]:
    """Datetimes as matplotlib's date numbers (days since its epoch)."""
    import matplotlib.dates as mdates

    return [float(mdates.date2num(t)) for t in times]  # type: ignore[no-untyped-call]


def _time_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    ax.grid(True, alpha=0.3)


def volume(data: DashboardData) -> bytes:
    """Predictions per hour, stacked by model version and rollout arm."""
    series: dict[str, dict[datetime, int]] = defaultdict(dict)
    for row in data.volume:
        series[arm_key(row["model_version"], row["rollout_arm"])][row["hour"]] = int(
            row["predictions"]
        )
    hours = sorted({h for s in series.values() for h in s})
    figure, ax = _figure()
    bottom = [0] * len(hours)
    for name, counts in sorted(series.items()):
        heights = [counts.get(h, 0) for h in hours]
        ax.bar(_num(hours), heights, width=50 / 1440, bottom=bottom, label=name)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_ylabel("predictions per hour")
    ax.set_title("Volume by model version and arm")
    ax.legend(fontsize="small", ncols=min(4, len(series)))
    _time_axis(ax)
    return _png(figure)


def _bucket_hours(hours: list[datetime]) -> int:
    """Hours per accuracy point: the smallest of 1, 2, 3, 4, 6, 12, 24, 168 giving at most 12
    points, so each holds enough feedback for a readable interval."""
    span = (max(hours) - min(hours)).total_seconds() / 3600 + 1 if hours else 1
    return next((b for b in (1, 2, 3, 4, 6, 12, 24) if span / b <= 12), 168)


def accuracy(data: DashboardData) -> bytes | None:
    """Live accuracy from labelled feedback per model version and arm over time, with its
    Wilson interval (a shaded band)."""
    if not data.feedback:
        return None
    step = timedelta(hours=_bucket_hours([r["hour"] for r in data.feedback]))
    start = min(r["hour"] for r in data.feedback)
    counts: dict[str, dict[datetime, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in data.feedback:
        bucket = start + step * ((row["hour"] - start) // step) + step / 2
        c = counts[arm_key(row["model_version"], row["rollout_arm"])][bucket]
        c[0] += int(row["correct"])
        c[1] += int(row["labelled"])
    figure, ax = _figure()
    for name, points in sorted(counts.items()):
        times = sorted(points)
        rates = [points[t][0] / points[t][1] for t in times]
        bands = [wilson(*points[t]) for t in times]
        (line,) = ax.plot(_num(times), rates, marker="o", label=name)
        lows, highs = [b[0] for b in bands], [b[1] for b in bands]
        ax.fill_between(_num(times), lows, highs, alpha=0.2, color=line.get_color())
    hours = int(step.total_seconds() // 3600)
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Live accuracy from feedback ({hours} h buckets, {CONFIDENCE:.0%} interval)")
    ax.legend(fontsize="small")
    _time_axis(ax)
    return _png(figure)


def drift(data: DashboardData) -> bytes | None:
    """The p-value of each drift test over the stored checks (log scale), the checks whose
    verdict was drift marked in red."""
    if not data.drift:
        return None
    figure, ax = _figure((8.0, 3.6))
    names = sorted({n for run in data.drift for n, t in run.tests.items() if t[1] is not None})
    times = [run.at for run in data.drift]
    for name in names:
        values = [run.tests.get(name, (None, None, False))[1] for run in data.drift]
        shown = [(t, max(v, 1e-12)) for t, v in zip(times, values, strict=True) if v is not None]
        if shown:
            ax.plot(_num([t for t, _ in shown]), [v for _, v in shown], marker=".", label=name)
    for run in data.drift:
        if run.detected:
            ax.axvline(_num([run.at])[0], color="red", alpha=0.25, linewidth=6)
    ax.axhline(ALPHA_LINE, color="black", linestyle="--", linewidth=1, label=f"{ALPHA_LINE}")
    ax.set_yscale("log")
    ax.set_ylabel("p-value")
    detected = sum(r.detected for r in data.drift)
    ax.set_title(f"Drift checks: {len(data.drift)}, drift detected in {detected} (red)")
    ax.legend(fontsize="x-small", ncols=3, loc="lower left")
    _time_axis(ax)
    return _png(figure)


def latency(data: DashboardData) -> bytes:
    """Latency p50 and p95 per hour."""
    figure, ax = _figure()
    hours = [r["hour"] for r in data.latency]
    for key, label in (("p50_ms", "p50"), ("p95_ms", "p95")):
        ax.plot(_num(hours), [float(r[key]) for r in data.latency], marker=".", label=label)
    ax.set_ylabel("latency (ms)")
    ax.set_ylim(bottom=0)
    ax.set_title("Latency per hour")
    ax.legend(fontsize="small")
    _time_axis(ax)
    return _png(figure)


def class_mix(data: DashboardData) -> bytes:
    """The predicted-class mix of each model version (shares, stacked)."""
    totals: dict[int, int] = defaultdict(int)
    shares: dict[str, dict[int, int]] = defaultdict(dict)
    for row in data.class_mix:
        totals[int(row["model_version"])] += int(row["predictions"])
        shares[str(row["predicted_class"])][int(row["model_version"])] = int(row["predictions"])
    versions = sorted(totals)
    figure, ax = _figure((8.0, 1.2 + 0.5 * len(versions)))
    labels = [f"v{v}" for v in versions]
    left = [0.0] * len(versions)
    colours = _colours(len(shares))
    for colour, (name, counts) in zip(colours, sorted(shares.items()), strict=True):
        widths = [counts.get(v, 0) / totals[v] for v in versions]
        ax.barh(labels, widths, left=left, label=name, color=colour)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of predictions")
    ax.set_title("Predicted-class mix by model version")
    ax.legend(fontsize="x-small", ncols=6, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    return _png(figure)


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(i) for i in range(n)]


def cost(data: DashboardData) -> bytes | None:
    """USD per 1,000 predictions of each deployment option at each traffic level (log scale)."""
    if data.cost is None:
        return None
    figure, ax = _figure()
    options = sorted(data.cost.usd_per_prediction)
    width = 0.8 / len(options)
    for i, option in enumerate(options):
        positions = [j + (i - (len(options) - 1) / 2) * width for j in range(len(data.cost.levels))]
        values = [v * 1000 for v in data.cost.usd_per_prediction[option]]
        ax.bar(positions, values, width=width, label=option)
    ax.set_xticks(range(len(data.cost.levels)), [f"{r:g} req/s" for r in data.cost.levels])
    ax.set_yscale("log")
    ax.set_ylabel("USD per 1,000 predictions")
    ax.set_title(f"Cost per prediction (benchmarks/cost.py, {data.cost.computed_at[:10]})")
    ax.legend(fontsize="x-small")
    ax.grid(True, axis="y", alpha=0.3)
    return _png(figure)


CHARTS: dict[str, Callable[[DashboardData], bytes | None]] = {
    "volume": volume,
    "accuracy": accuracy,
    "drift": drift,
    "latency": latency,
    "class_mix": class_mix,
    "cost": cost,
}
"""Each chart's file stem and drawing function, in page order."""
