"""Markdown of a cost result: the report (``docs/cost.md``'s generated section, ``cost.md``
next to the PNGs) and the short summary in ``docs/gcp.md``."""

from __future__ import annotations

from typing import Any

from fmnist.costing.formatting import markdown_table, provenance, usd, volume
from fmnist.costing.levers_section import levers

BEGIN, END = "<!-- cost_report: begin -->", "<!-- cost_report: end -->"
GCP_BEGIN, GCP_END = "<!-- cost: begin -->", "<!-- cost: end -->"
FIGURES = {
    "cost_vs_traffic.png": "Cost per 1,000 predictions against traffic, per platform",
    "variants.png": "Requests/s per vCPU and serving cost per variant",
    "monthly_breakdown.png": "A month at the stated profile, serving and data path",
    "training.png": "Training cost per run, on demand and spot",
}
"""PNG name -> its caption (written by :mod:`fmnist.costing.plots`)."""
DATA_PATH_TITLES = {
    "pubsub": "Pub/Sub: the prediction event, published and delivered",
    "bigquery_ingestion": "BigQuery: row ingestion (Storage Write API)",
    "bigquery_storage": "BigQuery: row storage over the retention",
    "cloud_logging": "Cloud Logging: request and access log",
    "cloud_storage": "Cloud Storage: lake and model artifacts (fixed)",
}


def capacity_table(r: dict[str, Any]) -> list[str]:
    """Per variant: inference figures and the requests/s one vCPU answers."""
    rows = []
    for key, v in r["variants"].items():
        ips, cap = v["images_per_s"], v["capacity"]
        rows.append(
            [
                f"`{key}`",
                f"{v['parameters']:,}",
                f"{v['batch1_latency_ms']:.3f}",
                " / ".join(f"{ips[b]:,.0f}" for b in ("1", "32", "256")),
                f"{cap['cpu_ms_per_request']:.3f}",
                f"{cap['rps_per_vcpu']:,.0f}",
            ]
        )
    head = [
        "variant",
        "parameters",
        "batch-1 ms",
        "images/s at batch 1 / 32 / 256",
        "CPU ms per HTTP request",
        "requests/s per vCPU",
    ]
    return markdown_table(head, rows)


def serving_table(r: dict[str, Any], label: str) -> list[str]:
    """Serving USD per 1,000 predictions, platform x variant, at one profile."""
    serving = r["serving"][label]
    keys = list(serving)
    rows = [
        [title] + [usd(serving[k][name]["usd_per_1000"]) for k in keys]
        for name, title in r["platforms"].items()
    ]
    units = [
        "units at the peak hour (first platform / GKE Standard nodes)",
        *(
            f"{serving[k]['cloud_run']['peak_units']} / {serving[k]['gke_standard']['peak_units']}"
            for k in keys
        ),
    ]
    return markdown_table(["platform", *(f"`{k}`" for k in keys)], [*rows, units])


def data_path_table(r: dict[str, Any]) -> list[str]:
    """The data path at the profile and at the high profile."""
    d, hi = r["data_path"], r["data_path_high"]
    rows = [
        [
            title,
            usd(d["components_usd_per_month"][k]),
            usd(hi["components_usd_per_month"][k]),
        ]
        for k, title in DATA_PATH_TITLES.items()
    ]
    rows.append(
        [
            "**total** (USD per 1,000 predictions)",
            f"{usd(d['usd_per_month'])} ({usd(d['usd_per_1000'])})",
            f"{usd(hi['usd_per_month'])} ({usd(hi['usd_per_1000'])})",
        ]
    )
    rows.append(
        [
            "for comparison: legacy streaming inserts instead of the Storage Write API",
            usd(d["legacy_streaming_insert_usd_per_month"]),
            usd(hi["legacy_streaming_insert_usd_per_month"]),
        ]
    )
    p = r["profile"]
    return markdown_table(
        ["component (USD a month)", volume(p["per_day"]), volume(p["high_per_day"])], rows
    )


