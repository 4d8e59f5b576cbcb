"""Cost per prediction on Google Cloud: Cloud Run against a Vertex AI endpoint, per traffic level.

Run with ``.venv/bin/python benchmarks/cost.py [--traffic 1 10 100 1000]``.

Inputs, both files:

* the measured serving throughput of this project, ``results/http.json`` (written by
  ``benchmarks/bench_http.py``, part of ``make bench``): the peak requests/s, their p95 and the
  server's CPU time per request at 1, 8 and 32 connections, and the latency at a light fixed
  rate. The figures belong to the machine that measured them (CPU, cores and date are in the
  file and in the rendered section);
* list prices, ``prices/gcp.json``: each with the date it was published as written there and
  its source page. They are inputs to update, never claimed to be current.

The model (every assumption is a named constant or option below and is written to the result):

* one vCPU of the server answers at most ``min(measured rps, 1000 / server CPU ms per
  request)`` requests/s, taking the busiest measured point whose p95 meets the benchmark's own
  target (``targets.throughput_p95_ms``); a Vertex AI node of 2 vCPUs twice that (linear);
* **Cloud Run** (1 vCPU, 2 GiB, ``--min-instances`` kept warm): instances = max(min
  instances, ceil(rps / (capacity x target utilisation))). With *request-based* billing an
  instance is billed while at least one request is in flight, in 100 ms steps: with Poisson
  arrivals at ``r`` requests/s per instance, each keeping it billed for at least 100 ms, the
  billed share of its time is ``1 - exp(-r x max(service time, 0.1 s))`` (a pessimistic
  reading of the rounding); idle time of the minimum instances is billed at the idle rates, the
  other instances scale to zero; plus the per-request fee. With *instance-based* billing every
  instance is billed all the time at the lower rates, with no per-request fee;
* **Vertex AI** (n1-standard-2 and e2-standard-2): always-on nodes, max(1, ceil(rps / (node
  capacity x target utilisation))), billed per node-hour whether they serve or not;
* the **same for both**: the prediction event through Pub/Sub (its CloudEvents envelope, built
  by ``fmnist.streaming.envelope`` from a representative record, published and delivered once
  to the analytics subscription), its row into BigQuery (Storage Write API; the row's logical
  size from ``src/fmnist/analytics/schemas/prediction_events.json``), that row stored for
  ``--retention-months`` and ``--log-bytes`` of Cloud Logging per request (an assumption: Cloud
  Run's request log plus the API's access line); and, fixed, ``--storage-gib`` of Cloud Storage
  (the data lake, model artifacts and exports);
* left out: free tiers (per billing account, so the figures are an upper bound for a small
  deployment), discounts, feedback events (a small share of requests), BigQuery queries of the
  dashboards (they depend on who looks, not on traffic), network egress, the training side.

Writes ``results/cost.json`` and renders the section between ``<!-- cost: begin -->`` and
``<!-- cost: end -->`` of ``docs/gcp.md`` ("Cost per prediction"); ``--report-only`` renders
the last result again without computing.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fmnist.analytics.tables import schema
from fmnist.streaming.envelope import PREDICTION_TYPE, envelope

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
HTTP_RESULT = RESULTS / "http.json"
COST_RESULT = RESULTS / "cost.json"
PRICES = HERE / "prices" / "gcp.json"
DOC = HERE.parent / "docs" / "gcp.md"
BEGIN, END = "<!-- cost: begin -->", "<!-- cost: end -->"

KPI_USD_PER_PREDICTION = 0.001
"""The KPI: a prediction costs less than this."""
HOURS_PER_MONTH = 730.0
"""Google's pricing pages count a month as 730 hours."""
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
GIB = 1024**3
TIB = 1024**4
BILLING_STEP_S = 0.1
"""Cloud Run rounds billable instance time up to 100 ms."""
CLOUD_RUN_VCPU = 1
CLOUD_RUN_MEMORY_GIB = 2.0
CLOUD_RUN_CONCURRENCY = 80
"""Cloud Run's default maximum of concurrent requests per instance."""
TARGET_UTILISATION = 0.6
"""Cloud Run and Vertex AI both scale out at about 60 % CPU."""
VERTEX_NODES = {
    "n1-standard-2": ("vertex_prediction_n1_standard_2_node_hour", 2),
    "e2-standard-2": ("vertex_prediction_e2_standard_2_node_hour", 2),
}
"""Machine type -> (price entry, vCPUs)."""
PUBSUB_DELIVERIES = 2
"""Bytes counted per event: the publish and the analytics subscription's delivery."""
ACTIVE_STORAGE_MONTHS = 3
"""BigQuery bills a partition untouched for 90 days at the long-term rate."""
RUN_BENCHMARK = (
    "run the HTTP benchmark first: `.venv/bin/python benchmarks/bench_http.py` "
    "(or `make bench`), which writes benchmarks/results/http.json"
)


