"""Serving cost per platform for a traffic profile, hour by hour.

Every platform gets the same per-variant capacity (:class:`~fmnist.costing.inputs.Capacity`:
requests/s one vCPU answers, the time a request keeps an instance busy) and adds instances,
nodes or pods when the hourly rate exceeds ``capacity x target utilisation``:

* **Cloud Run**, request-based billing: an instance is billed while a request is in flight, in
  ``billing_step_s`` steps; with Poisson arrivals at ``r`` requests/s per instance the billed
  share of its time is ``1 - exp(-r x max(service time, step))``; idle minimum instances are
  billed at the idle rates; plus the per-request fee. ``min_instances`` 1 or 0 (0: nothing is
  billed while no request is in flight, at the price of cold starts). Instance-based billing:
  every instance all the time at the lower rates, no request fee;
* **Vertex AI endpoint**: autoscaled 2-vCPU nodes from ``vertex_min_nodes``, billed per
  node-hour whether they serve or not;
* **GKE Standard**: pods requesting ``pod_cpu`` and ``pod_memory_gib`` (as
  ``infrastructure/k8s/base/api``), scaled by the HPA at ``gke_target_utilisation`` of the
  request from ``gke_min_pods``; pods are bin-packed onto ``gke_node`` nodes after GKE's
  reservations and the system daemonsets; nodes (and their boot disks) plus the cluster fee;
* **GKE Autopilot**: the same pods billed by their requests, plus the cluster fee;
* **a VM** (Compute Engine, always on): sized for the peak hour, billed all day.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from fmnist.costing.inputs import Capacity
from fmnist.costing.prices import Prices
from fmnist.costing.profile import DAYS_PER_MONTH, HOURS_PER_MONTH, TrafficProfile

MACHINES: dict[str, tuple[int, float]] = {
    "e2-standard-2": (2, 8.0),
    "e2-standard-4": (4, 16.0),
    "n1-standard-2": (2, 7.5),
    "n1-standard-4": (4, 15.0),
    "n2-standard-2": (2, 8.0),
    "n2-standard-4": (4, 16.0),
    "n2-standard-8": (8, 32.0),
}
"""Machine type -> (vCPUs, GiB of memory), as Compute Engine defines them."""

PLATFORMS: dict[str, str] = {
    "cloud_run": "Cloud Run, request-based billing, min 1 instance",
    "cloud_run_min0": "Cloud Run, request-based billing, min 0 instances",
    "cloud_run_instance_billing": "Cloud Run, instance-based billing, min 1",
    "vertex_n1-standard-2": "Vertex AI endpoint, n1-standard-2 nodes",
    "vertex_e2-standard-2": "Vertex AI endpoint, e2-standard-2 nodes",
    "gke_standard": "GKE Standard, e2-standard-4 node pool",
    "gke_autopilot": "GKE Autopilot, billed per pod request",
    "vm_e2-standard-2": "Compute Engine VM, e2-standard-2, always on",
}
"""Platform key -> its title."""


@dataclass(frozen=True)
class ServingAssumptions:
    """Every serving figure that is neither measured nor a price (all are options)."""

    target_utilisation: float = 0.6
    cloud_run_vcpu: int = 1
    cloud_run_memory_gib: float = 2.0
    cloud_run_concurrency: int = 80
    billing_step_s: float = 0.1
    cloud_run_idle_timeout_s: float = 900.0
    vertex_min_nodes: int = 1
    gke_node: str = "e2-standard-4"
    gke_node_disk_gib: float = 100.0
    gke_min_nodes: int = 1
    gke_min_pods: int = 2
    gke_target_utilisation: float = 0.7
    pod_cpu: float = 0.5
    pod_memory_gib: float = 0.5
    daemonset_cpu: float = 0.3
    daemonset_memory_gib: float = 0.5
    vm_machine: str = "e2-standard-2"
    vm_disk_gib: float = 10.0

    def as_dict(self) -> dict[str, Any]:
        """The assumptions as written to the result."""
        return asdict(self)


def _machine_price(machine: str) -> str:
    return "compute_" + machine.replace("-", "_") + "_hour"


def gke_allocatable(vcpus: int, memory_gib: float) -> tuple[float, float]:
    """(vCPUs, GiB) a GKE node leaves to pods after its reservations: CPU 6 % of the first
    core, 1 % of the second, 0.5 % of the next two, 0.25 % above four; memory 25 % of the
    first 4 GiB, 20 % of the next 4, 10 % of the next 8, 6 % of the next 112, 2 % above,
    plus 100 MiB for eviction."""
    cpu_steps = ((1, 0.06), (1, 0.01), (2, 0.005), (math.inf, 0.0025))
    mem_steps = ((4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (math.inf, 0.02))

    def reserved(total: float, steps: tuple[tuple[float, float], ...]) -> float:
        left, out = total, 0.0
        for width, share in steps:
            take = min(left, width)
            out += take * share
            left -= take
            if left <= 0:
                break
        return out

    return vcpus - reserved(vcpus, cpu_steps), memory_gib - reserved(memory_gib, mem_steps) - (
        100 / 1024
    )


def pods_per_node(a: ServingAssumptions) -> int:
    """How many serving pods fit on one GKE node beside the system daemonsets."""
    cpu, mem = gke_allocatable(*MACHINES[a.gke_node])
    fit = min(
        (cpu - a.daemonset_cpu) / a.pod_cpu, (mem - a.daemonset_memory_gib) / a.pod_memory_gib
    )
    return max(0, math.floor(fit + 1e-9))


def instances_for(rps: float, per_unit_rps: float, minimum: int) -> int:
    """Units (instances, nodes, pods) needed for ``rps`` at ``per_unit_rps`` each."""
    if per_unit_rps <= 0:
        raise ValueError("capacity per unit must be positive")
    return max(minimum, math.ceil(rps / per_unit_rps - 1e-9))


def _cloud_run_hour(
    rps: float, cap: Capacity, p: Prices, a: ServingAssumptions, min_instances: int
) -> tuple[dict[str, float], int, float]:
    per_instance = cap.rps_per_vcpu * a.cloud_run_vcpu * a.target_utilisation
    instances = instances_for(rps, per_instance, min_instances)
    if instances == 0:
        return {"cloud_run_active": 0.0, "cloud_run_idle": 0.0, "cloud_run_requests": 0.0}, 0, 0.0
    r = rps / instances
    billed = 1 - math.exp(-r * max(cap.service_time_ms / 1000, a.billing_step_s))
    rate = a.cloud_run_vcpu * p["cloud_run_cpu_vcpu_second"]
    rate += a.cloud_run_memory_gib * p["cloud_run_memory_gib_second"]
    idle = a.cloud_run_vcpu * p["cloud_run_idle_cpu_vcpu_second"]
    idle += a.cloud_run_memory_gib * p["cloud_run_idle_memory_gib_second"]
    warm = min(instances, min_instances)
    return (
        {
            "cloud_run_active": instances * billed * rate * 3600,
            "cloud_run_idle": warm * (1 - billed) * idle * 3600,
            "cloud_run_requests": rps * 3600 * p["cloud_run_requests_per_million"] / 1e6,
        },
        instances,
        r * cap.service_time_ms / 1000,
    )


def hourly(
    platform: str, rps: float, cap: Capacity, p: Prices, a: ServingAssumptions
) -> tuple[dict[str, float], int]:
    """(USD per component for one hour at ``rps``, units running) of an autoscaled platform."""
    if platform in ("cloud_run", "cloud_run_min0"):
        costs, units, _ = _cloud_run_hour(rps, cap, p, a, 1 if platform == "cloud_run" else 0)
        return costs, units
    if platform == "cloud_run_instance_billing":
        per_instance = cap.rps_per_vcpu * a.cloud_run_vcpu * a.target_utilisation
        units = instances_for(rps, per_instance, 1)
        rate = a.cloud_run_vcpu * p["cloud_run_instance_cpu_vcpu_second"]
        rate += a.cloud_run_memory_gib * p["cloud_run_instance_memory_gib_second"]
        return {"cloud_run_instances": units * rate * 3600}, units
    if platform.startswith("vertex_"):
        machine = platform.removeprefix("vertex_")
        vcpus = MACHINES[machine][0]
        per_node = cap.rps_per_vcpu * vcpus * a.target_utilisation
        units = instances_for(rps, per_node, a.vertex_min_nodes)
        price = p["vertex_prediction_" + machine.replace("-", "_") + "_node_hour"]
        return {"vertex_nodes": units * price}, units
    if platform in ("gke_standard", "gke_autopilot"):
        per_pod = cap.rps_per_vcpu * a.pod_cpu * a.gke_target_utilisation
        pods = instances_for(rps, per_pod, a.gke_min_pods)
        fee = p["gke_cluster_management_hour"]
        if platform == "gke_autopilot":
            per_pod_hour = a.pod_cpu * p["gke_autopilot_vcpu_hour"]
            per_pod_hour += a.pod_memory_gib * p["gke_autopilot_memory_gib_hour"]
            return {"gke_pods": pods * per_pod_hour, "gke_cluster_fee": fee}, pods
        fit = pods_per_node(a)
        if fit < 1:
            raise ValueError(f"no serving pod fits on a {a.gke_node} node")
        nodes = max(a.gke_min_nodes, math.ceil(pods / fit))
        disk = a.gke_node_disk_gib * p["compute_pd_balanced_gib_month"] / HOURS_PER_MONTH
        node = p[_machine_price(a.gke_node)] + disk
        return {"gke_nodes": nodes * node, "gke_cluster_fee": fee}, nodes
    raise ValueError(f"unknown platform {platform!r}; known: {', '.join(PLATFORMS)}")


def platform_day(
    platform: str, profile: TrafficProfile, cap: Capacity, p: Prices, a: ServingAssumptions
) -> dict[str, Any]:
    """One platform's serving cost over a day of ``profile``: per day, month and 1,000."""
    components: dict[str, float] = {}
    peak_units = 0
    if platform.startswith("vm_"):
        machine = platform.removeprefix("vm_")
        per_vm = cap.rps_per_vcpu * MACHINES[machine][0] * a.target_utilisation
        peak_units = instances_for(profile.peak_rps, per_vm, 1)
        disk = a.vm_disk_gib * p["compute_pd_balanced_gib_month"] / HOURS_PER_MONTH
        components = {"vm": 24 * peak_units * (p[_machine_price(machine)] + disk)}
    else:
        for rps in profile.hourly_rps():
            costs, units = hourly(platform, rps, cap, p, a)
            peak_units = max(peak_units, units)
            for k, v in costs.items():
                components[k] = components.get(k, 0.0) + v
    per_day = sum(components.values())
    return {
        "usd_per_day": per_day,
        "usd_per_month": per_day * DAYS_PER_MONTH,
        "usd_per_1000": per_day / profile.per_day * 1000,
        "peak_units": peak_units,
        "components_usd_per_day": components,
    }


def cold_starts_per_day(profile: TrafficProfile, idle_timeout_s: float) -> float:
    """Expected cold starts a day with min 0 instances: requests arriving after a Poisson gap
    longer than the idle timeout (when Cloud Run may have removed the last instance)."""
    return sum(r * 3600 * math.exp(-r * idle_timeout_s) for r in profile.hourly_rps())


def all_platforms(
    profile: TrafficProfile, cap: Capacity, p: Prices, a: ServingAssumptions
) -> dict[str, dict[str, Any]]:
    """Every platform of :data:`PLATFORMS` for ``profile``."""
    return {name: platform_day(name, profile, cap, p, a) for name in PLATFORMS}
