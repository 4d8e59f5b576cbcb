"""The Terraform of the ``gcp`` profile (``infrastructure/terraform``): formatted, parsed,
cross-referenced, held to the security policy and scanned by checkov.

Terraform's providers cannot be downloaded here, so ``terraform validate`` and ``plan`` do not
run (docs/gcp.md says how to run them where the providers are reachable). What runs instead:
``terraform fmt -check`` (the real binary; missing, it skips, which fails under ``CI=true``);
every ``.tf`` file parsed with python-hcl2; the references ``terraform validate`` would check
(module inputs and outputs, ``var.``/``local.``/resource references, ``file()`` paths); the
BigQuery tables against the code's own schemas (``fmnist.analytics.tables``); the settings the
workloads get against fmnist's settings model; the policy (no public access but the one
documented invoker, uniform access, public access prevention and CMEK on every bucket, CMEK
wherever the resource supports it, no service account keys); and ``scripts/checkov.sh``.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest
import typer.main
import yaml
from hcl2 import SerializationOptions

from data_paths import missing
from fmnist.analytics.tables import TABLES, schema
from fmnist.cli import app as fmnist_app
from fmnist.config import ENV_NESTED_DELIMITER, ENV_PREFIX, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = REPO_ROOT / "infrastructure" / "terraform"
MODULES = TERRAFORM / "modules"
ENVS = ("dev", "prod")
CODE_SCHEMAS = REPO_ROOT / "src" / "fmnist" / "analytics" / "schemas"

MODULE_NAMES = {
    "project-services",
    "kms",
    "network",
    "iam",
    "storage",
    "bigquery",
    "artifact-registry",
    "pubsub",
    "vertex",
    "cloud-run",
    "cloud-build",
    "scheduler",
    "dataflow",
    "monitoring",
    "budget",
    "secrets",
    "platform",
}
REQUIRED_RESOURCE_TYPES = {
    # project-services, kms
    "google_project_service",
    "google_project_service_identity",
    "google_kms_key_ring",
    "google_kms_crypto_key",
    "google_kms_crypto_key_iam_member",
    # network
    "google_compute_network",
    "google_compute_subnetwork",
    "google_compute_firewall",
    "google_compute_route",
    "google_dns_managed_zone",
    "google_service_networking_connection",
    "google_access_context_manager_service_perimeter",
    # iam
    "google_service_account",
    "google_project_iam_member",
    "google_service_account_iam_member",
    "google_iam_workload_identity_pool",
    "google_iam_workload_identity_pool_provider",
    # storage, bigquery, artifact registry
    "google_storage_bucket",
    "google_storage_bucket_iam_member",
    "google_bigquery_dataset",
    "google_bigquery_table",
    "google_bigquery_dataset_iam_member",
    "google_artifact_registry_repository",
    "google_artifact_registry_repository_iam_member",
    # pubsub
    "google_pubsub_topic",
    "google_pubsub_subscription",
    "google_pubsub_topic_iam_member",
    "google_pubsub_subscription_iam_member",
    # vertex
    "google_vertex_ai_endpoint",
    "google_vertex_ai_feature_online_store",
    "google_vertex_ai_feature_online_store_featureview",
    # cloud run, cloud build, scheduler
    "google_cloud_run_v2_service",
    "google_cloud_run_v2_service_iam_member",
    "google_cloud_run_v2_job",
    "google_cloud_run_v2_job_iam_member",
    "google_cloudbuild_trigger",
    "google_cloud_scheduler_job",
    # monitoring
    "google_monitoring_alert_policy",
    "google_monitoring_notification_channel",
    "google_monitoring_custom_service",
    "google_monitoring_slo",
    "google_monitoring_uptime_check_config",
    "google_monitoring_dashboard",
    "google_logging_metric",
    # budget, secrets
    "google_billing_budget",
    "google_secret_manager_secret",
    "google_secret_manager_secret_iam_member",
}
"""Every kind of resource the issue asks for ("GCP-native paradigm", section 1)."""

PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
PUBLIC_INVOKER = ("cloud-run", "google_cloud_run_v2_service_iam_member", "public_invoker")
"""The one resource allowed to name a public member: the documented, opt-in invoker."""

CMEK_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "google_storage_bucket": ("encryption", "default_kms_key_name"),
    "google_bigquery_dataset": ("default_encryption_configuration", "kms_key_name"),
    "google_bigquery_table": ("encryption_configuration", "kms_key_name"),
    "google_pubsub_topic": ("kms_key_name",),
    "google_artifact_registry_repository": ("kms_key_name",),
    "google_secret_manager_secret": (
        "replication",
        "user_managed",
        "replicas",
        "customer_managed_encryption",
        "kms_key_name",
    ),
    "google_cloud_run_v2_service": ("template", "encryption_key"),
    "google_cloud_run_v2_job": ("template", "template", "encryption_key"),
    "google_vertex_ai_endpoint": ("encryption_spec", "kms_key_name"),
    "google_vertex_ai_feature_online_store": ("encryption_spec", "kms_key_name"),
}
"""Where each resource kind that supports CMEK takes its key."""

FORBIDDEN_PROJECT_ROLES = {
    "roles/owner",
    "roles/editor",
    "roles/iam.serviceAccountUser",
    "roles/iam.serviceAccountTokenCreator",
    "roles/iam.serviceAccountKeyAdmin",
    "roles/storage.admin",
    "roles/storage.objectAdmin",
    "roles/bigquery.admin",
    "roles/secretmanager.secretAccessor",
    "roles/cloudkms.cryptoKeyEncrypterDecrypter",
}
"""Roles never granted on the whole project: too broad, or available on the resource itself."""

MODULE_META_ARGUMENTS = {"source", "version", "providers", "depends_on", "count", "for_each"}
BIGQUERY_TYPES = {
    "STRING",
    "BYTES",
    "INTEGER",
    "INT64",
    "FLOAT",
    "FLOAT64",
    "NUMERIC",
    "BIGNUMERIC",
    "BOOLEAN",
    "BOOL",
    "TIMESTAMP",
    "DATE",
    "TIME",
    "DATETIME",
    "GEOGRAPHY",
    "JSON",
    "RECORD",
    "STRUCT",
}
BIGQUERY_MODES = {"NULLABLE", "REQUIRED", "REPEATED"}

Doc = dict[str, Any]
_OPTIONS = SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)
_FILE_CALL = re.compile(r"\b(?:file|templatefile)\(\s*\"([^\"]*)\"")
_INTERPOLATION = re.compile(r"\$\{(path\.module|local\.[A-Za-z_][\w-]*)\}")
_VAR_REF = re.compile(r"\bvar\.([A-Za-z_][\w-]*)")
_LOCAL_REF = re.compile(r"\blocal\.([A-Za-z_][\w-]*)")
_MODULE_REF = re.compile(r"\bmodule\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)")
_RESOURCE_REF = re.compile(r"(?<![\w.])(data\.)?(google(?:_[a-z0-9]+)+)\.([A-Za-z_][\w-]*)")
_CHECKOV_SKIP = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z0-9_]+)(?::(.*))?")


# --- loading --------------------------------------------------------------------------------


def tf_files() -> list[Path]:
    """Every ``.tf`` file under infrastructure/terraform, sorted."""
    return sorted(TERRAFORM.rglob("*.tf"))


def module_dirs() -> list[Path]:
    """The folders of the reusable modules."""
    return sorted(p for p in MODULES.iterdir() if p.is_dir())


def root_dirs() -> list[Path]:
    """Every Terraform folder: the modules and the environments."""
    return [*module_dirs(), *(TERRAFORM / "envs" / env for env in ENVS)]


@functools.cache
def parse(path: Path) -> Doc:
    """``path`` parsed by python-hcl2 (strings without their quotes, blocks as lists)."""
    parsed: Doc = hcl2.loads(path.read_text(), serialization_options=_OPTIONS)
    return parsed


@functools.cache
def folder(path: Path) -> Doc:
    """The blocks of every ``.tf`` file of ``path``, merged: block kind -> list of blocks."""
    merged: dict[str, list[Any]] = {}
    for file in sorted(path.glob("*.tf")):
        for kind, blocks in parse(file).items():
            merged.setdefault(kind, []).extend(blocks)
    return merged


def named(doc: Doc, kind: str) -> dict[str, Doc]:
    """Blocks of ``kind`` with one label (variable, output, module) by name."""
    return {name: body for block in doc.get(kind, []) for name, body in block.items()}


def resources(doc: Doc, kind: str = "resource") -> Iterator[tuple[str, str, Doc]]:
    """``(type, name, body)`` of every resource (or data source) block of ``doc``."""
    for block in doc.get(kind, []):
        for rtype, by_name in block.items():
            for name, body in by_name.items():
                yield rtype, name, body


def all_resources() -> Iterator[tuple[str, str, str, Doc]]:
    """``(module, type, name, body)`` of every resource of every module."""
    for path in module_dirs():
        for rtype, name, body in resources(folder(path)):
            yield path.name, rtype, name, body


def locals_of(doc: Doc) -> Doc:
    """The ``locals`` of a folder, merged."""
    merged: Doc = {}
    for block in doc.get("locals", []):
        merged.update(block)
    return merged


def strings(value: Any) -> Iterator[str]:
    """Every string inside ``value`` (nested dicts and lists)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def dig(body: Any, path: tuple[str, ...]) -> Any:
    """``body[path[0]][path[1]]...``, unwrapping the one-element lists of nested blocks."""
    node = body
    for key in path:
        while isinstance(node, list) and len(node) == 1:
            node = node[0]
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    while isinstance(node, list) and len(node) == 1:
        node = node[0]
    return node