@dataclass(frozen=True)
class Throughput:
    """The measured point the capacity comes from, and where it was measured."""

    measured_at: str
    machine: str
    setup: str
    connections: int
    rps: float
    p95_ms: float
    p95_target_ms: float | None
    meets_p95_target: bool
    server_cpu_ms_per_request: float | None
    service_time_ms: float
    rps_per_vcpu: float
    basis: str


@dataclass(frozen=True)
class Assumptions:
    """Every figure of the model that is not measured or a list price."""

    traffic_rps: tuple[float, ...]
    cloud_run_vcpu: int
    cloud_run_memory_gib: float
    cloud_run_concurrency: int
    cloud_run_min_instances: int
    vertex_min_nodes: int
    target_utilisation: float
    billing_step_s: float
    log_bytes_per_request: int
    retention_months: int
    storage_gib: float
    pubsub_deliveries: int
    hours_per_month: float


# ---- inputs ---------------------------------------------------------------------------------


def load_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON file, or exit with a message saying how to produce it."""
    if not path.is_file():
        raise SystemExit(f"{path} is missing: {what}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (no machine's paths in results)."""
    try:
        return str(path.resolve().relative_to(HERE.parent))
    except ValueError:
        return str(path)


def load_prices(path: Path) -> dict[str, dict[str, Any]]:
    """The price entries; each must have a value, a unit, a publication date and a source."""
    entries: dict[str, dict[str, Any]] = load_json(path, "the price list")["prices"]
    for name, entry in entries.items():
        missing = {"value", "unit", "as_published", "source"} - set(entry)
        if missing:
            raise SystemExit(f"{path}: price {name} lacks {sorted(missing)}")
    return entries


def throughput(http: dict[str, Any], path: Path = HTTP_RESULT) -> Throughput:
    """The capacity of one vCPU from the HTTP benchmark's peak runs in ``http`` (read from
    ``path``; see the module doc)."""
    peak = http.get("peak")
    if not isinstance(peak, list) or not peak:
        raise SystemExit(f"{path} has no 'peak' runs: {RUN_BENCHMARK}")
    runs = [p for p in peak if isinstance(p, dict) and {"rps", "p95_ms"} <= set(p)]
    if not runs:
        raise SystemExit(f"{path}: the peak runs lack 'rps' and 'p95_ms': {RUN_BENCHMARK}")
    target = http.get("targets", {}).get("throughput_p95_ms")
    within = [p for p in runs if target is None or p["p95_ms"] <= target]
    chosen = max(within or runs, key=lambda p: p["rps"])
    cpu_ms = chosen.get("server_cpu_ms_per_request")
    machine = http.get("machine", {})
    cores = int(machine.get("cores_usable") or machine.get("cores") or 1)
    if cpu_ms:
        per_vcpu = min(float(chosen["rps"]), 1000.0 / float(cpu_ms))
        basis = (
            f"min(measured {chosen['rps']:.0f} requests/s, 1000 / {cpu_ms} ms of server CPU "
            f"per request)"
        )
    else:
        per_vcpu = float(chosen["rps"]) / cores
        basis = f"measured {chosen['rps']:.0f} requests/s / {cores} cores (no CPU time measured)"
    light = http.get("fixed_rate", {}).get("p50_ms")
    one_connection = [p for p in runs if p.get("connections") == 1 and "p50_ms" in p]
    service_ms = float(light or (one_connection[0]["p50_ms"] if one_connection else 0.0))
    if not service_ms:
        raise SystemExit(f"{path}: no light-load latency (fixed_rate.p50_ms)")
    return Throughput(
        measured_at=str(http.get("measured_at", "unknown")),
        machine=(
            f"{machine.get('cpu', 'unknown CPU')}, {cores} cores, load average "
            f"{http.get('load_average_start', machine.get('load_average', 'unknown'))}"
        ),
        setup=str(http.get("setup", "")),
        connections=int(chosen.get("connections", 0)),
        rps=float(chosen["rps"]),
        p95_ms=float(chosen["p95_ms"]),
        p95_target_ms=None if target is None else float(target),
        meets_p95_target=target is None or chosen["p95_ms"] <= target,
        server_cpu_ms_per_request=None if cpu_ms is None else float(cpu_ms),
        service_time_ms=service_ms,
        rps_per_vcpu=round(per_vcpu, 1),
        basis=basis,
    )


