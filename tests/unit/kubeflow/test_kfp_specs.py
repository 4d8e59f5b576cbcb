"""The KFP pipelines: compiled specs are current, every step is a component, and the Vertex AI
and Kubeflow adapters call the real SDK classes with the right arguments (autospecced)."""

from __future__ import annotations

import json
from pathlib import Path
from unittest.mock import create_autospec

import kfp
import pytest
import yaml
from google.cloud import aiplatform
from typer.testing import CliRunner

from fmnist import cli
from fmnist.composition import build_services
from fmnist.config import GcpSettings, Settings
from fmnist.errors import ConfigError
from fmnist.kubeflow.components import IMAGE_ENV
from fmnist.kubeflow.runners import (
    KfpLocalRunner,
    KubeflowRunner,
    VertexPipelinesRunner,
    compile_pipeline,
    known_pipelines,
    pipeline_arguments,
)
from fmnist.kubeflow.vertex import SCHEDULES, create_schedules, job_arguments, submit

COMMITTED = Path(__file__).resolve().parents[3] / "pipelines"
GCP = GcpSettings(
    project="fmnist-prod",
    region="europe-west4",
    pipeline_root="gs://fmnist-prod-pipelines/root",
    service_account="pipelines@fmnist-prod.iam.gserviceaccount.com",
    kms_key="projects/fmnist-prod/locations/europe-west4/keyRings/fmnist/cryptoKeys/data",
    network="projects/123/global/networks/fmnist",
)


@pytest.fixture(autouse=True)
def _default_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(IMAGE_ENV, raising=False)


@pytest.mark.parametrize("name", ["training", "batch-prediction", "drift-check"])
def test_the_committed_specs_are_current(name: str, tmp_path: Path) -> None:
    fresh = compile_pipeline(name, tmp_path / f"{name}.yaml").read_text()
    committed = (COMMITTED / f"{name}.yaml").read_text()
    assert fresh == committed, (
        f"pipelines/{name}.yaml is stale: fmnist pipeline compile --all pipelines"
    )


def test_every_training_step_is_a_component_in_the_project_image() -> None:
    spec = yaml.safe_load((COMMITTED / "training.yaml").read_text())
    assert set(spec["components"]) == {"comp-snapshot", "comp-train", "comp-evaluate-and-register"}
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["train"]["dependentTasks"] == ["snapshot"]
    assert tasks["evaluate-and-register"]["dependentTasks"] == ["train"]
    executors = spec["deploymentSpec"]["executors"].values()
    assert {e["container"]["image"] for e in executors} == {f"fmnist-trainer:{kfp_version()}"}
    outputs = spec["root"]["outputDefinitions"]["parameters"]
    assert set(outputs) == {"run_id", "accuracy", "gates_passed", "version"}


def kfp_version() -> str:
    from fmnist import __version__

    return __version__


def test_the_job_carries_project_region_root_cmek_and_labels(tmp_path: Path) -> None:
    template = compile_pipeline("training", tmp_path / "training.yaml")
    arguments = job_arguments(GCP, "training", template, {"preset": "quick"})
    job = create_autospec(aiplatform.PipelineJob, instance=True)
    constructor = create_autospec(aiplatform.PipelineJob, return_value=job)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aiplatform, "PipelineJob", constructor)
        submit(GCP, "training", template, {"preset": "quick"})
    constructor.assert_called_once_with(**arguments)
    assert arguments["encryption_spec_key_name"] == GCP.kms_key
    assert arguments["labels"] == {"app": "fmnist", "pipeline": "training"}
    assert (arguments["project"], arguments["location"]) == ("fmnist-prod", "europe-west4")
    job.submit.assert_called_once_with(service_account=GCP.service_account, network=GCP.network)


