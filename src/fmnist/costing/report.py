"""The whole cost result: inputs, capacity per variant, every platform, data path, training,
break-evens and levers, as one JSON-ready dict (``benchmarks/results/cost.json``).

The result keeps the keys the KPI table reads (``computed_at``, ``kpi_usd_per_prediction``,
``throughput.measured_at``/``machine`` and ``levels[].options[].total_usd_per_prediction``):
the levels are constant traffic (1, 10, 100, 1,000 requests/s) for the reference variant,
everything included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fmnist.costing import analysis
from fmnist.costing.datapath import DataPathAssumptions, data_path, prediction_event
from fmnist.costing.errors import CostInputError
from fmnist.costing.inputs import (
    capacity,
    http_overhead_ms,
    load_http,
    load_training,
    load_variants,
)
from fmnist.costing.prices import load_prices, read_json
from fmnist.costing.profile import TrafficProfile, flat
from fmnist.costing.serving import PLATFORMS, ServingAssumptions, all_platforms, pods_per_node
from fmnist.costing.training import TrainingAssumptions, training_costs

KPI_USD_PER_PREDICTION = 0.001
"""The KPI: a prediction costs less than this."""
LEVELS_RPS = (1.0, 10.0, 100.0, 1000.0)
"""Constant traffic levels of the KPI table."""
HIGH_TRAFFIC_FACTOR = 100
"""The second profile: the stated one times this (where the model's speed starts to count)."""
REFERENCE_VARIANT = "cnn-fp32"
"""The default model (``fmnist train``'s default preset) in FP32."""


@dataclass(frozen=True)
class CostInputs:
    """Where the inputs are and what to assume."""

    prices: Path
    http: Path
    variants: Path
    training: Path
    serve_only: Path | None
    profile: TrafficProfile
    reference_variant: str = REFERENCE_VARIANT
    serving: ServingAssumptions = field(default_factory=ServingAssumptions)
    datapath: DataPathAssumptions = field(default_factory=DataPathAssumptions)
    train: TrainingAssumptions = field(default_factory=TrainingAssumptions)


def shown(path: Path) -> str:
    """``path`` relative to the working directory when inside it (no machine paths)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _levels(
    cap: Any, p: Any, a: ServingAssumptions, dp: DataPathAssumptions, event: tuple[int, int]
) -> list[dict[str, Any]]:
    levels = []
    for rps in LEVELS_RPS:
        profile = flat(rps)
        shared = data_path(profile, p, dp, event)
        options = {}
        for name, day in all_platforms(profile, cap, p, a).items():
            total = (day["usd_per_day"] + shared["usd_per_day"]) / profile.per_day
            options[name] = {
                "units": day["peak_units"],
                "serving_usd_per_prediction": day["usd_per_day"] / profile.per_day,
                "total_usd_per_prediction": total,
                "total_usd_per_month": day["usd_per_month"] + shared["usd_per_month"],
                "meets_kpi": total < KPI_USD_PER_PREDICTION,
            }
        levels.append(
            {"rps": rps, "predictions_per_month": profile.per_day * 730 / 24, "options": options}
        )
    return levels


def compute(inputs: CostInputs) -> dict[str, Any]:
    """Read every input, run the model, return the result (raises :class:`CostInputError`)."""
    p = load_prices(inputs.prices)
    http = load_http(inputs.http)
    variants = load_variants(inputs.variants)
    runs = load_training(inputs.training)
    serve_only = None
    if inputs.serve_only is not None and inputs.serve_only.is_file():
        serve_only = read_json(inputs.serve_only, "benchmarks/bench_serve_only.py's result")
    if inputs.reference_variant not in variants.variants:
        raise CostInputError(
            f"{inputs.variants} lacks the reference variant {inputs.reference_variant!r}; "
            f"it has {sorted(variants.variants)}"
        )
    profile, a, dp = inputs.profile, inputs.serving, inputs.datapath
    event = prediction_event()
    shared = data_path(profile, p, dp, event)
    caps = {key: capacity(http, variants, key) for key in variants.variants}
    ref = caps[inputs.reference_variant]
    high = profile.scaled(profile.per_day * HIGH_TRAFFIC_FACTOR)
    profiles = {"profile": profile, "high": high}
    serving = {
        label: {key: all_platforms(prof, cap, p, a) for key, cap in caps.items()}
        for label, prof in profiles.items()
    }
    curve = analysis.curves(profile, ref, p, a, dp, event)
    training = training_costs(runs, p, inputs.train)
    result = {
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "fmnist cost report",
        "kpi_usd_per_prediction": KPI_USD_PER_PREDICTION,
        "inputs": {
            "prices": shown(inputs.prices),
            "http": shown(inputs.http),
            "variants": shown(inputs.variants),
            "training": shown(inputs.training),
            "serve_only": None
            if serve_only is None or inputs.serve_only is None
            else shown(inputs.serve_only),
        },
        "prices_about": p.about,
        "profile": {
            "per_day": profile.per_day,
            "peak_factor": profile.peak_factor,
            "peak_hour": profile.peak_hour,
            "mean_rps": profile.mean_rps,
            "peak_rps": profile.peak_rps,
            "high_per_day": high.per_day,
            "high_factor": HIGH_TRAFFIC_FACTOR,
        },
        "reference_variant": inputs.reference_variant,
        "throughput": {
            "measured_at": http.measured_at,
            "machine": http.machine,
            "setup": http.setup,
        },
        "http": asdict(http),
        "http_overhead_ms": http_overhead_ms(http, variants),
        "variants_measured": {
            "measured_at": variants.measured_at,
            "machine": variants.machine,
            "method": variants.method,
        },
        "variants": {
            key: asdict(v) | {"capacity": asdict(caps[key])} for key, v in variants.variants.items()
        },
        "assumptions": {
            "serving": a.as_dict() | {"gke_pods_per_node": pods_per_node(a)},
            "data_path": dp.as_dict(),
            "training": inputs.train.as_dict(),
        },
        "platforms": PLATFORMS,
        "serving": serving,
        "data_path": shared,
        "data_path_high": data_path(high, p, dp, event),
        "training": training,
        "curve": curve,
        "break_even": analysis.break_evens(curve),
        "levers": {
            "int8": analysis.int8_lever(profiles, http, variants, p, a),
            "batching": analysis.batching_lever(profiles, http, variants, ref, p, a),
            "min_instances": analysis.min_instances(profile, ref, p, a),
            "autoscaling_target": analysis.target_lever(profiles, ref, p, a),
            "spot_training": analysis.spot_lever(training),
            "image_size": analysis.image_lever(variants, serve_only, p),
        },
        "levels": _levels(ref, p, a, dp, event),
    }
    result["prices"] = p.used_entries()
    return result
