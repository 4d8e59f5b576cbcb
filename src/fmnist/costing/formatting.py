"""Formatting shared by the cost report's sections: dollars, volumes, provenance, tables."""

from __future__ import annotations

import math
from typing import Any


def usd(value: float | None) -> str:
    """Dollars with two significant digits below a dollar (``$0.0021``), ``–`` for None."""
    if value is None:
        return "–"
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    if value < 1e-9:
        return "$0"
    digits = 1 - math.floor(math.log10(value))
    return f"${value:.{digits}f}"


def volume(per_day: float | None) -> str:
    """Predictions a day, e.g. ``1 M/day`` or ``56 k/day``; ``never`` for None."""
    if per_day is None:
        return "never (on the grid up to 1,000 M/day)"
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_day >= scale:
            return f"{per_day / scale:.3g} {unit}/day"
    return f"{per_day:.3g}/day"


def provenance(r: dict[str, Any]) -> str:
    """Where every number of the report comes from, with machines and dates."""
    v, h = r["variants_measured"], r["throughput"]
    return (
        f"Computed {r['computed_at']} by `{r['command']}` from: per-variant inference measured "
        f"{v['measured_at']} on {v['machine']} (`{r['inputs']['variants']}`, "
        f"`benchmarks/bench_variants.py`); the HTTP path measured {h['measured_at']} on "
        f"{h['machine']} (`{r['inputs']['http']}`, `benchmarks/bench_http.py`); training "
        f"times of `{r['inputs']['training']}` (`fmnist benchmark`); the list prices of "
        f"`{r['inputs']['prices']}`, each dated with its source below. **The prices are inputs "
        "to update, not current prices.**"
    )


def markdown_table(head: list[str], rows: list[list[str]], right: int = 1) -> list[str]:
    """A Markdown table: the first ``right`` columns left-aligned, the others right-aligned."""
    align = ["---"] * right + ["---:"] * (len(head) - right)
    return [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
