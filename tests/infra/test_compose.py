"""docker-compose.yml: valid against the Compose Specification, every long-running service health
checked, dependencies on health, named volumes, pinned images, no secret in the file, mounts that
exist, fmnist settings that load and pick the intended adapters, and a Prometheus config that
promtool accepts with the project's alert rules.

No Docker engine runs here; the CI job "images" also runs ``docker compose config``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from data_paths import missing
from fmnist.composition import choose_adapters
from fmnist.config import load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SCHEMA_FILE = REPO / "services" / "schemas" / "compose-spec.json"
ENV_EXAMPLE = REPO / "services" / "compose" / ".env.example"
PROMETHEUS_CONFIG = REPO / "services" / "compose" / "prometheus.yml"
ONE_SHOTS = {"create-buckets", "trainer"}
FMNIST_SERVICES = {"trainer", "api", "monitor", "events"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY")
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


def compose() -> dict[str, Any]:
    """The compose file as YAML gives it (anchors and merge keys resolved)."""
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    """The services of the compose file."""
    found = compose()["services"]
    assert isinstance(found, dict)
    return found


def env_example() -> dict[str, str]:
    """The variables of services/compose/.env.example."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value: str, variables: dict[str, str]) -> str:
    """``value`` with ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` resolved as compose
    does; a required variable that is unset fails the test."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"]
        if variables.get(name):
            return variables[name]
        assert "?" not in op, f"{name} is required ({arg}) and .env.example does not set it"
        return arg if "-" in op else ""

    return INTERPOLATION.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, interpolated with the example settings."""
    raw = service.get("environment", {})
    assert isinstance(raw, dict), "environment as a mapping"
    variables = env_example()
    return {k: interpolate(str(v), variables) for k, v in raw.items()}


def test_schema_is_the_compose_specification() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["title"] == "Compose Specification"
    jsonschema.validators.validator_for(schema).check_schema(schema)


def test_schema_is_the_recorded_copy() -> None:
    """The vendored schema is the file services/schemas/README.md records (by SHA-256)."""
    digest = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    assert digest in (SCHEMA_FILE.parent / "README.md").read_text(encoding="utf-8")


def test_compose_file_is_valid() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors, errors


