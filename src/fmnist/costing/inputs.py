"""The measured inputs of the cost model, read from the benchmarks' result files.

* ``results/http.json`` (``benchmarks/bench_http.py``): the server CPU time per request of the
  whole HTTP path (decode, validation, model, logging, metrics) at the busiest point within
  its p95 target, and the latency at a light fixed rate; it serves the quick CNN in FP32;
* ``results/variants.json`` (``benchmarks/bench_variants.py``): the ONNX Runtime latency and
  throughput of each model variant on one thread;
* ``docs/benchmarks.json`` (``fmnist benchmark``): the training seconds of each model.

**Per-variant capacity (the method).** The HTTP overhead of a request is the measured server
CPU per request minus the batch-1 inference time of the model that benchmark served (the
quick CNN, FP32, as measured in ``variants.json``); a variant's CPU per request is that
overhead plus its own batch-1 inference time, and one vCPU answers ``1000 / CPU ms``
requests/s. Its service time (how long a request keeps an instance busy) is the light-load p50
with the served model's inference time swapped for the variant's the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmnist.costing.errors import CostInputError
from fmnist.costing.prices import read_json

SERVED_VARIANT = "cnn-quick-fp32"
"""The variant ``bench_http.py`` serves (its home's champion is trained with ``--preset quick``)."""
RUN_HTTP = "run `.venv/bin/python benchmarks/bench_http.py` (or `make bench`)"
RUN_VARIANTS = "run `.venv/bin/python benchmarks/bench_variants.py`"
RUN_LEADERBOARD = "run `fmnist benchmark` (it writes docs/benchmarks.json)"


def _machine(m: Any) -> str:
    """``CPU, N cores`` from a result's machine record."""
    if not isinstance(m, dict):
        return str(m)
    cores = m.get("cores_usable") or m.get("cores") or m.get("cores_online") or "?"
    return f"{m.get('cpu', 'unknown CPU')}, {cores} cores"


@dataclass(frozen=True)
class HttpPoint:
    """The measured HTTP serving point the overhead comes from."""

    measured_at: str
    machine: str
    setup: str
    connections: int
    rps: float
    p95_ms: float
    p95_target_ms: float | None
    meets_p95_target: bool
    server_cpu_ms_per_request: float
    service_time_ms: float
    microbatching_cpu_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """One model variant's measured inference figures (one thread)."""

    key: str
    model: str
    precision: str
    built: str
    parameters: int
    batch1_latency_ms: float
    images_per_s: dict[str, float]
    onnx_mb: float


@dataclass(frozen=True)
class Variants:
    """``variants.json``: every variant, where and when it was measured, the side figures."""

    measured_at: str
    machine: str
    method: str
    variants: dict[str, Variant]
    payload_bytes: dict[str, float]
    site_packages_mb: float | None


@dataclass(frozen=True)
class TrainingRun:
    """A measured training run of one model (``docs/benchmarks.json``)."""

    model: str
    preset_command: str
    train_seconds: float
    threads: int
    vcpu_seconds: float
    measured_at: str
    machine: str


def _number(data: dict[str, Any], key: str, path: Path, what: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise CostInputError(f"{path}: {what} lacks a non-negative number {key!r}: {RUN_HTTP}")
    return float(value)


def load_http(path: Path) -> HttpPoint:
    """The busiest peak run of ``path`` within its p95 target (else the busiest one)."""
    http = read_json(path, RUN_HTTP)
    peak = http.get("peak") if isinstance(http, dict) else None
    if not isinstance(peak, list) or not peak:
        raise CostInputError(f"{path} has no 'peak' runs: {RUN_HTTP}")
    runs = [p for p in peak if isinstance(p, dict) and p.get("server_cpu_ms_per_request")]
    if not runs:
        raise CostInputError(f"{path}: no peak run has 'server_cpu_ms_per_request': {RUN_HTTP}")
    target = http.get("targets", {}).get("throughput_p95_ms")
    within = [p for p in runs if target is None or p.get("p95_ms", 1e9) <= target]
    chosen = max(within or runs, key=lambda p: float(p.get("rps", 0)))
    fixed = http.get("fixed_rate")
    if not isinstance(fixed, dict):
        raise CostInputError(f"{path} has no 'fixed_rate' run (the light-load latency): {RUN_HTTP}")
    micro: dict[str, float] = {}
    for arm in ("on", "off"):
        run = (http.get("microbatching") or {}).get(arm) or {}
        if run.get("server_cpu_ms_per_request"):
            micro[arm] = float(run["server_cpu_ms_per_request"])
    return HttpPoint(
        measured_at=str(http.get("measured_at", "unknown")),
        machine=_machine(http.get("machine")),
        setup=str(http.get("setup", "")),
        connections=int(chosen.get("connections", 0)),
        rps=_number(chosen, "rps", path, "the chosen peak run"),
        p95_ms=_number(chosen, "p95_ms", path, "the chosen peak run"),
        p95_target_ms=None if target is None else float(target),
        meets_p95_target=bool(within),
        server_cpu_ms_per_request=_number(
            chosen, "server_cpu_ms_per_request", path, "the chosen peak run"
        ),
        service_time_ms=_number(fixed, "p50_ms", path, "fixed_rate"),
        microbatching_cpu_ms=micro,
    )


def load_variants(path: Path) -> Variants:
    """The per-variant figures of ``path``; it must hold the served variant."""
    data = read_json(path, RUN_VARIANTS)
    raw = data.get("variants") if isinstance(data, dict) else None
    if not isinstance(raw, dict) or not raw:
        raise CostInputError(f"{path} has no 'variants': {RUN_VARIANTS}")
    variants = {}
    for key, v in raw.items():
        try:
            variants[key] = Variant(
                key=key,
                model=str(v["model"]),
                precision=str(v["precision"]),
                built=str(v.get("built", "")),
                parameters=int(v.get("parameters", 0)),
                batch1_latency_ms=float(v["batch1_latency_ms"]),
                images_per_s={str(b): float(r) for b, r in v["images_per_s"].items()},
                onnx_mb=float(v.get("onnx_mb", 0.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CostInputError(f"{path}: variant {key!r} is malformed ({exc})") from None
        if variants[key].batch1_latency_ms <= 0:
            raise CostInputError(f"{path}: variant {key!r} has a non-positive latency")
    if SERVED_VARIANT not in variants:
        raise CostInputError(
            f"{path} lacks {SERVED_VARIANT!r}, the model the HTTP benchmark serves: {RUN_VARIANTS}"
        )
    size = data.get("site_packages_mb")
    return Variants(
        measured_at=str(data.get("measured_at", "unknown")),
        machine=_machine(data.get("machine")),
        method=str(data.get("method", "")),
        variants=variants,
        payload_bytes={k: float(v) for k, v in (data.get("payload_bytes") or {}).items()},
        site_packages_mb=None if size is None else float(size),
    )


def load_training(path: Path) -> list[TrainingRun]:
    """The neural models' measured training runs; an ensemble's is the sum of its members'."""
    rows = read_json(path, RUN_LEADERBOARD)
    if not isinstance(rows, list):
        raise CostInputError(f"{path}: expected a list of leaderboard rows: {RUN_LEADERBOARD}")
    runs: dict[str, TrainingRun] = {}
    for row in rows:
        if row.get("kind") != "neural" or not row.get("train_seconds"):
            continue
        machine = row.get("machine") or {}
        threads = int(row.get("threads") or machine.get("cores") or 1)
        seconds = float(row["train_seconds"])
        runs[row["model"]] = TrainingRun(
            model=str(row["model"]),
            preset_command=str(row.get("command", "")),
            train_seconds=seconds,
            threads=threads,
            vcpu_seconds=seconds * threads,
            measured_at=str(row.get("measured_at", "unknown")),
            machine=_machine(machine),
        )
    for row in rows:
        members = [m.get("model") for m in row.get("members") or []]
        if row.get("kind") == "ensemble" and members and all(m in runs for m in members):
            parts = [runs[m] for m in members]
            runs[row["model"]] = TrainingRun(
                model=str(row["model"]),
                preset_command=f"the sum of its members' runs ({', '.join(members)})",
                train_seconds=sum(p.train_seconds for p in parts),
                threads=0,
                vcpu_seconds=sum(p.vcpu_seconds for p in parts),
                measured_at=max(p.measured_at for p in parts),
                machine=parts[0].machine,
            )
    if not runs:
        raise CostInputError(f"{path} has no neural model with 'train_seconds': {RUN_LEADERBOARD}")
    return list(runs.values())


@dataclass(frozen=True)
class Capacity:
    """What one request of a variant costs in CPU, and how long it keeps an instance busy."""

    variant: str
    cpu_ms_per_request: float
    rps_per_vcpu: float
    service_time_ms: float


def capacity(http: HttpPoint, variants: Variants, key: str) -> Capacity:
    """The capacity of variant ``key`` (see the module doc for the method)."""
    served = variants.variants[SERVED_VARIANT].batch1_latency_ms
    own = variants.variants[key].batch1_latency_ms
    overhead = max(http.server_cpu_ms_per_request - served, 0.0)
    cpu = overhead + own
    service = max(http.service_time_ms - served, 0.0) + own
    return Capacity(key, round(cpu, 4), round(1000.0 / cpu, 1), round(service, 4))


def http_overhead_ms(http: HttpPoint, variants: Variants) -> float:
    """Server CPU per request that is not the served model's inference."""
    served = variants.variants[SERVED_VARIANT].batch1_latency_ms
    return round(max(http.server_cpu_ms_per_request - served, 0.0), 4)
