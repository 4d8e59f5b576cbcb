"""The composition root: one adapter per port, chosen by profile and overrides, built lazily."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fmnist.cli import app
from fmnist.composition import PROFILE_ADAPTERS, build_services, choose_adapters
from fmnist.config import Settings
from fmnist.platform.errors import AdapterUnavailableError
from fmnist.platform.events import LocalEventQueue
from fmnist.platform.orchestration import UnknownPipelineError
from fmnist.platform.services import PORTS

SRC = Path(__file__).resolve().parents[2] / "src" / "fmnist"
ADAPTER_CLASSES = (
    "MlflowRegistry",
    "FsspecStorage",
    "DuckDbAnalytics",
    "LocalEventQueue",
    "LocalRunner",
)


def adapters(settings: Settings) -> dict[str, str]:
    return {c.port: c.adapter for c in choose_adapters(settings)}


def test_every_profile_names_an_adapter_for_every_port() -> None:
    for profile, chosen in PROFILE_ADAPTERS.items():
        assert set(chosen) == set(PORTS), profile


def test_local_profile_is_embedded(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert adapters(settings) == {
        "storage": "local",
        "registry": "mlflow",
        "analytics": "duckdb",
        "events": "local-queue",
        "orchestration": "local",
    }
    reasons = {c.reason for c in choose_adapters(settings)}
    assert reasons == {"profile local default"}


def test_gcp_profile_chooses_the_gcp_adapters_without_a_project() -> None:
    chosen = adapters(Settings(profile="gcp"))
    assert chosen == {
        "storage": "gcs",
        "registry": "vertex",
        "analytics": "bigquery",
        "events": "pubsub",
        "orchestration": "vertex-pipelines",
    }


def test_override_wins_and_says_so(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "profile": "gcp",
            "home": tmp_path,
            "ports": {"registry": "mlflow", "events": "local-queue"},
        }
    )
    by_port = {c.port: c for c in choose_adapters(settings)}
    assert by_port["registry"].adapter == "mlflow"
    assert by_port["registry"].reason == "override ports.registry"
    assert by_port["events"].adapter == "local-queue"
    assert by_port["analytics"].adapter == "bigquery"


def test_lake_url_scheme_chooses_the_storage_adapter(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, lake_url="s3://bucket/lake")
    choice = next(c for c in choose_adapters(settings) if c.port == "storage")
    assert (choice.adapter, choice.reason) == ("s3", "lake_url scheme s3://")


def test_targets_mask_credentials(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {"home": tmp_path, "tracking": {"tracking_uri": "postgresql://mlflow:hunter2@db/mlflow"}}
    )
    registry = next(c for c in choose_adapters(settings) if c.port == "registry")
    assert registry.target == "postgresql://***@db/mlflow"


def test_adapters_are_built_once_on_first_use(tmp_path: Path) -> None:
    services = build_services(Settings(home=tmp_path))
    assert not (services.settings.home / "events").exists()  # nothing built yet
    events = services.events
    assert isinstance(events, LocalEventQueue)
    assert services.events is events
    assert services.storage is services.storage
    assert services.storage.url == str(services.settings.home / "lake")


def test_registry_binds_model_and_experiment(tmp_path: Path) -> None:
    services = build_services(Settings(home=tmp_path))
    default = services.registry()
    other = services.registry("fmnist-photos", experiment="fmnist-real-world")
    assert default.model_name == "fmnist-classifier"
    assert default.experiment_name == "fmnist"
    assert (other.model_name, other.experiment_name) == ("fmnist-photos", "fmnist-real-world")


def test_unavailable_cloud_adapters_fail_with_instructions(tmp_path: Path) -> None:
    services = build_services(Settings(profile="gcp", home=tmp_path, lake_url=str(tmp_path)))
    with pytest.raises(AdapterUnavailableError, match=r"pip install 'fmnist\[gcp\]'|ports\."):
        services.registry()
    with pytest.raises(AdapterUnavailableError, match=r"pip install 'fmnist\[gcp\]'|ports\."):
        _ = services.events
    with pytest.raises(AdapterUnavailableError, match=r"ports\.analytics|fmnist\[gcp\]"):
        _ = services.analytics


def test_gcs_lake_without_gcsfs_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(  # an installation without the gcp extra
        importlib.util, "find_spec", lambda name, *a: None if name == "gcsfs" else real(name, *a)
    )
    services = build_services(Settings(home=tmp_path, lake_url="gs://bucket/lake"))
    with pytest.raises(AdapterUnavailableError, match=r"gcsfs.*pip install 'fmnist\[gcp\]'"):
        _ = services.storage


def test_local_runner_knows_the_training_pipeline(tmp_path: Path) -> None:
    runner = build_services(Settings(home=tmp_path)).orchestrator
    assert runner.pipelines() == ["training"]
    with pytest.raises(UnknownPipelineError, match="unknown pipeline 'nope'"):
        runner.run("nope", {})


def test_config_show_lists_ports_and_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMNIST_PROFILE", "gcp")
    monkeypatch.setenv("FMNIST_SERVING__ADMIN_TOKEN", "s3cr3t-admin")
    monkeypatch.setenv("FMNIST_TRACKING__TRACKING_URI", "https://user:pw1234@mlflow.example/")
    result = CliRunner().invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert "s3cr3t-admin" not in result.output and "pw1234" not in result.output
    payload = json.loads(result.output)
    assert {p: a["adapter"] for p, a in payload["adapters"].items()} == PROFILE_ADAPTERS["gcp"]
    assert payload["serving.admin_token"]["value"] == "**********"
    table = CliRunner().invoke(app, ["config", "show"], terminal_width=200)
    assert table.exit_code == 0, table.output
    assert "s3cr3t-admin" not in table.output
    for port in PORTS:
        assert re.search(rf"{port}\s", table.output)


def test_only_the_composition_root_constructs_adapters() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "composition.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for name in ADAPTER_CLASSES:
                if re.search(rf"(?<![\w.]){name}\(", code) and not code.lstrip().startswith(
                    ("class ", "def ")
                ):
                    offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert offenders == []