def bigquery_row_bytes(row: dict[str, Any]) -> int:
    """BigQuery's logical size of one row of ``prediction_events`` (STRING: 2 + UTF-8 bytes;
    INTEGER, FLOAT, TIMESTAMP: 8; BOOLEAN: 1; NULL: 0)."""
    sizes = {"INTEGER": 8, "FLOAT": 8, "TIMESTAMP": 8, "BOOLEAN": 1}
    total = 0
    for column in schema("prediction_events"):
        value = row.get(column["name"])
        if value is None:
            continue
        if column["type"] == "STRING":
            total += 2 + len(str(value).encode())
        else:
            total += sizes[column["type"]]
    return total


def prediction_event() -> tuple[int, int]:
    """(bytes of the CloudEvents envelope, BigQuery bytes of its row) for a representative
    prediction: an uploaded image answered by the champion."""
    request_id = "0" * 32  # uuid4().hex
    data = {
        "request_id": request_id,
        "model_name": "fmnist",
        "model_version": 3,
        "model_alias": "champion",
        "arm": None,
        "input_kind": "upload",
        "predicted_class": "Trouser",
        "confidence": 0.998213,
        "latency_ms": 1.734,
        "route": "/v1/predict",
    }
    event_id = f"prediction:{request_id}"
    time = "2026-01-01T00:00:00.000000+00:00"
    event = envelope(PREDICTION_TYPE, event_id, time, data)
    row = {"event_id": event_id, "time": time, **data}
    return len(json.dumps(event).encode()), bigquery_row_bytes(row)


# ---- the model --------------------------------------------------------------------------------


def cloud_run(
    rps: float, tp: Throughput, prices: dict[str, dict[str, Any]], a: Assumptions
) -> dict[str, dict[str, Any]]:
    """Cloud Run's serving cost at ``rps`` requests/s on average, with request-based and with
    instance-based billing (USD per second, split by component)."""

    def price(name: str) -> float:
        return float(prices[name]["value"])

    def per_instance_second(cpu: str, memory: str) -> float:
        return a.cloud_run_vcpu * price(cpu) + a.cloud_run_memory_gib * price(memory)

    per_instance = tp.rps_per_vcpu * a.cloud_run_vcpu * a.target_utilisation
    instances = max(a.cloud_run_min_instances, math.ceil(rps / per_instance))
    per_instance_rps = rps / instances
    window = max(tp.service_time_ms / 1000, a.billing_step_s)
    billed_share = 1 - math.exp(-per_instance_rps * window)
    active = per_instance_second("cloud_run_cpu_vcpu_second", "cloud_run_memory_gib_second")
    idle = per_instance_second("cloud_run_idle_cpu_vcpu_second", "cloud_run_idle_memory_gib_second")
    always = per_instance_second(
        "cloud_run_instance_cpu_vcpu_second", "cloud_run_instance_memory_gib_second"
    )
    warm = min(instances, a.cloud_run_min_instances)
    in_flight = per_instance_rps * tp.service_time_ms / 1000
    sizing = {
        "instances": instances,
        "requests_per_instance": round(per_instance_rps, 2),
        "in_flight_per_instance": round(in_flight, 3),
        "within_concurrency": in_flight <= a.cloud_run_concurrency,
    }
    return {
        "cloud_run": sizing
        | {
            "billed_share_of_instance_time": round(billed_share, 4),
            "usd_per_second": {
                "cloud_run_active": instances * billed_share * active,
                "cloud_run_idle_min_instances": warm * (1 - billed_share) * idle,
                "cloud_run_requests": rps * price("cloud_run_requests_per_million") / 1e6,
            },
        },
        "cloud_run_instance_billing": sizing
        | {
            "billed_share_of_instance_time": 1.0,
            "usd_per_second": {"cloud_run_instances": instances * always},
        },
    }


