"""Break-even points and the optimisation levers, computed from the cost model.

A **break-even** is the lowest traffic of a log-spaced grid (predictions a day, the profile's
diurnal shape) from which an option costs no more than the baseline (Cloud Run, request-based,
min 1 instance) at every higher grid point; ``None`` when it never does on the grid. The
**levers** compare the cost at the stated profile with one thing changed, each change being a
measured figure (INT8 against FP32, batch sizes, server-side microbatching, image size) or a
setting (minimum instances, autoscaling target, spot training).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fmnist.costing.datapath import DataPathAssumptions, data_path
from fmnist.costing.inputs import Capacity, HttpPoint, Variants, capacity
from fmnist.costing.prices import Prices
from fmnist.costing.profile import TrafficProfile
from fmnist.costing.serving import (
    PLATFORMS,
    ServingAssumptions,
    all_platforms,
    cold_starts_per_day,
    platform_day,
)

BASELINE = "cloud_run"
GRID_DECADES = (3, 9)
GRID_STEPS_PER_DECADE = 20
TARGETS = (0.4, 0.6, 0.8)
"""Autoscaling targets compared (CPU share at which instances, nodes or pods are added)."""


def grid() -> list[float]:
    """Predictions a day, log-spaced from 10^3 to 10^9."""
    lo, hi = GRID_DECADES
    n = (hi - lo) * GRID_STEPS_PER_DECADE
    return [10 ** (lo + i / GRID_STEPS_PER_DECADE) for i in range(n + 1)]


def curves(
    profile: TrafficProfile,
    cap: Capacity,
    p: Prices,
    a: ServingAssumptions,
    dp: DataPathAssumptions,
    event: tuple[int, int],
) -> dict[str, Any]:
    """USD per 1,000 predictions (serving plus the data path) on the grid, per platform."""
    points = grid()
    out: dict[str, list[float]] = {name: [] for name in PLATFORMS}
    for per_day in points:
        scaled = profile.scaled(per_day)
        shared = data_path(scaled, p, dp, event)["usd_per_1000"]
        for name, day in all_platforms(scaled, cap, p, a).items():
            out[name].append(day["usd_per_1000"] + shared)
    return {"per_day": points, "usd_per_1000": out}


def first_from(points: list[float], ok: list[bool]) -> float | None:
    """The lowest point from which ``ok`` holds at every higher point (None: not at the end)."""
    if not ok or not ok[-1]:
        return None
    i = len(ok) - 1
    while i > 0 and ok[i - 1]:
        i -= 1
    return points[i]


def break_evens(curve: dict[str, Any]) -> dict[str, float | None]:
    """Per platform, the traffic from which it costs no more than :data:`BASELINE` (min 0
    instances is the min-instances lever, not a platform)."""
    base = curve["usd_per_1000"][BASELINE]
    return {
        name: first_from(
            curve["per_day"], [v <= b + 1e-15 for v, b in zip(values, base, strict=True)]
        )
        for name, values in curve["usd_per_1000"].items()
        if name not in (BASELINE, "cloud_run_min0")
    }


def min_instances(
    profile: TrafficProfile, cap: Capacity, p: Prices, a: ServingAssumptions
) -> dict[str, Any]:
    """Cloud Run with 1 minimum instance against 0: the extra cost, the cold starts it saves,
    and the traffic above which min 0 expects under one cold start a day."""
    one = platform_day("cloud_run", profile, cap, p, a)
    zero = platform_day("cloud_run_min0", profile, cap, p, a)
    points = grid()
    starts = [cold_starts_per_day(profile.scaled(t), a.cloud_run_idle_timeout_s) for t in points]
    return {
        "min1_usd_per_month": one["usd_per_month"],
        "min0_usd_per_month": zero["usd_per_month"],
        "extra_usd_per_month": one["usd_per_month"] - zero["usd_per_month"],
        "cold_starts_per_day_min0": cold_starts_per_day(profile, a.cloud_run_idle_timeout_s),
        "under_one_cold_start_a_day_from": first_from(points, [s < 1 for s in starts]),
    }


def _per_1000(
    platform: str,
    profiles: dict[str, TrafficProfile],
    cap: Capacity,
    p: Prices,
    a: ServingAssumptions,
) -> dict[str, float]:
    return {
        label: platform_day(platform, prof, cap, p, a)["usd_per_1000"]
        for label, prof in profiles.items()
    }


def int8_lever(
    profiles: dict[str, TrafficProfile],
    http: HttpPoint,
    variants: Variants,
    p: Prices,
    a: ServingAssumptions,
) -> list[dict[str, Any]]:
    """FP32 against INT8 for every model measured in both precisions (serving USD per 1,000
    on Cloud Run and GKE Standard at each of ``profiles``)."""
    rows = []
    for model in sorted({v.model for v in variants.variants.values()}):
        fp32, int8 = variants.variants.get(f"{model}-fp32"), variants.variants.get(f"{model}-int8")
        if fp32 is None or int8 is None:
            continue
        row: dict[str, Any] = {"model": model}
        for v in (fp32, int8):
            cap = capacity(http, variants, v.key)
            row[v.precision] = {
                "batch1_latency_ms": v.batch1_latency_ms,
                "images_per_s_256": v.images_per_s.get("256"),
                "rps_per_vcpu": cap.rps_per_vcpu,
                "cloud_run_usd_per_1000": _per_1000("cloud_run", profiles, cap, p, a),
                "gke_standard_usd_per_1000": _per_1000("gke_standard", profiles, cap, p, a),
            }
        row["throughput_gain"] = row["int8"]["images_per_s_256"] / row["fp32"]["images_per_s_256"]
        rows.append(row)
    return rows


def batching_lever(
    profiles: dict[str, TrafficProfile],
    http: HttpPoint,
    variants: Variants,
    cap: Capacity,
    p: Prices,
    a: ServingAssumptions,
) -> dict[str, Any]:
    """Images/s at batch 1, 32 and 256 per variant, and the server's microbatching on/off."""
    engine = {
        key: {**v.images_per_s, "gain_256_over_1": v.images_per_s["256"] / v.images_per_s["1"]}
        for key, v in variants.variants.items()
    }
    server: dict[str, Any] = {}
    for arm, cpu_ms in http.microbatching_cpu_ms.items():
        arm_cap = replace(cap, cpu_ms_per_request=cpu_ms, rps_per_vcpu=round(1000 / cpu_ms, 1))
        server[arm] = {
            "server_cpu_ms_per_request": cpu_ms,
            "rps_per_vcpu": arm_cap.rps_per_vcpu,
            "cloud_run_usd_per_1000": _per_1000("cloud_run", profiles, arm_cap, p, a),
        }
    return {"engine_images_per_s": engine, "server_microbatching": server}