def test_schema_rejects_a_broken_file() -> None:
    """The vendored schema is strict: an unknown service key and a bad condition fail."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    broken = copy.deepcopy(compose())
    broken["services"]["api"]["helthcheck"] = {"test": ["CMD", "true"]}
    broken["services"]["api"]["depends_on"]["trainer"]["condition"] = "service_ready"
    messages = " ".join(e.message for e in validator.iter_errors(broken))
    assert "helthcheck" in messages and "service_ready" in messages


def test_expected_services() -> None:
    assert set(services()) == {
        "postgres",
        "minio",
        "create-buckets",
        "mlflow",
        "trainer",
        "api",
        "monitor",
        "events",
        "prometheus",
        "grafana",
    }


def test_long_running_services_have_health_checks_and_restart() -> None:
    for name, service in services().items():
        if name in ONE_SHOTS:
            assert service.get("restart") == "no", name
            assert "healthcheck" not in service, name
            continue
        assert service.get("restart") == "unless-stopped", name
        check = service.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert not check.get("disable", False), name
        for key in ("interval", "timeout", "retries", "start_period"):
            assert key in check, f"{name}: healthcheck.{key}"


def test_dependencies_wait_for_health_or_completion() -> None:
    all_services = services()
    for name, service in all_services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in all_services, f"{name} -> {target}"
            expected = (
                "service_completed_successfully" if target in ONE_SHOTS else "service_healthy"
            )
            assert rule == {"condition": expected}, f"{name} -> {target}: {rule}"


def test_volumes_are_named_or_existing_read_only_files() -> None:
    data = compose()
    declared = set(data["volumes"])
    used = set()
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source, target, *mode = volume.split(":")
            assert target.startswith("/"), volume
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source} does not exist in the repo"
                assert mode == ["ro"], f"{name}: bind mounts are read-only: {volume}"
            else:
                assert source in declared, f"{name}: {source} is not a named volume"
                used.add(source)
    assert used == declared


def test_images_are_pinned() -> None:
    for name, service in services().items():
        image = service["image"]
        if "build" in service:
            assert image == f"fmnist-{service['build']['dockerfile'].split('/')[1]}:compose"
            assert (REPO / service["build"]["dockerfile"]).is_file()
            assert service["build"]["context"] == "."
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image}"
        assert re.search(r"\d+\.\d+|RELEASE\.\d{4}-", tag), f"{name}: {image} is not a version"


def test_no_secret_is_written_in_the_file() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    for name, service in raw["services"].items():
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key):
                assert "${" in str(value), f"{name}: {key} must come from .env"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for value in env_example().values():
        if "change-me" in value:
            assert value not in text


def test_required_variables_are_in_the_example_env() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    required = {m["name"] for m in INTERPOLATION.finditer(text) if m["op"] == ":?"}
    assert required, "no required variable"
    assert required <= set(env_example()), required - set(env_example())
    for service in services().values():
        environment(service)  # interpolation with the example settings succeeds


def test_ports_are_published_on_loopback_only() -> None:
    for name, service in services().items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def _settings_of(service: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = environment(services()[service])
    for key, value in env.items():
        if key.startswith("FMNIST_"):
            monkeypatch.setenv(key, value)
    loaded = load_settings()
    choices = {c.port: (c.adapter, c.target) for c in choose_adapters(loaded.settings)}
    return {port: f"{adapter} {target}" for port, (adapter, target) in choices.items()}


@pytest.mark.parametrize("service", sorted(FMNIST_SERVICES - {"api"}))
def test_fmnist_jobs_use_the_mlflow_server(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    adapters = _settings_of(service, monkeypatch)
    assert adapters["registry"] == "mlflow http://mlflow:5000"
    assert adapters["storage"] == "local /var/lib/fmnist/lake"
    assert adapters["orchestration"].startswith("local ")
    env = environment(services()[service])
    assert env["FMNIST_TRACKING__ARTIFACT_ROOT"].startswith("mlflow-artifacts:")
    assert "FMNIST_SERVING__MODEL_EXPORT" not in env


def test_api_serves_the_exported_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    adapters = _settings_of("api", monkeypatch)
    export = environment(services()["api"])["FMNIST_SERVING__MODEL_EXPORT"]
    assert adapters["registry"] == f"exported {export}"
    trainer = services()["trainer"]
    assert environment(trainer)["MODEL_EXPORT_DIR"] == export
    assert 'fmnist models export --to "$$MODEL_EXPORT_DIR"' in trainer["command"][0]


def test_mlflow_server_uses_postgres_and_s3() -> None:
    env = environment(services()["mlflow"])
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    assert "@postgres:5432/" in env["MLFLOW_BACKEND_STORE_URI"]
    assert env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "mlflow:*" in env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")


def _scrape_targets() -> dict[str, list[str]]:
    """``job_name -> targets`` of services/compose/prometheus.yml."""
    ours = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    return {
        job["job_name"]: [t for config in job["static_configs"] for t in config["targets"]]
        for job in ours["scrape_configs"]
    }


def test_prometheus_scrapes_the_project_jobs() -> None:
    reference = yaml.safe_load(
        (REPO / "monitoring" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    )
    jobs = _scrape_targets()
    assert set(jobs) == {j["job_name"] for j in reference["scrape_configs"]}
    api_port = environment(services()["api"])["PORT"]
    monitor_port = environment(services()["monitor"])["FMNIST_DRIFT__METRICS_PORT"]
    assert jobs["fmnist-api"] == [f"api:{api_port}"]
    assert jobs["fmnist-monitor"] == [f"monitor:{monitor_port}"]


def test_scrape_targets_are_compose_services_on_the_default_network() -> None:
    """Prometheus reaches every target by service name: no shared network namespace, no alias."""
    all_services = services()
    for job, targets in _scrape_targets().items():
        for target in targets:
            host, _, port = target.rpartition(":")
            assert host in all_services, f"{job}: {target} is not a compose service"
            assert port.isdigit(), f"{job}: {target}"
    for name, service in all_services.items():
        assert "network_mode" not in service, f"{name}: network_mode"
        for network in (service.get("networks") or {}).values():
            assert not (network or {}).get("aliases"), f"{name}: network aliases"
    assert "127.0.0.1:9090:9090" in all_services["prometheus"]["ports"]


def test_monitor_gauges_listen_on_every_interface(monkeypatch: pytest.MonkeyPatch) -> None:
    """The monitor's gauges bind 0.0.0.0 (drift.metrics_host, read by fmnist's own loader), so
    Prometheus in its own container can scrape them; its health check still asks 127.0.0.1."""
    monitor = services()["monitor"]
    env = environment(monitor)
    assert env["FMNIST_DRIFT__METRICS_HOST"] == "0.0.0.0"
    for key, value in env.items():
        if key.startswith("FMNIST_"):
            monkeypatch.setenv(key, value)
    drift = load_settings().settings.drift
    assert (drift.metrics_host, str(drift.metrics_port)) == (
        "0.0.0.0",
        env["FMNIST_DRIFT__METRICS_PORT"],
    )
    assert f"127.0.0.1:{drift.metrics_port}/metrics" in " ".join(monitor["healthcheck"]["test"])
    assert "ports" not in monitor, "the gauges are for Prometheus, not published"


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        missing("promtool not installed (scripts/install-prometheus.sh; Debian package prometheus)")
    assert promtool is not None
    # The layout of the container: /etc/prometheus/prometheus.yml and /etc/prometheus/rules/.
    shutil.copy(PROMETHEUS_CONFIG, tmp_path / "prometheus.yml")
    shutil.copytree(REPO / "monitoring" / "prometheus" / "rules", tmp_path / "rules")
    mounts = services()["prometheus"]["volumes"]
    assert "./services/compose/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./monitoring/prometheus/rules:/etc/prometheus/rules:ro" in mounts
    done = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    found = re.search(r"SUCCESS: (\d+) rules found", output)
    assert found and int(found.group(1)) > 0, output


def test_grafana_provisioning_matches_the_mounts() -> None:
    grafana = services()["grafana"]
    root = REPO / "services" / "compose" / "grafana" / "provisioning"
    datasource = yaml.safe_load((root / "datasources" / "prometheus.yml").read_text("utf-8"))
    (source,) = datasource["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"  # the service name, on the default network
    assert "network_mode" not in services()["prometheus"]
    provider = yaml.safe_load((root / "dashboards" / "fmnist.yml").read_text("utf-8"))
    path = provider["providers"][0]["options"]["path"]
    assert f"./dashboards/grafana:{path}:ro" in grafana["volumes"]
    assert (
        "./services/compose/grafana/provisioning:/etc/grafana/provisioning:ro"
        in (grafana["volumes"])
    )