def training_table(r: dict[str, Any]) -> list[str]:
    """USD per training run, per model and instance, on demand / spot."""
    instances = list(r["training"][0]["instances"]) if r["training"] else []
    rows = []
    for run in r["training"]:
        threads = f"{run['local_threads']} threads" if run["local_threads"] else "members"
        cells = [
            f"{usd(c['on_demand_usd'])} / {usd(c['spot_usd'])} ({c['hours']:.2f} h)"
            for c in run["instances"].values()
        ]
        rows.append(
            [
                f"`{run['model']}`",
                f"{run['local_seconds']:,.0f} s ({threads})",
                f"{run['vcpu_seconds'] / 3600:.2f}",
                *cells,
            ]
        )
    head = ["model", "measured locally", "vCPU-hours", *instances]
    return markdown_table(head, rows)


def break_even_table(r: dict[str, Any]) -> list[str]:
    """Per platform: from which traffic it beats Cloud Run, and its cost at the profile."""
    label = "profile"
    ref = r["reference_variant"]
    rows = []
    for name, per_day in r["break_even"].items():
        at = r["serving"][label][ref][name]["usd_per_1000"]
        rows.append([r["platforms"][name], volume(per_day), usd(at)])
    base = r["serving"][label][ref]["cloud_run"]["usd_per_1000"]
    rows.append([r["platforms"]["cloud_run"] + " (the baseline)", "–", usd(base)])
    return markdown_table(
        [
            "platform",
            "no dearer than Cloud Run from",
            f"serving per 1,000 at {volume(r['profile']['per_day'])}",
        ],
        rows,
    )


def assumptions(r: dict[str, Any]) -> list[str]:
    """The stated assumptions, from the result."""
    s, d, t, p = (
        r["assumptions"]["serving"],
        r["assumptions"]["data_path"],
        r["assumptions"]["training"],
        r["profile"],
    )
    return [
        f"- Traffic: {p['per_day']:,.0f} predictions a day ({p['mean_rps']:.1f} requests/s on "
        f"average), a sinusoidal day peaking at {p['peak_hour']}:00 at {p['peak_factor']:g}x the "
        f"mean ({p['peak_rps']:.1f} requests/s); the second profile is {p['high_factor']}x that.",
        f"- Cloud Run: {s['cloud_run_vcpu']} vCPU, {s['cloud_run_memory_gib']:g} GiB per instance, "
        f"concurrency {s['cloud_run_concurrency']}, scale-out at "
        f"{s['target_utilisation']:.0%} CPU, "
        f"busy time rounded to {s['billing_step_s'] * 1000:.0f} ms; Vertex AI from "
        f"{s['vertex_min_nodes']} node, same target.",
        f"- GKE: pods requesting {s['pod_cpu']:g} vCPU and {s['pod_memory_gib']:g} GiB "
        f"(`infrastructure/k8s/base/api`), HPA at {s['gke_target_utilisation']:.0%} from "
        f"{s['gke_min_pods']} pods; Standard on {s['gke_node']} nodes ({s['gke_pods_per_node']} "
        f"pods a node after GKE's reservations and {s['daemonset_cpu']:g} vCPU / "
        f"{s['daemonset_memory_gib']:g} GiB of system daemonsets), {s['gke_node_disk_gib']:g} GiB "
        f"boot disks, from {s['gke_min_nodes']} node; the cluster fee is counted (the free tier's "
        "credit would cover one cluster).",
        f"- VM: {s['vm_machine']}, always on, sized for the peak hour, {s['vm_disk_gib']:g} GiB "
        "boot disk; several VMs would need a load balancer (not priced).",
        f"- Data path: {d['log_bytes_per_request']:,} bytes of logs per request (an estimate), "
        f"rows kept {d['retention_months']} months, {d['storage_gib']:g} GiB in Cloud Storage, "
        f"the event counted {d['pubsub_deliveries']} times by Pub/Sub.",
        f"- Training: perfect scaling over an instance's vCPUs, {t['startup_minutes']:g} minutes "
        f"of start-up per run, spot hours x {t['spot_rerun_factor']:g} for preempted work.",
        "- Left out: free tiers, committed-use and sustained-use discounts, network egress, "
        "dashboard queries, feedback events. A cloud vCPU is not the measuring machine's core: "
        "measure there before trusting the instance counts.",
    ]


