"""The cost report's PNGs (matplotlib, Agg, 100 dpi); each states its machines and dates."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from fmnist.atomic import atomic_write_bytes
from fmnist.costing.render import DATA_PATH_TITLES, FIGURES

DPI = 100


def _footer(r: dict[str, Any]) -> str:
    v, h = r["variants_measured"], r["throughput"]
    return (
        f"fmnist cost report, {r['computed_at'][:10]}; list prices as published (inputs, not "
        f"current)\ninference measured {v['measured_at'][:10]} on {v['machine']}; HTTP measured "
        f"{h['measured_at'][:10]} on {h['machine']}"
    )


def _save(fig: Any, r: dict[str, Any], path: Path) -> None:
    fig.text(0.01, 0.005, _footer(r), fontsize=6, color="0.35", ha="left", va="bottom")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())


def cost_vs_traffic(r: dict[str, Any], ax: Any) -> None:
    """USD per 1,000 against predictions a day, one line per platform (log-log)."""
    curve = r["curve"]
    for name, values in curve["usd_per_1000"].items():
        ax.plot(curve["per_day"], values, label=r["platforms"][name], lw=1.4)
    ax.axvline(r["profile"]["per_day"], color="0.5", ls="--", lw=1)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="predictions a day (diurnal profile)",
        ylabel="USD per 1,000 predictions (serving + data path)",
        title=f"Cost against traffic, {r['reference_variant']}",
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)


def variants_plot(r: dict[str, Any], axes: Any) -> None:
    """Requests/s per vCPU and Cloud Run serving USD per 1,000 at the high profile."""
    keys = list(r["variants"])
    rps = [r["variants"][k]["capacity"]["rps_per_vcpu"] for k in keys]
    high = [r["serving"]["high"][k]["cloud_run"]["usd_per_1000"] for k in keys]
    axes[0].barh(keys, rps, color="tab:blue")
    axes[0].set(xlabel="requests/s per vCPU (HTTP path + model)", title="Throughput per variant")
    axes[1].barh(keys, high, color="tab:orange")
    axes[1].set(
        xlabel=f"Cloud Run USD per 1,000 at {r['profile']['high_per_day'] / 1e6:g} M/day",
        title="Serving cost per variant",
    )
    axes[1].set_yticklabels([])
    axes[1].locator_params(axis="x", nbins=4)


def breakdown(r: dict[str, Any], ax: Any) -> None:
    """A month at the profile: each platform's serving plus the shared data path, stacked."""
    ref = r["reference_variant"]
    serving = r["serving"]["profile"][ref]
    names = list(serving)
    left = [serving[n]["usd_per_month"] for n in names]
    ax.barh(names, left, label="serving", color="0.45")
    for key, title in DATA_PATH_TITLES.items():
        width = r["data_path"]["components_usd_per_month"][key]
        ax.barh(names, [width] * len(names), left=left, label=title.split(":")[0] + f": {key}")
        left = [x + width for x in left]
    ax.set(
        xlabel="USD a month",
        title=f"A month at {r['profile']['per_day'] / 1e6:g} M predictions/day, {ref}",
    )
    ax.legend(fontsize=6, loc="lower right")


def training_plot(r: dict[str, Any], ax: Any) -> None:
    """On-demand against spot USD per run on each model's cheapest instance type."""
    models = [t["model"] for t in r["training"]]
    od, spot = [], []
    for t in r["training"]:
        cost = t["instances"]["n2-standard-4"]
        od.append(cost["on_demand_usd"])
        spot.append(cost["spot_usd"] or 0.0)
    y = range(len(models))
    ax.barh([i + 0.2 for i in y], od, height=0.4, label="on demand", color="tab:red")
    ax.barh([i - 0.2 for i in y], spot, height=0.4, label="spot", color="tab:green")
    ax.set_yticks(list(y), models)
    ax.set(xlabel="USD per training run on n2-standard-4", title="Training cost per run")
    ax.legend(fontsize=7)


def write_plots(r: dict[str, Any], out: Path) -> list[Path]:
    """Write every PNG of :data:`fmnist.costing.render.FIGURES` into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(FIGURES)
    written = []
    specs: list[tuple[str, tuple[float, float], int]] = [
        (names[0], (8, 4.6), 1),
        (names[1], (8, 3.6), 2),
        (names[2], (8, 3.8), 1),
        (names[3], (7, 3.6), 1),
    ]
    for name, size, cols in specs:
        fig, axes = plt.subplots(1, cols, figsize=size)
        if name == names[0]:
            cost_vs_traffic(r, axes)
        elif name == names[1]:
            variants_plot(r, axes)
        elif name == names[2]:
            breakdown(r, axes)
        else:
            training_plot(r, axes)
        fig.tight_layout(rect=(0, 0.07, 1, 1))
        _save(fig, r, out / name)
        plt.close(fig)
        written.append(out / name)
    return written
