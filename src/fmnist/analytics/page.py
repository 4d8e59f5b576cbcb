"""The dashboard page: ``summary.json``, one PNG per chart, ``dashboard.md`` and ``index.html``.

Every file is written atomically (a reader sees the old file or the new one, never half), the
page last, so a page never names a chart that is not there yet.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fmnist.analytics.charts import CHARTS
from fmnist.analytics.dashboard import DashboardData, DashboardSummary, summarise
from fmnist.atomic import atomic_write_bytes, atomic_write_text

SUMMARY_JSON = "summary.json"
PAGE_MD = "dashboard.md"
PAGE_HTML = "index.html"
TITLES = {
    "volume": "Volume",
    "accuracy": "Live accuracy",
    "drift": "Drift history",
    "latency": "Latency",
    "class_mix": "Predicted-class mix",
    "cost": "Cost per prediction",
}


@dataclass(frozen=True)
class DashboardFiles:
    """What :func:`write_dashboard` wrote."""

    summary: DashboardSummary
    folder: Path
    charts: dict[str, Path]
    """Chart name -> its PNG (charts with nothing to show are absent)."""
    missing: dict[str, str]
    """Chart name -> why it was not drawn."""


WHY_MISSING = {
    "accuracy": "no labelled feedback in the period",
    "drift": "no stored drift check in the period (fmnist monitor drift writes them)",
    "cost": "no cost result given (--cost benchmarks/results/cost.json)",
}


def _pct(value: float) -> str:
    return f"{value:.1%}"


def table_rows(summary: DashboardSummary) -> list[tuple[str, str]]:
    """The headline figures as (name, value) rows."""
    rows = [
        ("period", f"{summary.first[:16]} to {summary.last[:16]} UTC"),
        ("predictions", f"{summary.predictions:,}"),
        (
            "by version and arm",
            ", ".join(f"{k}: {v:,}" for k, v in summary.by_version_arm.items()),
        ),
        ("'unknown' answers", _pct(summary.unknown_rate)),
        ("latency p50 / p95", f"{summary.latency_p50_ms:.2f} / {summary.latency_p95_ms:.2f} ms"),
        ("labelled feedback", f"{summary.labelled:,}"),
    ]
    rows += [
        (
            f"live accuracy {a.arm} (v{a.model_version})",
            f"{_pct(a.accuracy)} [{_pct(a.low)}, {_pct(a.high)}], n = {a.labelled:,}",
        )
        for a in summary.accuracy
    ]
    d = summary.drift
    if d.checks:
        last = "drift" if d.last_detected else "no drift"
        rows.append(("drift checks", f"{d.checks}, drift detected in {d.detected}; last: {last}"))
    if summary.cost is not None:
        c = summary.cost
        rows.append(
            (
                "cost per prediction",
                f"${c.usd_per_prediction * 1e6:.2f} per million on {c.option} at "
                f"{c.level_rps:g} req/s (observed {c.observed_rps:.3g} req/s); "
                f"the period: ${c.usd_period:.4f}",
            )
        )
    return rows


def markdown(files: DashboardFiles, *, image_prefix: str = "") -> str:
    """The page in Markdown; images are referenced as ``image_prefix + file name``."""
    s = files.summary
    lines = [
        "# fmnist analytics dashboard",
        "",
        f"Generated {s.generated_at} by `fmnist analytics dashboard` from {s.analytics}"
        + (f" (since {s.since})" if s.since else "")
        + ".",
        "",
        "| figure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in table_rows(s)),
    ]
    for name, title in TITLES.items():
        lines += ["", f"## {title}", ""]
        if name in files.charts:
            lines.append(f"![{title}]({image_prefix}{files.charts[name].name})")
        else:
            lines.append(f"Not drawn: {files.missing.get(name, 'no data')}.")
    return "\n".join(lines) + "\n"


def page_html(files: DashboardFiles) -> str:
    """The page as one self-contained HTML file (the PNGs beside it)."""
    s = files.summary
    e = html.escape
    rows = "".join(f"<tr><th>{e(n)}</th><td>{e(v)}</td></tr>" for n, v in table_rows(s))
    tiles = []
    for name, title in TITLES.items():
        body = (
            f'<img src="{e(files.charts[name].name)}" alt="{e(title)}">'
            if name in files.charts
            else f"<p>Not drawn: {e(files.missing.get(name, 'no data'))}.</p>"
        )
        tiles.append(f"<section><h2>{e(title)}</h2>{body}</section>")
    since = f" (since {e(s.since)})" if s.since else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>fmnist analytics dashboard</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}"
        "table{border-collapse:collapse}th,td{padding:.25rem .75rem;border-bottom:1px solid #ddd;"
        "text-align:left}img{max-width:100%}</style></head><body>"
        f"<h1>fmnist analytics dashboard</h1><p>Generated {e(s.generated_at)} by "
        f"<code>fmnist analytics dashboard</code> from {e(s.analytics)}{since}.</p>"
        f"<table>{rows}</table>{''.join(tiles)}</body></html>\n"
    )


def write_dashboard(
    data: DashboardData, out: Path, *, now: datetime | None = None
) -> DashboardFiles:
    """Draw every chart of ``data`` into ``out``, then the summary and the page."""
    out.mkdir(parents=True, exist_ok=True)
    charts: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for name, draw in CHARTS.items():
        png = draw(data)
        path = out / f"{name}.png"
        if png is None:
            missing[name] = WHY_MISSING.get(name, "no data")
            path.unlink(missing_ok=True)  # a chart of an earlier run would mislead
            continue
        atomic_write_bytes(path, png)
        charts[name] = path
    summary = summarise(data, now=now)
    files = DashboardFiles(summary, out, charts, missing)
    atomic_write_text(out / SUMMARY_JSON, summary.model_dump_json(indent=2) + "\n")
    atomic_write_text(out / PAGE_MD, markdown(files))
    atomic_write_text(out / PAGE_HTML, page_html(files))
    return files
