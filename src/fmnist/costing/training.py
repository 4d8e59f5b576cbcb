"""Training cost per run: measured local times scaled by vCPU count to cloud instance types.

A run measured at ``train_seconds`` on ``threads`` local cores is taken to need
``train_seconds x threads`` vCPU-seconds, spread over an instance's vCPUs with perfect
scaling (so the wall time is a lower bound and the compute cost nearly independent of the
instance size), plus ``startup_minutes`` of provisioning and data loading billed per run. Spot
(preemptible) instances bill the same hours at the spot rate times ``spot_rerun_factor``
(work repeated after a preemption, from the last epoch checkpoint). The measuring machine had
AVX-512 BF16; an instance without it trains the bf16 models more slowly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from fmnist.costing.inputs import TrainingRun
from fmnist.costing.prices import Prices
from fmnist.costing.serving import MACHINES

INSTANCES: dict[str, tuple[str, str, str | None]] = {
    "e2-standard-4": (
        "Compute Engine",
        "compute_e2_standard_4_hour",
        "compute_e2_standard_4_spot_hour",
    ),
    "n2-standard-4": (
        "Compute Engine",
        "compute_n2_standard_4_hour",
        "compute_n2_standard_4_spot_hour",
    ),
    "n2-standard-8": (
        "Compute Engine",
        "compute_n2_standard_8_hour",
        "compute_n2_standard_8_spot_hour",
    ),
    "n1-standard-4": ("Vertex AI custom training", "vertex_training_n1_standard_4_hour", None),
}
"""Instance -> (service, on-demand price, spot price or None)."""


@dataclass(frozen=True)
class TrainingAssumptions:
    """The training figures that are neither measured nor prices (options)."""

    startup_minutes: float = 3.0
    spot_rerun_factor: float = 1.1

    def as_dict(self) -> dict[str, Any]:
        """The assumptions as written to the result."""
        return asdict(self)


def run_cost(run: TrainingRun, instance: str, p: Prices, a: TrainingAssumptions) -> dict[str, Any]:
    """Hours and USD of one run of ``run`` on ``instance``, on demand and on spot."""
    service, on_demand, spot = INSTANCES[instance]
    vcpus = MACHINES[instance][0]
    hours = run.vcpu_seconds / vcpus / 3600 + a.startup_minutes / 60
    return {
        "service": service,
        "vcpus": vcpus,
        "hours": hours,
        "on_demand_usd": hours * p[on_demand],
        "spot_usd": None if spot is None else hours * a.spot_rerun_factor * p[spot],
    }


def training_costs(
    runs: list[TrainingRun], p: Prices, a: TrainingAssumptions
) -> list[dict[str, Any]]:
    """Every measured run on every instance type of :data:`INSTANCES`."""
    return [
        {
            "model": run.model,
            "how": run.preset_command,
            "local_seconds": run.train_seconds,
            "local_threads": run.threads,
            "vcpu_seconds": run.vcpu_seconds,
            "measured_at": run.measured_at,
            "machine": run.machine,
            "instances": {name: run_cost(run, name, p, a) for name in INSTANCES},
        }
        for run in runs
    ]