def resolve_path(text: str, module: Path) -> Path:
    """A ``file()`` argument of ``module`` as a path: ``${path.module}`` and string locals
    substituted."""
    local_values = locals_of(folder(module))
    values: dict[str, str] = {"path.module": str(module)}
    for name, value in local_values.items():
        if isinstance(value, str):
            values[f"local.{name}"] = value
    for _ in range(10):
        refs = _INTERPOLATION.findall(text)
        if not refs:
            break
        for ref in refs:
            assert ref in values, f"{ref} in {text!r} is not a string local of {module.name}"
            text = text.replace(f"${{{ref}}}", values[ref])
    assert "${" not in text, f"cannot resolve the path {text!r} in {module.name}"
    return Path(text).resolve()


def file_references() -> Iterator[tuple[Path, str, Path]]:
    """``(tf file, argument, resolved path)`` of every ``file()``/``templatefile()`` call."""
    for tf in tf_files():
        for match in _FILE_CALL.finditer(tf.read_text()):
            yield tf, match.group(1), resolve_path(match.group(1), tf.parent)


def module_source(caller: Path, body: Doc) -> Path:
    """The folder a module block's relative ``source`` points at."""
    source = str(body["source"])
    assert source.startswith("../"), f"module source {source!r} in {caller} is not local"
    return (caller / source).resolve()