def target_lever(
    profiles: dict[str, TrafficProfile], cap: Capacity, p: Prices, a: ServingAssumptions
) -> list[dict[str, Any]]:
    """Serving USD per 1,000 at each autoscaling target of :data:`TARGETS` (Cloud Run, Vertex
    AI, GKE Standard) at each of ``profiles``."""
    rows = []
    for target in TARGETS:
        at = replace(a, target_utilisation=target, gke_target_utilisation=target)
        row: dict[str, Any] = {"target": target}
        for name in ("cloud_run", "vertex_e2-standard-2", "gke_standard"):
            row[name] = _per_1000(name, profiles, cap, p, at)
        rows.append(row)
    return rows


def spot_lever(
    training: list[dict[str, Any]], instance: str = "n2-standard-4"
) -> list[dict[str, Any]]:
    """On-demand against spot per run on ``instance``."""
    rows = []
    for run in training:
        cost = run["instances"][instance]
        if cost["spot_usd"] is None:
            continue
        rows.append(
            {
                "model": run["model"],
                "instance": instance,
                "on_demand_usd": cost["on_demand_usd"],
                "spot_usd": cost["spot_usd"],
                "saving": 1 - cost["spot_usd"] / cost["on_demand_usd"],
            }
        )
    return rows


def image_lever(
    variants: Variants, serve_only: dict[str, Any] | None, p: Prices, versions_kept: int = 10
) -> dict[str, Any]:
    """The full environment against the serving-only one: Artifact Registry storage for
    ``versions_kept`` image versions and the measured cold start; the request payload."""
    out: dict[str, Any] = {"versions_kept": versions_kept, "payload_bytes": variants.payload_bytes}
    full = variants.site_packages_mb
    slim = None if serve_only is None else serve_only.get("size", {}).get("site_packages_mb")
    if full is None or slim is None:
        out["measured"] = False
        return out
    price = p["artifact_registry_storage_gib_month"]
    out |= {
        "measured": True,
        "full_site_packages_mb": full,
        "serving_site_packages_mb": float(slim),
        "full_usd_per_month": full * 1e6 / 1024**3 * versions_kept * price,
        "serving_usd_per_month": float(slim) * 1e6 / 1024**3 * versions_kept * price,
        "serving_cold_start_median_s": serve_only.get("cold_start_median_s")
        if serve_only
        else None,
        "serve_only_measured_at": serve_only.get("measured_at") if serve_only else None,
    }
    return out