def vertex(
    rps: float, machine: str, tp: Throughput, prices: dict[str, dict[str, Any]], a: Assumptions
) -> dict[str, Any]:
    """A Vertex AI endpoint's serving cost at ``rps`` on always-on ``machine`` nodes."""
    entry, vcpus = VERTEX_NODES[machine]
    per_node = tp.rps_per_vcpu * vcpus * a.target_utilisation
    nodes = max(a.vertex_min_nodes, math.ceil(rps / per_node))
    return {
        "nodes": nodes,
        "node_capacity_rps": round(per_node, 1),
        "utilisation": round(rps / (tp.rps_per_vcpu * vcpus * nodes), 4),
        "usd_per_second": {"vertex_nodes": nodes * float(prices[entry]["value"]) / 3600},
    }


def pipeline(
    rps: float, prices: dict[str, dict[str, Any]], a: Assumptions, event: tuple[int, int]
) -> dict[str, Any]:
    """What every prediction costs after it is answered, whatever serves it."""
    envelope_bytes, row_bytes = event

    def price(name: str) -> float:
        return float(prices[name]["value"])

    long_term = max(0, a.retention_months - ACTIVE_STORAGE_MONTHS)
    storage_per_gib = price("bigquery_active_storage_gib_month") * min(
        a.retention_months, ACTIVE_STORAGE_MONTHS
    )
    storage_per_gib += price("bigquery_long_term_storage_gib_month") * long_term
    per_prediction = {
        "pubsub": envelope_bytes * a.pubsub_deliveries / TIB * price("pubsub_throughput_tib"),
        "bigquery_ingestion": row_bytes / GIB * price("bigquery_storage_write_api_gib"),
        "bigquery_storage": row_bytes / GIB * storage_per_gib,
        "cloud_logging": a.log_bytes_per_request / GIB * price("cloud_logging_ingestion_gib"),
    }
    usd_per_s = {k: v * rps for k, v in per_prediction.items()}
    lake = a.storage_gib * price("cloud_storage_standard_regional_gib_month") / SECONDS_PER_MONTH
    return {
        "envelope_bytes": envelope_bytes,
        "bigquery_row_bytes": row_bytes,
        "usd_per_second": usd_per_s | {"cloud_storage": lake},
    }


def level(
    rps: float,
    tp: Throughput,
    prices: dict[str, dict[str, Any]],
    a: Assumptions,
    event: tuple[int, int],
) -> dict[str, Any]:
    """Every option at one traffic level: per component, per prediction and per month."""

    def totals(usd_per_s: dict[str, float]) -> dict[str, Any]:
        total = sum(usd_per_s.values())
        per_prediction = total / rps
        return {
            "usd_per_prediction": {k: v / rps for k, v in usd_per_s.items()},
            "usd_per_month": {k: v * SECONDS_PER_MONTH for k, v in usd_per_s.items()},
            "total_usd_per_prediction": per_prediction,
            "total_usd_per_month": total * SECONDS_PER_MONTH,
            "meets_kpi": per_prediction < KPI_USD_PER_PREDICTION,
        }

    shared = pipeline(rps, prices, a, event)
    options: dict[str, Any] = {}
    for key, run in cloud_run(rps, tp, prices, a).items():
        options[key] = run | totals(run["usd_per_second"] | shared["usd_per_second"])
    for machine in VERTEX_NODES:
        node = vertex(rps, machine, tp, prices, a)
        options[f"vertex_{machine}"] = node | totals(
            node["usd_per_second"] | shared["usd_per_second"]
        )
    for option in options.values():
        option.pop("usd_per_second")
    return {
        "rps": rps,
        "predictions_per_month": rps * SECONDS_PER_MONTH,
        "pipeline": {k: v for k, v in shared.items() if k != "usd_per_second"},
        "options": options,
    }