def module_calls() -> Iterator[tuple[Path, str, Doc, Path]]:
    """``(calling folder, module name, block, module folder)`` of every module block."""
    for path in root_dirs():
        for name, body in named(folder(path), "module").items():
            yield path, name, body, module_source(path, body)


def setting_exists(env_name: str) -> bool:
    """Whether ``FMNIST_<SECTION>__<KEY>`` names a field of fmnist's settings model."""
    if not env_name.startswith(ENV_PREFIX):
        return False
    model: Any = Settings
    parts = env_name.removeprefix(ENV_PREFIX).lower().split(ENV_NESTED_DELIMITER)
    for i, part in enumerate(parts):
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return False
        model = fields[part].annotation
        if i < len(parts) - 1 and not hasattr(model, "model_fields"):
            return False
    return True


# --- 1. formatting ---------------------------------------------------------------------------


def test_terraform_fmt_check_passes() -> None:
    """``terraform fmt -check -recursive`` finds nothing to reformat."""
    terraform = shutil.which("terraform")
    if terraform is None:
        missing("terraform not on PATH: `terraform fmt -check` cannot run")
    done = subprocess.run(
        [str(terraform), "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"terraform fmt would change:\n{done.stdout}{done.stderr}"


# --- 2. parsing and layout ---------------------------------------------------------------------


def test_every_tf_file_parses() -> None:
    """Every ``.tf`` file is valid HCL2 (python-hcl2)."""
    files = tf_files()
    assert len(files) > 50
    for path in files:
        assert isinstance(parse(path), dict), path


def test_layout_modules_and_environments() -> None:
    """The issue's modules exist, each with versions, variables, outputs and a main file; each
    environment has a GCS backend configured at init and pinned providers."""
    assert {p.name for p in module_dirs()} == MODULE_NAMES
    for path in module_dirs():
        for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
            assert (path / name).is_file(), f"{path.name}/{name} missing"
    prefixes = set()
    for env in ENVS:
        path = TERRAFORM / "envs" / env
        backends = [b for t in folder(path)["terraform"] for b in t.get("backend", [])]
        assert len(backends) == 1 and set(backends[0]) == {"gcs"}, env
        gcs = backends[0]["gcs"]
        assert "bucket" not in gcs, f"{env}: the state bucket is given with -backend-config"
        prefixes.add(gcs["prefix"])
        assert (path / "backend.hcl.example").is_file()
        assert set(named(folder(path), "module")) == {"platform"}, f"{env} calls only platform"
        assert not folder(path).get("resource"), f"{env} only sets values and calls modules"
    assert len(prefixes) == len(ENVS), "each environment has its own state prefix"


def test_versions_pin_terraform_and_the_google_providers() -> None:
    """Every folder requires Terraform >= 1.6 and constrains google (and google-beta where it
    is used) to one major version, the same everywhere."""
    constraints = set()
    for path in root_dirs():
        blocks = folder(path)["terraform"]
        required = [t["required_version"] for t in blocks if "required_version" in t]
        assert required == [">= 1.6"], path
        providers: Doc = {}
        for t in blocks:
            for block in t.get("required_providers", []):
                providers.update(block)
        assert providers["google"]["source"] == "hashicorp/google", path
        for name, spec in providers.items():
            assert re.fullmatch(r">= \d+\.\d+, < \d+\.0", spec["version"]), (path, name)
            constraints.add(spec["version"])
        text = "".join(p.read_text() for p in path.glob("*.tf"))
        if "google-beta" in text:
            assert providers["google-beta"]["source"] == "hashicorp/google-beta", path
    assert len(constraints) == 1, sorted(constraints)


# --- 3. cross-references ---------------------------------------------------------------------


def test_module_calls_pass_existing_inputs_and_all_required_ones() -> None:
    """Every module block passes only variables its module declares, and every variable
    without a default."""
    calls = list(module_calls())
    assert len(calls) >= len(MODULE_NAMES) - 1 + len(ENVS)
    for caller, name, body, source in calls:
        assert source.is_dir(), f"{caller.name}: module {name} source {source} missing"
        variables = named(folder(source), "variable")
        passed = set(body) - MODULE_META_ARGUMENTS
        unknown = passed - set(variables)
        assert not unknown, f"{caller.name}: module {name} has no variables {sorted(unknown)}"
        required = {v for v, spec in variables.items() if "default" not in spec}
        absent = required - passed
        assert not absent, f"{caller.name}: module {name} needs {sorted(absent)}"


def test_module_outputs_referenced_exist() -> None:
    """Every ``module.<name>.<output>`` refers to a module block of that folder and an output
    that module declares."""
    for path in root_dirs():
        doc = folder(path)
        calls = named(doc, "module")
        for text in strings(doc):
            for module, output in _MODULE_REF.findall(text):
                assert module in calls, f"{path.name}: no module {module} ({text})"
                outputs = named(folder(module_source(path, calls[module])), "output")
                assert output in outputs, f"{path.name}: module {module} has no output {output}"


def test_variables_locals_and_resources_referenced_are_declared() -> None:
    """``var.``, ``local.`` and resource references name something the folder declares (the
    part of ``terraform validate`` that needs no provider schema)."""
    for path in root_dirs():
        doc = folder(path)
        variables = set(named(doc, "variable"))
        local_names = set(locals_of(doc))
        declared = {(t, n) for t, n, _ in resources(doc)}
        data = {(t, n) for t, n, _ in resources(doc, "data")}
        for text in strings(doc):
            for ref in _VAR_REF.findall(text):
                assert ref in variables, f"{path.name}: undeclared var.{ref}"
            for ref in _LOCAL_REF.findall(text):
                assert ref in local_names, f"{path.name}: undeclared local.{ref}"
            for is_data, rtype, name in _RESOURCE_REF.findall(text):
                pool = data if is_data else declared
                assert (rtype, name) in pool, f"{path.name}: undeclared {is_data}{rtype}.{name}"


def test_variables_and_outputs_are_documented() -> None:
    """Every variable has a type and a description, every output a description."""
    for path in root_dirs():
        doc = folder(path)
        for name, spec in named(doc, "variable").items():
            assert spec.get("description"), f"{path.name}: variable {name} undocumented"
            assert spec.get("type"), f"{path.name}: variable {name} untyped"
        for name, spec in named(doc, "output").items():
            assert spec.get("description"), f"{path.name}: output {name} undocumented"


def test_file_references_exist() -> None:
    """Every ``file()`` and ``templatefile()`` path exists, and JSON files parse."""
    refs = list(file_references())
    assert len(refs) >= 7
    for tf, argument, path in refs:
        assert path.is_file(), f"{tf.relative_to(TERRAFORM)}: {argument} -> {path} missing"
        if path.suffix == ".json":
            json.loads(path.read_text())


def test_dashboard_template_renders_to_json() -> None:
    """The dashboard template is JSON whose placeholders are all passed by templatefile()."""
    monitoring = folder(MODULES / "monitoring")
    body = next(b for t, _, b in resources(monitoring) if t == "google_monitoring_dashboard")
    call = re.search(r"templatefile\(\"[^\"]+\",\s*\{(.*)\}\)", body["dashboard_json"], re.S)
    assert call is not None
    passed = set(re.findall(r"([A-Za-z_]\w*)\s*=", call.group(1)))
    template = (MODULES / "monitoring" / "dashboards" / "fmnist-api.json").read_text()
    used = set(re.findall(r"\$\{([A-Za-z_]\w*)\}", template))
    assert used and used <= passed, sorted(used - passed)
    rendered = re.sub(r"\$\{[A-Za-z_]\w*\}", "x", template)
    dashboard = json.loads(rendered)
    assert dashboard["mosaicLayout"]["tiles"]


def test_workload_settings_are_fmnist_settings() -> None:
    """Every FMNIST_* variable the workloads get names a real setting, and together they
    configure every port of the gcp profile."""
    platform = folder(MODULES / "platform")
    env = locals_of(platform)["settings_env"]
    cloud_run = named(platform, "module")["cloud_run"]
    mounts = locals_of(folder(MODULES / "cloud-run"))["mount_env"]
    mount_names = set(re.findall(r"\b(FMNIST_[A-Z_]+)\s*=", mounts))
    assert mount_names == {"FMNIST_SECURITY__KEYS_PATH", "FMNIST_SERVING__MODEL_EXPORT"}
    names = set(env) | set(cloud_run["secret_env"]) | mount_names
    assert all(setting_exists(n) for n in names), sorted(n for n in names if not setting_exists(n))
    assert env["FMNIST_PROFILE"] == "gcp"
    assert {
        "FMNIST_GCP__PROJECT",
        "FMNIST_GCP__REGION",
        "FMNIST_GCP__BUCKET",
        "FMNIST_GCP__BIGQUERY_DATASET",
        "FMNIST_GCP__PUBSUB_TOPIC_PREFIX",
        "FMNIST_GCP__PIPELINE_ROOT",
        "FMNIST_GCP__SERVICE_ACCOUNT",
        "FMNIST_GCP__KMS_KEY",
        "FMNIST_GCP__NETWORK",
    } <= set(env)
    assert not setting_exists("FMNIST_GCP__NO_SUCH_KEY")


# --- 4. BigQuery ------------------------------------------------------------------------------


def bigquery_tables() -> dict[str, tuple[Doc, Path]]:
    """Each table of the bigquery module: its definition and its resolved schema file."""
    module = MODULES / "bigquery"
    tables: dict[str, Doc] = locals_of(folder(module))["tables"]
    found = {}
    for name, spec in tables.items():
        match = _FILE_CALL.search(spec["schema"])
        assert match is not None, f"{name}: schema is not read with file()"
        found[name] = (spec, resolve_path(match.group(1), module))
    return found


def fields(schema_fields: list[Doc]) -> list[tuple[str, str, str]]:
    """``(name, type, mode)`` of each field (nested fields as ``parent.child``)."""
    out = []
    for field in schema_fields:
        out.append((field["name"], field["type"], field.get("mode", "NULLABLE")))
        out.extend((f"{field['name']}.{n}", t, m) for n, t, m in fields(field.get("fields", [])))
    return out


def test_bigquery_tables_the_code_writes_use_the_code_schemas() -> None:
    """Every analytics table of the code (``fmnist.analytics.tables.TABLES``) is a Terraform
    table whose schema is read from the code's own file and equals what the code loads."""
    tables = bigquery_tables()
    for table in TABLES:
        assert table in tables, f"no BigQuery table {table}"
        _, path = tables[table]
        assert path == (CODE_SCHEMAS / f"{table}.json").resolve(), f"{table} reads {path}"
        assert fields(json.loads(path.read_text())) == fields(schema(table))
    copies = {p.name for p in (MODULES / "bigquery" / "schemas").glob("*.json")}
    assert not copies & {p.name for p in CODE_SCHEMAS.glob("*.json")}, "no copies of code schemas"


def test_bigquery_tables_cover_the_issue_and_are_partitioned_and_clustered() -> None:
    """predictions, feedback, features, kpis, drift_history and experiments exist; each is
    partitioned by day on a required TIMESTAMP/DATE column and clustered by model_version where
    the column exists; every schema uses BigQuery's types and modes."""
    tables = bigquery_tables()
    assert {
        "prediction_events",
        "feedback_events",
        "features",
        "kpis",
        "drift_history",
        "experiments",
    } <= set(tables)
    for name, (spec, path) in tables.items():
        columns = {n: (t, m) for n, t, m in fields(json.loads(path.read_text()))}
        assert all(t in BIGQUERY_TYPES and m in BIGQUERY_MODES for t, m in columns.values()), name
        assert columns[spec["partition_field"]] in {("TIMESTAMP", "REQUIRED"), ("DATE", "REQUIRED")}
        clustering = spec["clustering"]
        assert all(c in columns and columns[c][1] != "REPEATED" for c in clustering), name
        assert ("model_version" in clustering) == ("model_version" in columns), name
    module = folder(MODULES / "bigquery")
    table = next(b for t, _, b in resources(module) if t == "google_bigquery_table")
    assert dig(table, ("time_partitioning", "type")) == "DAY"
    assert dig(table, ("time_partitioning", "field")) == "${each.value.partition_field}"
    assert "each.value.clustering" in table["clustering"]


# --- 5. policy --------------------------------------------------------------------------------


def test_required_resource_kinds_exist() -> None:
    """Every kind of resource the issue asks for is defined by some module."""
    present = {rtype for _, rtype, _, _ in all_resources()}
    assert not REQUIRED_RESOURCE_TYPES - present, sorted(REQUIRED_RESOURCE_TYPES - present)


def test_no_public_member_but_the_documented_invoker() -> None:
    """allUsers/allAuthenticatedUsers appear in one resource only, the Cloud Run invoker that
    exists only with ``public_invoker = true`` (default false, and no environment sets it)."""
    public = [
        (module, rtype, name)
        for module, rtype, name, body in all_resources()
        if any(m in s for s in strings(body) for m in PUBLIC_MEMBERS)
    ]
    assert public == [PUBLIC_INVOKER]
    module, rtype, name = PUBLIC_INVOKER
    body = next(b for _, t, n, b in resources_of(module) if (t, n) == (rtype, name))
    assert body["count"] == "${var.public_invoker ? 1 : 0}"
    for path in (MODULES / "cloud-run", MODULES / "platform"):
        assert named(folder(path), "variable")["public_invoker"]["default"] is False
    for env in ENVS:
        assert "public_invoker" not in named(folder(TERRAFORM / "envs" / env), "module")["platform"]


def resources_of(module: str) -> Iterator[tuple[str, str, str, Doc]]:
    """``(module, type, name, body)`` of the resources of one module."""
    return ((module, t, n, b) for t, n, b in resources(folder(MODULES / module)))


def test_buckets_are_private_uniform_and_cmek() -> None:
    """Every bucket: uniform bucket-level access, public access prevention enforced, a CMEK
    key, versioning, lifecycle rules, and access logs (except the log bucket itself)."""
    buckets = [(m, n, b) for m, t, n, b in all_resources() if t == "google_storage_bucket"]
    assert len(buckets) >= 2
    for module, name, body in buckets:
        where = f"{module}: google_storage_bucket.{name}"
        assert body["uniform_bucket_level_access"] is True, where
        assert body["public_access_prevention"] == "enforced", where
        assert dig(body, ("encryption", "default_kms_key_name")), where
        assert dig(body, ("versioning", "enabled")) not in (None, False), where
        assert body.get("lifecycle_rule") or body.get("dynamic"), where
        assert body.get("logging") or name == "access_logs", where
    storage = locals_of(folder(MODULES / "storage"))["buckets"]
    assert {"data-lake", "artifacts", "pipeline-root"} <= set(storage)
    assert all(spec["versioning"] is True and spec["rules"] for spec in storage.values())


def test_cmek_wherever_supported() -> None:
    """Every resource kind that takes a customer-managed key is given one, and the keys
    rotate at least every 90 days."""
    for module, rtype, name, body in all_resources():
        if rtype in CMEK_ATTRIBUTES:
            assert dig(body, CMEK_ATTRIBUTES[rtype]), f"{module}: {rtype}.{name} has no CMEK"
    kms = named(folder(MODULES / "kms"), "variable")
    assert kms["rotation_period"]["default"] == "7776000s"
    key = next(b for _, t, _, b in resources_of("kms") if t == "google_kms_crypto_key")
    assert key["rotation_period"] == "${var.rotation_period}"


def test_least_privilege_identities() -> None:
    """One service account per workload; no broad role on the project; no service account
    keys; the serving account only reads (models, artifacts) and is the only secret accessor;
    GitHub Actions authenticate through a pool restricted to the repository."""
    present = {rtype for _, rtype, _, _ in all_resources()}
    assert "google_service_account_key" not in present
    iam = locals_of(folder(MODULES / "iam"))["accounts"]
    assert set(iam) == {"serving", "pipelines", "ci_deployer", "monitor"}
    project_roles = {role for account in iam.values() for role in account["roles"]}
    for _, rtype, _, body in all_resources():
        if rtype != "google_project_iam_member":
            continue
        literal = re.findall(r"\"(roles/[^\"]+)\"", str(body.get("for_each", "")))
        project_roles |= set(literal)
        if not body["role"].startswith("${"):
            project_roles.add(body["role"])
    assert not project_roles & FORBIDDEN_PROJECT_ROLES, sorted(
        project_roles & FORBIDDEN_PROJECT_ROLES
    )

    platform = named(folder(MODULES / "platform"), "module")
    serving = 'module.iam.members["serving"]'
    serving_bucket_roles = {
        g["role"] for g in platform["storage"]["bucket_iam"].values() if serving in g["member"]
    }
    assert serving_bucket_roles == {"roles/storage.objectViewer"}
    assert set(platform["secrets"]["accessors"]) == {"serving"}
    assert serving in platform["secrets"]["accessors"]["serving"]

    provider = next(
        b for _, t, _, b in resources_of("iam") if t == "google_iam_workload_identity_pool_provider"
    )
    assert "assertion.repository == '${var.github_repository}'" in provider["attribute_condition"]
    assert "assertion.sub == 'repo:${var.github_repository}:" in provider["attribute_condition"]
    assert dig(provider, ("oidc", "issuer_uri")) == "https://token.actions.githubusercontent.com"


def test_cloud_run_service_probes_canary_and_secrets() -> None:
    """The API's service: startup probe on /readyz, liveness on /healthz, Direct VPC egress,
    autoscaling bounds, a canary traffic split, the admin token from Secret Manager."""
    service = next(
        b for _, t, _, b in resources_of("cloud-run") if t == "google_cloud_run_v2_service"
    )
    container = dig(service, ("template", "containers"))
    assert dig(container, ("startup_probe", "http_get", "path")) == "/readyz"
    assert dig(container, ("liveness_probe", "http_get", "path")) == "/healthz"
    assert dig(service, ("template", "vpc_access", "network_interfaces", "subnetwork"))
    assert dig(service, ("template", "scaling", "max_instance_count"))
    traffic = [d["traffic"] for d in service["dynamic"] if "traffic" in d]
    types = {dig(t, ("content", "type")) for t in traffic}
    assert types == {
        "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST",
        "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
    }
    tags = {dig(t, ("content", "tag")) for t in traffic} - {None}
    assert tags == {"canary", "stable"}
    platform = named(folder(MODULES / "platform"), "module")["cloud_run"]
    assert "FMNIST_SERVING__ADMIN_TOKEN" in platform["secret_env"]


def parse_fmnist(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Parse ``fmnist ARGV`` with the real CLI (nothing runs): the command path and its
    parameters; an unknown command, option or bad value raises the CLI's usage error."""
    command: Any = typer.main.get_command(fmnist_app)
    context = command.make_context("fmnist", argv[:1])
    rest, path = list(argv), list[str]()
    while hasattr(command, "get_command"):  # a group: the next word names a command
        name, rest = rest[0], rest[1:]
        sub = command.get_command(context, name)
        assert sub is not None, f"fmnist {' '.join(path)} has no command {name!r}"
        path.append(name)
        context = sub.make_context(
            name, rest[:1] if hasattr(sub, "get_command") else rest, parent=context
        )
        command = sub
    return path, dict(context.params)


def test_scheduled_jobs_run_the_monitor_and_the_retrain_commands() -> None:
    """Cloud Scheduler starts Cloud Run jobs for ``fmnist monitor run --once``, the analytics
    consumer and ``fmnist retrain``: command lines the real CLI accepts."""
    jobs = named(folder(MODULES / "platform"), "module")["scheduler"]["jobs"]
    commands = {name: parse_fmnist(spec["args"]) for name, spec in jobs.items()}
    assert set(commands) == {"drift-check", "analytics-consume", "retrain"}
    path, params = commands["drift-check"]
    assert path == ["monitor", "run"]
    assert params["once"] is True
    assert params["port"] == 0
    path, params = commands["analytics-consume"]
    assert path == ["events", "consume"]
    assert params["once"] is True
    assert params["relay"] is False
    path, params = commands["retrain"]
    assert path == ["retrain"]
    assert params["as_json"] is True


def test_monitoring_alerts_slo_and_burn_rates() -> None:
    """Alerts on p95 latency, 5xx rate, the drift gauge of Managed Prometheus and uptime; an
    availability SLO of 99.9% with the SRE workbook's burn-rate pairs (1h/5m at 14.4x,
    6h/30m at 6x); the drift gauge is the one the monitor exports."""
    module = folder(MODULES / "monitoring")
    variables = named(module, "variable")
    assert variables["slo_goal"]["default"] == 0.999
    metrics_source = (REPO_ROOT / "src" / "fmnist" / "monitoring" / "metrics.py").read_text()
    assert f'"{variables["drift_metric"]["default"]}"' in metrics_source
    rules = (REPO_ROOT / "monitoring" / "prometheus" / "rules" / "fmnist-alerts.yml").read_text()
    assert variables["drift_metric"]["default"] in rules
    burn = locals_of(module)["burn_rate_alerts"]
    pairs = {(b["long"], b["short"], float(b["threshold"])) for b in burn.values()}
    assert pairs == {("60m", "5m", 14.4), ("360m", "30m", 6.0)}
    policies = {n: b for t, n, b in resources(module) if t == "google_monitoring_alert_policy"}
    assert {"latency_p95", "error_rate", "drift", "uptime", "burn_rate"} <= set(policies)
    drift_filter = dig(policies["drift"], ("conditions", "condition_threshold", "filter"))
    assert "prometheus.googleapis.com/${var.drift_metric}/gauge" in drift_filter
    assert policies["burn_rate"]["combiner"] == "AND"
    uptime = next(
        b for t, _, b in resources(module) if t == "google_monitoring_uptime_check_config"
    )
    assert dig(uptime, ("http_check", "path")) == "/healthz"


def test_pubsub_topics_have_dead_letters_and_retries() -> None:
    """The event topics (those of fmnist.streaming.envelope) get dead-letter topics, retry
    policies and the Pub/Sub agent's forwarding grants."""
    from fmnist.streaming.envelope import FEEDBACK_TOPIC, PREDICTIONS_TOPIC

    module = folder(MODULES / "pubsub")
    assert named(module, "variable")["topics"]["default"] == [PREDICTIONS_TOPIC, FEEDBACK_TOPIC]
    subscription = next(
        b for t, n, b in resources(module) if (t, n) == ("google_pubsub_subscription", "this")
    )
    assert dig(subscription, ("dead_letter_policy", "dead_letter_topic"))
    assert dig(subscription, ("retry_policy", "minimum_backoff"))
    grants = {(t, n) for t, n, _ in resources(module)}
    assert ("google_pubsub_topic_iam_member", "dead_letter_publisher") in grants
    assert ("google_pubsub_subscription_iam_member", "dead_letter_subscriber") in grants


def test_cloud_build_triggers_run_the_repository_build_config() -> None:
    """The triggers (main and release tags) run cloudbuild.yaml at the repository root as the
    CI deployer, passing only substitutions the build declares (it sets MUST_MATCH)."""
    module = folder(MODULES / "cloud-build")
    triggers = locals_of(module)["triggers"]
    assert triggers["main"]["branch"] == "${var.main_branch}"
    assert triggers["release"]["tag"] == "${var.release_tag_pattern}"
    config = named(module, "variable")["build_config"]["default"]
    build = yaml.safe_load((REPO_ROOT / config).read_text())
    passed = set(named(folder(MODULES / "platform"), "module")["cloud_build"]["substitutions"])
    assert passed, "the platform passes the environment's substitutions"
    assert passed <= set(build.get("substitutions", {})), sorted(
        passed - set(build["substitutions"])
    )
    call = named(folder(MODULES / "platform"), "module")["cloud_build"]
    assert call["service_account"] == '${module.iam.emails["ci_deployer"]}'


def test_checkov_skips_carry_a_reason() -> None:
    """Every ``#checkov:skip`` names its check and says why."""
    skips = [
        (tf, m.group(1), (m.group(2) or "").strip())
        for tf in tf_files()
        for m in _CHECKOV_SKIP.finditer(tf.read_text())
    ]
    for tf, check, reason in skips:
        assert len(reason) >= 20, f"{tf.relative_to(TERRAFORM)}: skip of {check} without a reason"


# --- 6. checkov ---------------------------------------------------------------------------------


@pytest.mark.gcp  # builds checkov's own environment the first time (a minute or two)
def test_checkov_reports_no_failed_check() -> None:
    """``scripts/checkov.sh`` (checkov in its own environment, offline) fails no check."""
    if shutil.which("python3.11") is None and not (REPO_ROOT / ".venv-checkov").is_dir():
        missing("python3.11 not on PATH: scripts/checkov.sh cannot create .venv-checkov")
    done = subprocess.run(
        [str(REPO_ROOT / "scripts" / "checkov.sh"), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=REPO_ROOT,
    )
    start = done.stdout.find("{")
    assert start >= 0, f"checkov printed no report (exit {done.returncode}):\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout[start:])
    summary = report["summary"]
    print(f"checkov {summary.get('checkov_version')}: {summary}")
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100
    assert done.returncode == 0, done.stderr[-3000:]