def prices_table(r: dict[str, Any]) -> list[str]:
    """Every price used, with its date and source."""
    return markdown_table(
        ["price", "value", "as published", "source"],
        [
            [f"`{n}`", f"{e['value']:g} {e['unit']}", e["as_published"], f"<{e['source']}>"]
            for n, e in r["prices"].items()
        ],
    )


def report(r: dict[str, Any], images: str = "") -> str:
    """The report's Markdown (without markers); PNGs linked under ``images``."""
    p = r["profile"]
    lo, hi = volume(p["per_day"]), volume(p["high_per_day"])
    h = r["http"]
    lines = [
        provenance(r),
        "",
        "### Throughput per variant",
        "",
        f"The HTTP path costs {r['http_overhead_ms']:.3f} ms of server CPU per request besides "
        f"the model: {h['server_cpu_ms_per_request']} ms measured at the busiest point within "
        f"the p95 target ({h['rps']:.0f} requests/s, p95 {h['p95_ms']:.1f} ms, "
        f"{h['connections']} connections) minus the served quick CNN's batch-1 inference. Each "
        "variant adds its own inference time to that overhead; one vCPU answers 1000 / (CPU ms) "
        "requests/s.",
        "",
        *capacity_table(r),
        "",
        f"### Serving cost per 1,000 predictions at {lo}",
        "",
        "Serving only (USD per 1,000 predictions); the data path adds "
        f"{usd(r['data_path']['usd_per_1000'])} "
        "per 1,000 whichever platform serves.",
        "",
        *serving_table(r, "profile"),
        "",
        f"At {hi}, where the model's speed starts to count:",
        "",
        *serving_table(r, "high"),
        "",
        "### Data path",
        "",
        *data_path_table(r),
        "",
        "### Training cost per run",
        "",
        "On demand / spot, and the hours billed (wall time on that instance plus start-up):",
        "",
        *training_table(r),
        "",
        "### Break-even points",
        "",
        f"Against Cloud Run (request-based, min 1 instance), for `{r['reference_variant']}` with "
        "the profile's daily shape, serving plus data path:",
        "",
        *break_even_table(r),
        "",
        "### Optimisation levers",
        "",
        *levers(r),
        "",
        "### Figures",
        "",
    ]
    for name, caption in FIGURES.items():
        lines += [f"![{caption}]({images}{name})", ""]
    lines += ["### Assumptions", "", *assumptions(r), "", "### Prices used", "", *prices_table(r)]
    return "\n".join(lines)


def section(r: dict[str, Any]) -> str:
    """``docs/cost.md``'s generated section, with its markers."""
    note = (
        "<!-- generated by fmnist cost report "
        "(python benchmarks/figures.py cost_report re-renders it) -->"
    )
    return f"{BEGIN}\n{note}\n{report(r, 'images/cost/')}\n{END}"


def gcp_summary(r: dict[str, Any]) -> str:
    """``docs/gcp.md``'s short cost section, with its markers."""
    ref = r["reference_variant"]
    at = r["serving"]["profile"][ref]
    cheapest = min(at, key=lambda k: at[k]["usd_per_1000"])
    dp = r["data_path"]["usd_per_1000"]
    return "\n".join(
        [
            GCP_BEGIN,
            "<!-- generated by fmnist cost report "
            "(python benchmarks/figures.py cost re-renders it) -->",
            f"At {volume(r['profile']['per_day'])}, `{ref}` costs "
            f"{usd(at['cloud_run']['usd_per_1000'] + dp)} per 1,000 predictions on Cloud Run "
            f"(request-based, min 1 instance) and {usd(at[cheapest]['usd_per_1000'] + dp)} on "
            f"the cheapest option, {r['platforms'][cheapest]}, data path included (computed "
            f"{r['computed_at']} from throughput measured {r['variants_measured']['measured_at']} "
            f"and {r['throughput']['measured_at']}, and dated list prices). Every platform, "
            "variant, break-even and lever: [Cost analysis](cost.md).",
            GCP_END,
        ]
    )