def compute(http_path: Path, prices_path: Path, a: Assumptions) -> dict[str, Any]:
    """The whole result: inputs, capacity and every traffic level."""
    http = load_json(http_path, RUN_BENCHMARK)
    prices = load_prices(prices_path)
    tp = throughput(http, http_path)
    event = prediction_event()
    used = sorted(
        {
            "cloud_run_cpu_vcpu_second",
            "cloud_run_memory_gib_second",
            "cloud_run_idle_cpu_vcpu_second",
            "cloud_run_idle_memory_gib_second",
            "cloud_run_requests_per_million",
            "cloud_run_instance_cpu_vcpu_second",
            "cloud_run_instance_memory_gib_second",
            "cloud_storage_standard_regional_gib_month",
            "pubsub_throughput_tib",
            "bigquery_storage_write_api_gib",
            "bigquery_active_storage_gib_month",
            "bigquery_long_term_storage_gib_month",
            "cloud_logging_ingestion_gib",
            *(entry for entry, _ in VERTEX_NODES.values()),
        }
    )
    missing = [name for name in used if name not in prices]
    if missing:
        raise SystemExit(f"{prices_path} lacks the prices {missing}")
    return {
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "kpi_usd_per_prediction": KPI_USD_PER_PREDICTION,
        "http_result": _shown(http_path),
        "prices_file": _shown(prices_path),
        "throughput": asdict(tp),
        "assumptions": asdict(a),
        "prices": {name: prices[name] for name in used},
        "levels": [level(rps, tp, prices, a, event) for rps in a.traffic_rps],
    }


# ---- the report -----------------------------------------------------------------------------

OPTION_TITLES = {
    "cloud_run": "Cloud Run, request-based billing",
    "cloud_run_instance_billing": "Cloud Run, instance-based billing",
    "vertex_n1-standard-2": "Vertex AI endpoint, n1-standard-2",
    "vertex_e2-standard-2": "Vertex AI endpoint, e2-standard-2",
}
SERVING_ROWS = (
    ("cloud_run", "cloud_run_active", "Cloud Run (request-based): CPU and memory while serving"),
    ("cloud_run", "cloud_run_idle_min_instances", "Cloud Run (request-based): idle min instance"),
    ("cloud_run", "cloud_run_requests", "Cloud Run (request-based): requests"),
    ("cloud_run_instance_billing", "cloud_run_instances", "Cloud Run (instance-based): instances"),
    ("vertex_n1-standard-2", "vertex_nodes", "Vertex AI n1-standard-2: nodes (always on)"),
    ("vertex_e2-standard-2", "vertex_nodes", "Vertex AI e2-standard-2: nodes (always on)"),
)
SHARED_ROWS = (
    ("pubsub", "Pub/Sub: the prediction event"),
    ("bigquery_ingestion", "BigQuery: row ingestion (Storage Write API)"),
    ("bigquery_storage", "BigQuery: row storage"),
    ("cloud_logging", "Cloud Logging: request and access log"),
    ("cloud_storage", "Cloud Storage: lake and model artifacts (fixed)"),
)


def usd(value: float) -> str:
    """Dollars, with two significant digits below a dollar (``$0.000011``)."""
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 1:
        return f"${value:,.2f}"
    if value < 1e-9:
        return "$0"
    digits = 1 - math.floor(math.log10(value))
    return f"${value:.{digits}f}"


def rate(rps: float) -> str:
    """A traffic level, e.g. ``10 req/s``."""
    return f"{rps:g} req/s"


def size(key: str, option: dict[str, Any]) -> str:
    """How many instances or nodes an option runs, e.g. ``3 instances``."""
    count = option["instances"] if key.startswith("cloud_run") else option["nodes"]
    noun = "instance" if key.startswith("cloud_run") else "node"
    return f"{count} {noun}{'s' if count != 1 else ''}"


def within(tp: dict[str, Any]) -> str:
    """How the measured point was chosen, against the benchmark's p95 target."""
    if tp["p95_target_ms"] is None:
        return "(the benchmark states no p95 target)"
    if tp["meets_p95_target"]:
        return f"within the benchmark's p95 target of {tp['p95_target_ms']:g} ms"
    return f"(**none met the benchmark's p95 target of {tp['p95_target_ms']:g} ms**)"


