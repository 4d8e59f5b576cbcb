"""Vertex AI Pipelines: the compiled pipelines as ``PipelineJob`` and ``PipelineJobSchedule``.

:func:`job_arguments` turns the settings (project, region, pipeline root, CMEK key, labels)
into the arguments of :class:`google.cloud.aiplatform.PipelineJob`; :func:`submit` builds the
job and submits it as the configured service account, in the configured VPC. Schedules are
code too (:data:`SCHEDULES`): the weekly retrain and the hourly drift check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmnist.errors import ConfigError

if TYPE_CHECKING:
    from fmnist.config import GcpSettings


@dataclass(frozen=True)
class Schedule:
    """A pipeline run on a cron schedule."""

    name: str
    pipeline: str
    cron: str
    parameters: dict[str, Any]


SCHEDULES: tuple[Schedule, ...] = (
    Schedule("retrain-weekly", "training", "0 3 * * 1", {"preset": "default", "promote": False}),
    Schedule("drift-check-hourly", "drift-check", "17 * * * *", {}),
)
"""Locally the monitor's own loop does both (``drift.interval_s``,
``retraining.schedule_interval_h``); on Vertex AI these schedules do."""


def _required(gcp: GcpSettings) -> tuple[str, str]:
    missing = [k for k in ("project", "pipeline_root") if not getattr(gcp, k)]
    if missing:
        raise ConfigError(f"a Vertex AI pipeline job needs gcp.{' and gcp.'.join(missing)}")
    if not str(gcp.pipeline_root).startswith("gs://"):
        raise ConfigError(f"gcp.pipeline_root must be a gs:// URL, got {gcp.pipeline_root!r}")
    return str(gcp.project), str(gcp.pipeline_root)


def job_arguments(
    gcp: GcpSettings, pipeline: str, template: Path, parameters: dict[str, Any]
) -> dict[str, Any]:
    """The keyword arguments of ``aiplatform.PipelineJob`` for ``pipeline``."""
    project, root = _required(gcp)
    return {
        "display_name": f"fmnist-{pipeline}",
        "template_path": str(template),
        "pipeline_root": root,
        "parameter_values": parameters,
        "enable_caching": False,
        "encryption_spec_key_name": gcp.kms_key,
        "labels": {**gcp.labels, "pipeline": pipeline},
        "project": project,
        "location": gcp.region,
    }


def submit_arguments(gcp: GcpSettings) -> dict[str, Any]:
    """The keyword arguments of ``PipelineJob.submit``: identity and network."""
    return {"service_account": gcp.service_account, "network": gcp.network}


def submit(gcp: GcpSettings, pipeline: str, template: Path, parameters: dict[str, Any]) -> str:
    """Create and submit the job on Vertex AI; its resource name."""
    from google.cloud import aiplatform

    job = aiplatform.PipelineJob(**job_arguments(gcp, pipeline, template, parameters))
    job.submit(**submit_arguments(gcp))
    return str(job.resource_name)


def create_schedules(gcp: GcpSettings, templates: dict[str, Path]) -> list[str]:
    """Create every schedule of :data:`SCHEDULES` on Vertex AI; their resource names."""
    from google.cloud import aiplatform

    names = []
    for schedule in SCHEDULES:
        job = aiplatform.PipelineJob(
            **job_arguments(
                gcp, schedule.pipeline, templates[schedule.pipeline], schedule.parameters
            )
        )
        created = aiplatform.PipelineJobSchedule(
            pipeline_job=job, display_name=f"fmnist-{schedule.name}", location=gcp.region
        )
        created.create(cron=schedule.cron, max_concurrent_run_count=1, **submit_arguments(gcp))
        names.append(str(created.resource_name))
    return names


def training_job_arguments(
    gcp: GcpSettings, *, preset: str, replicas: int, machine_type: str = "n2-standard-8"
) -> dict[str, Any]:
    """The keyword arguments of ``aiplatform.CustomJob`` for distributed training: one worker
    pool of ``replicas`` machines running the trainer image's ``fmnist train`` (the image of
    the pipelines, ``FMNIST_PIPELINE_IMAGE``). Vertex AI sets
    ``MASTER_ADDR``/``RANK``/``WORLD_SIZE``-style cluster variables for PyTorch jobs; the
    command runs ``torchrun`` over them (one process per machine, gloo on CPU)."""
    from fmnist.kubeflow.components import pipeline_image

    project, root = _required(gcp)
    image = pipeline_image()
    command = [
        "torchrun",
        f"--nnodes={replicas}",
        "--nproc-per-node=1",
        "--rdzv-backend=c10d",
        '--rdzv-endpoint="${MASTER_ADDR}:${MASTER_PORT}"',
        "-m",
        "fmnist",
        "train",
        "--preset",
        preset,
        "--no-progress",
    ]
    pool = {
        "machine_spec": {"machine_type": machine_type},
        "replica_count": 1,
        "container_spec": {"image_uri": image, "command": ["sh", "-c", " ".join(command)]},
    }
    pools = [pool] + ([{**pool, "replica_count": replicas - 1}] if replicas > 1 else [])
    return {
        "display_name": f"fmnist-train-{preset}",
        "worker_pool_specs": pools,
        "base_output_dir": f"{root.rstrip('/')}/training",
        "project": project,
        "location": gcp.region,
        "labels": {**gcp.labels, "step": "train"},
        "encryption_spec_key_name": gcp.kms_key,
    }