def test_schedules_are_code_weekly_retrain_and_hourly_drift(tmp_path: Path) -> None:
    templates = {
        s.pipeline: compile_pipeline(s.pipeline, tmp_path / f"{s.pipeline}.yaml") for s in SCHEDULES
    }
    job_class = create_autospec(aiplatform.PipelineJob)
    schedule = create_autospec(aiplatform.PipelineJobSchedule, instance=True)
    schedule_class = create_autospec(aiplatform.PipelineJobSchedule, return_value=schedule)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aiplatform, "PipelineJob", job_class)
        mp.setattr(aiplatform, "PipelineJobSchedule", schedule_class)
        create_schedules(GCP, templates)
    crons = [c.kwargs["cron"] for c in schedule.create.call_args_list]
    assert crons == ["0 3 * * 1", "17 * * * *"]
    assert {c.kwargs["display_name"] for c in schedule_class.call_args_list} == {
        "fmnist-retrain-weekly",
        "fmnist-drift-check-hourly",
    }


def test_a_job_without_project_or_a_gs_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"gcp\.project and gcp\.pipeline_root"):
        job_arguments(GcpSettings(), "training", tmp_path, {})
    with pytest.raises(ConfigError, match="gs:// URL"):
        job_arguments(GCP.model_copy(update={"pipeline_root": "/tmp/x"}), "training", tmp_path, {})


def test_submit_dry_run_prints_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "PROJECT": "fmnist-prod",
        "PIPELINE_ROOT": "gs://b/root",
        "KMS_KEY": "k",
    }.items():
        monkeypatch.setenv(f"FMNIST_GCP__{key}", value)
    out = CliRunner().invoke(
        cli.app,
        ["pipeline", "submit", "--target", "vertex", "--param", "preset=tiny", "--dry-run"],
    )
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert payload["job"]["parameter_values"] == {"preset": "tiny"}
    assert payload["job"]["encryption_spec_key_name"] == "k"
    assert payload["submit"] == {"service_account": None, "network": None}


def test_the_orchestration_port_chooses_the_kfp_adapters(tmp_path: Path) -> None:
    def runner(adapter: str, **extra: object) -> object:
        settings = Settings(home=tmp_path, **extra)  # type: ignore[arg-type]
        settings = settings.model_copy(
            update={"ports": settings.ports.model_copy(update={"orchestration": adapter})}
        )
        return build_services(settings).orchestrator

    assert isinstance(runner("kfp-local"), KfpLocalRunner)
    assert isinstance(runner("vertex-pipelines"), VertexPipelinesRunner)
    kubeflow = runner("kubeflow", agnostic={"kubeflow_host": "http://kfp.example:80"})
    assert isinstance(kubeflow, KubeflowRunner)
    assert (
        kubeflow.pipelines() == known_pipelines() == ["batch-prediction", "drift-check", "training"]
    )
    assert pipeline_arguments("training", {"preset": "x", "show_progress": True}) == {"preset": "x"}


def test_the_kubeflow_adapter_submits_a_run(tmp_path: Path) -> None:
    client = create_autospec(kfp.Client, instance=True)
    client.create_run_from_pipeline_package.return_value.run_id = "run-42"
    settings = Settings(home=tmp_path, agnostic={"kubeflow_host": "http://kfp.example:80"})  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kfp, "Client", create_autospec(kfp.Client, return_value=client))
        run = KubeflowRunner(settings).run("training", {"preset": "quick", "show_progress": False})
    assert (run.run_id, run.state) == ("run-42", "SUBMITTED")
    call = client.create_run_from_pipeline_package.call_args
    assert call.kwargs["arguments"] == {"preset": "quick"}
    assert call.kwargs["experiment_name"] == "fmnist"


def test_distributed_training_as_a_vertex_custom_job() -> None:
    from fmnist.kubeflow.vertex import training_job_arguments

    arguments = training_job_arguments(GCP, preset="default", replicas=3)
    job = create_autospec(aiplatform.CustomJob, instance=True)
    constructor = create_autospec(aiplatform.CustomJob, return_value=job)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aiplatform, "CustomJob", constructor)
        aiplatform.CustomJob(**arguments).submit(service_account=GCP.service_account)
    constructor.assert_called_once_with(**arguments)  # the real signature accepts them
    chief, workers = arguments["worker_pool_specs"]
    assert (chief["replica_count"], workers["replica_count"]) == (1, 2)
    assert "--nnodes=3" in chief["container_spec"]["command"][-1]
    assert arguments["encryption_spec_key_name"] == GCP.kms_key
