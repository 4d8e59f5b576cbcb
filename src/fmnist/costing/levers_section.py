"""The cost report's optimisation levers, with their measured or computed effect."""

from __future__ import annotations

from typing import Any

from fmnist.costing.formatting import markdown_table, usd, volume


def levers(r: dict[str, Any]) -> list[str]:
    """The optimisation levers with their measured or computed effect."""
    lv, p = r["levers"], r["profile"]
    lo, hi = volume(p["per_day"]), volume(p["high_per_day"])
    lines = [
        "**INT8 against FP32** (measured; serving USD per 1,000 on Cloud Run / GKE Standard):",
        "",
    ]
    rows = []
    for row in lv["int8"]:
        for prec in ("fp32", "int8"):
            x = row[prec]
            rows.append(
                [
                    f"`{row['model']}` {prec.upper()}",
                    f"{x['batch1_latency_ms']:.3f}",
                    f"{x['images_per_s_256']:,.0f}",
                    f"{x['rps_per_vcpu']:,.0f}",
                    f"{usd(x['cloud_run_usd_per_1000']['profile'])} / "
                    f"{usd(x['gke_standard_usd_per_1000']['profile'])}",
                    f"{usd(x['cloud_run_usd_per_1000']['high'])} / "
                    f"{usd(x['gke_standard_usd_per_1000']['high'])}",
                ]
            )
    lines += markdown_table(
        ["variant", "batch-1 ms", "images/s at 256", "requests/s per vCPU", lo, hi], rows
    )
    b = lv["batching"]
    lines += [
        "",
        "**Batching** (measured): images/s of ONNX Runtime on one thread, and the "
        "server's microbatching (32 connections, `results/http.json`):",
        "",
    ]
    lines += markdown_table(
        ["variant", "batch 1", "batch 32", "batch 256", "256 over 1"],
        [
            [
                f"`{k}`",
                f"{v['1']:,.0f}",
                f"{v['32']:,.0f}",
                f"{v['256']:,.0f}",
                f"x{v['gain_256_over_1']:.2f}",
            ]
            for k, v in b["engine_images_per_s"].items()
        ],
    )
    if b["server_microbatching"]:
        lines += [
            "",
            *markdown_table(
                [
                    "server microbatching",
                    "server CPU ms per request",
                    "requests/s per vCPU",
                    f"Cloud Run per 1,000 at {lo}",
                    f"at {hi}",
                ],
                [
                    [
                        arm,
                        f"{v['server_cpu_ms_per_request']:.3f}",
                        f"{v['rps_per_vcpu']:,.0f}",
                        usd(v["cloud_run_usd_per_1000"]["profile"]),
                        usd(v["cloud_run_usd_per_1000"]["high"]),
                    ]
                    for arm, v in b["server_microbatching"].items()
                ],
            ),
        ]
    m = lv["min_instances"]
    timeout = r["assumptions"]["serving"]["cloud_run_idle_timeout_s"]
    lines += [
        "",
        f"**Cloud Run minimum instances, 1 against 0** (at {lo}): min 1 costs "
        f"{usd(m['min1_usd_per_month'])} a month against {usd(m['min0_usd_per_month'])} "
        f"(+{usd(m['extra_usd_per_month'])}); with min 0 about "
        f"{m['cold_starts_per_day_min0']:.2g} cold starts a day are expected here (a request "
        f"after a quiet gap longer than the {timeout:g} s "
        f"idle timeout, Poisson arrivals), and fewer than one a day from "
        f"{volume(m['under_one_cold_start_a_day_from'])}: above that min 1 buys no latency.",
        "",
        "**Autoscaling target** (the CPU share at which instances, nodes or pods are added; "
        "serving USD per 1,000):",
        "",
    ]
    lines += markdown_table(
        [
            "target",
            f"Cloud Run {lo} / {hi}",
            f"Vertex AI e2 {lo} / {hi}",
            f"GKE Standard {lo} / {hi}",
        ],
        [
            [f"{t['target']:.0%}"]
            + [
                f"{usd(t[k]['profile'])} / {usd(t[k]['high'])}"
                for k in ("cloud_run", "vertex_e2-standard-2", "gke_standard")
            ]
            for t in lv["autoscaling_target"]
        ],
    )
    lines += ["", "**Spot against on-demand training** (USD per run):", ""]
    lines += markdown_table(
        ["model", "instance", "on demand", "spot", "saving"],
        [
            [
                f"`{s['model']}`",
                s["instance"],
                usd(s["on_demand_usd"]),
                usd(s["spot_usd"]),
                f"{s['saving']:.0%}",
            ]
            for s in lv["spot_training"]
        ],
    )
    img = lv["image_size"]
    pay = img.get("payload_bytes") or {}
    lines += [""]
    if img.get("measured"):
        lines.append(
            f"**Image size** (measured): the full environment's site-packages "
            f"{img['full_site_packages_mb']:,.0f} MB against the serving-only image's "
            f"{img['serving_site_packages_mb']:,.0f} MB (`results/serve_only.json`, measured "
            f"{img['serve_only_measured_at']}, cold start median "
            f"{img['serving_cold_start_median_s']} s): "
            f"{usd(img['full_usd_per_month'])} against {usd(img['serving_usd_per_month'])} a month "
            f"of Artifact Registry for {img['versions_kept']} kept versions; the smaller image "
            "also pulls faster on a cold start."
        )
    else:
        lines.append(
            "**Image size**: not measured (no `results/serve_only.json` or site-packages size)."
        )
    if pay:
        lines.append(
            f"A request's payload: {pay.get('png', 0):,.0f} bytes as a PNG against "
            f"{pay.get('json', 0):,.0f} bytes as a JSON pixel array (mean of 100 images); "
            "ingress is free on Google Cloud, so this changes latency and decode CPU, not the bill."
        )
    return lines