def render(result: dict[str, Any]) -> str:
    """The generated section of ``docs/gcp.md`` for one result."""
    tp, a, levels = result["throughput"], result["assumptions"], result["levels"]
    kpi = result["kpi_usd_per_prediction"]
    heads = " | ".join(rate(lv["rps"]) for lv in levels)
    rule = "|---|" + "---:|" * len(levels)

    def cells(key: str, component: str) -> str:
        return " | ".join(
            f"{usd(lv['options'][key]['usd_per_prediction'][component] * 1e6)} "
            f"({usd(lv['options'][key]['usd_per_month'][component])})"
            for lv in levels
        )

    lines = [
        BEGIN,
        "<!-- generated by benchmarks/cost.py (--report-only re-renders it): edit the script "
        "or its inputs, not this text -->",
        f"Computed {result['computed_at']} by `benchmarks/cost.py` from the serving throughput "
        f"measured {tp['measured_at']} on {tp['machine']} by `benchmarks/bench_http.py` "
        f"({tp['setup']}), and from the list prices of `benchmarks/prices/gcp.json`, each "
        "dated with its source below. **The prices are inputs to update, not current prices.**",
        "",
        f"**The throughput it rests on.** The busiest measured point {within(tp)}: "
        f"{tp['rps']:.1f} requests/s at p95 "
        f"{tp['p95_ms']:.1f} ms with {tp['connections']} connections (one server process), "
        f"{tp['server_cpu_ms_per_request']} ms of server CPU per request. One vCPU is taken to "
        f"answer {tp['rps_per_vcpu']:.0f} requests/s ({tp['basis']}); instances and nodes are "
        f"added at {a['target_utilisation']:.0%} of that. The light-load latency, "
        f"{tp['service_time_ms']} ms (p50 at the fixed rate), is the time a request keeps an "
        "instance busy. A Cloud Run or Vertex AI vCPU is not this machine's core: measure "
        "there before trusting the instance counts.",
        "",
        f"**Cost per prediction, everything included**, against the KPI (below ${kpi:g}):",
        "",
        f"| | {heads} |",
        rule,
        "| predictions a month | "
        + " | ".join(f"{lv['predictions_per_month'] / 1e6:,.1f} M" for lv in levels)
        + " |",
    ]
    for key, title in OPTION_TITLES.items():
        row = []
        for lv in levels:
            option = lv["options"][key]
            verdict = "meets" if option["meets_kpi"] else "**misses**"
            row.append(
                f"{usd(option['total_usd_per_prediction'])} ({verdict}; {size(key, option)}, "
                f"{usd(option['total_usd_per_month'])} a month)"
            )
        lines.append(f"| {title} | " + " | ".join(row) + " |")
    cheapest = [
        min(OPTION_TITLES, key=lambda k: lv["options"][k]["total_usd_per_prediction"])
        for lv in levels
    ]
    lines.append("| cheapest | " + " | ".join(OPTION_TITLES[k] for k in cheapest) + " |")
    lines += [
        "",
        "**Per component**, USD per million predictions (a month in brackets):",
        "",
        f"| component | {heads} |",
        rule,
    ]
    lines += [f"| {title} | {cells(key, comp)} |" for key, comp, title in SERVING_ROWS]
    lines += [f"| {title} | {cells('cloud_run', comp)} |" for comp, title in SHARED_ROWS]
    billed = " | ".join(
        f"{lv['options']['cloud_run']['billed_share_of_instance_time']:.0%}" for lv in levels
    )
    busy = " | ".join(
        f"{lv['options']['vertex_n1-standard-2']['utilisation']:.1%}" for lv in levels
    )
    lines += [
        f"| share of Cloud Run instance time billed (request-based) | {billed} |",
        f"| share of a Vertex AI node's capacity used | {busy} |",
        "",
        "The Pub/Sub, BigQuery, Cloud Logging and Cloud Storage rows are the same whichever "
        "option serves. Request-based billing pays for busy time only (and a cheap idle "
        "minimum instance) plus a fee per request; instance-based billing and Vertex AI pay "
        "for every instance or node all the time, at a lower rate and with no request fee.",
    ]
    shared = levels[0]["pipeline"]
    lines += [
        "",
        "Assumptions (options of the script): Cloud Run with "
        f"{a['cloud_run_vcpu']} vCPU and {a['cloud_run_memory_gib']:g} GiB per instance, "
        f"{a['cloud_run_min_instances']} minimum instance kept warm (request-based: billed at "
        f"the idle rates while idle), busy periods rounded up to "
        f"{a['billing_step_s'] * 1000:.0f} ms; Vertex AI from {a['vertex_min_nodes']} node, "
        f"never scaled to zero; a month of {a['hours_per_month']:g} hours. Per prediction: its "
        f"CloudEvents envelope ({shared['envelope_bytes']} bytes, built by "
        f"`fmnist.streaming.envelope`) counted {a['pubsub_deliveries']} times by Pub/Sub "
        "(published, delivered to the analytics subscription; batched by the client library, "
        "else each request counts at least 1,000 bytes), its BigQuery row "
        f"({shared['bigquery_row_bytes']} bytes by BigQuery's size rules) ingested and kept "
        f"{a['retention_months']} months, {a['log_bytes_per_request']:,} bytes of Cloud "
        "Logging (an estimate, not measured: Cloud Run's request log entry and the API's "
        "access line; exclusion filters remove most of it); and "
        f"{a['storage_gib']:g} GiB in Cloud Storage. Not included: free tiers (they make a "
        "small deployment cheaper), discounts, feedback events, dashboard queries, network "
        "egress, training.",
        "",
        "Prices used:",
        "",
        "| price | value | as published | source |",
        "|---|---:|---|---|",
    ]
    for name, entry in result["prices"].items():
        lines.append(
            f"| `{name}` | {entry['value']:g} {entry['unit']} | {entry['as_published']} | "
            f"<{entry['source']}> |"
        )
    lines += [END]
    return "\n".join(lines)


def write_doc(result: dict[str, Any], doc: Path = DOC) -> None:
    """Replace the generated section of ``docs/gcp.md``."""
    if not doc.is_file():
        raise SystemExit(f"{doc} is missing: add a '## Cost per prediction' section with {BEGIN}")
    text = doc.read_text(encoding="utf-8")
    head, found, rest = text.partition(BEGIN)
    _, closed, tail = rest.partition(END)
    if not found or not closed:
        raise SystemExit(f"{doc} has no {BEGIN} ... {END} section (under '## Cost per prediction')")
    doc.write_text(head + render(result) + tail, encoding="utf-8")


def main() -> int:
    """Compute (or, with ``--report-only``, re-render), print, write the result and the doc."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--http", type=Path, default=HTTP_RESULT, help="bench_http.py's result")
    parser.add_argument("--prices", type=Path, default=PRICES, help="the price list")
    parser.add_argument(
        "--traffic", type=float, nargs="+", default=[1, 10, 100, 1000], help="average req/s"
    )
    parser.add_argument("--min-instances", type=int, default=1, help="Cloud Run min-instances")
    parser.add_argument("--min-nodes", type=int, default=1, help="Vertex AI minimum nodes")
    parser.add_argument(
        "--utilisation", type=float, default=TARGET_UTILISATION, help="scale-out CPU share"
    )
    parser.add_argument("--log-bytes", type=int, default=1500, help="Cloud Logging per request")
    parser.add_argument("--retention-months", type=int, default=12, help="BigQuery retention")
    parser.add_argument("--storage-gib", type=float, default=5.0, help="Cloud Storage held")
    parser.add_argument("--report-only", action="store_true", help="re-render the last result")
    args = parser.parse_args()
    if args.report_only:
        result = load_json(COST_RESULT, "run benchmarks/cost.py without --report-only first")
        write_doc(result)
        print(render(result))
        return 0
    if any(r <= 0 for r in args.traffic) or not 0 < args.utilisation <= 1:
        parser.error("--traffic must be positive and --utilisation in (0, 1]")
    if args.min_nodes < 1:
        parser.error("--min-nodes must be at least 1 (a Vertex AI endpoint does not scale to 0)")
    assumptions = Assumptions(
        traffic_rps=tuple(args.traffic),
        cloud_run_vcpu=CLOUD_RUN_VCPU,
        cloud_run_memory_gib=CLOUD_RUN_MEMORY_GIB,
        cloud_run_concurrency=CLOUD_RUN_CONCURRENCY,
        cloud_run_min_instances=args.min_instances,
        vertex_min_nodes=args.min_nodes,
        target_utilisation=args.utilisation,
        billing_step_s=BILLING_STEP_S,
        log_bytes_per_request=args.log_bytes,
        retention_months=args.retention_months,
        storage_gib=args.storage_gib,
        pubsub_deliveries=PUBSUB_DELIVERIES,
        hours_per_month=HOURS_PER_MONTH,
    )
    result = compute(args.http, args.prices, assumptions)
    RESULTS.mkdir(parents=True, exist_ok=True)
    COST_RESULT.write_text(json.dumps(result, indent=2), encoding="utf-8")
    write_doc(result)
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
