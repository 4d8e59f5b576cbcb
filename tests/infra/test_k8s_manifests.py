"""The Kubernetes manifests (``infrastructure/k8s``): rendered, validated, held to the policies.

There is no cluster here, so nothing is applied. ``kubectl kustomize`` renders each overlay (a
missing ``kubectl`` skips, which fails under ``CI=true``); core kinds are validated offline
against the Kubernetes OpenAPI schemas of :data:`KUBERNETES_VERSION` (``kubernetes-validate``,
strict: unknown fields fail); the custom resources against the CRD schemas vendored in
``infrastructure/k8s/schemas`` (made strict the same way). The settings, commands and secret
references in the manifests are checked against fmnist itself: its settings loader, its CLI
and ``docs/kubernetes.md``.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import typer.main
import yaml

from fmnist.cli import app as fmnist_app
from fmnist.config import load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S = REPO_ROOT / "infrastructure" / "k8s"
SCHEMAS = K8S / "schemas"
RULES_FILE = REPO_ROOT / "monitoring" / "prometheus" / "rules" / "fmnist-alerts.yml"
DOCS = REPO_ROOT / "docs" / "kubernetes.md"

KUBERNETES_VERSION = "1.32"
NAMESPACE = "fmnist"
OVERLAYS = ("dev", "prod")
TREES = ("base", *(f"overlays/{o}" for o in OVERLAYS))
CRD_SCHEMAS = {
    ("serving.kserve.io/v1beta1", "InferenceService"): "serving.kserve.io_v1beta1_inferenceservice",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_v1_servicemonitor",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_v1_prometheusrule",
}
EXPECTED_KINDS = {
    "Namespace",
    "ServiceAccount",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "CronJob",
    "Job",
    "InferenceService",
    "ServiceMonitor",
    "PrometheusRule",
}
COMMON_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/component",
    "app.kubernetes.io/version",
)
LONG_RUNNING = {"Deployment", "InferenceService"}
EXTERNAL_SECRETS = {"fmnist-secrets", "fmnist-mlflow"}
"""Secrets the manifests use but never contain: created by hand (docs/kubernetes.md)."""

Doc = dict[str, Any]


# --- rendering and lookups -------------------------------------------------------------------


@functools.cache
def _render(tree: str) -> tuple[Doc, ...]:
    """The documents ``kubectl kustomize`` renders for ``tree`` (relative to infrastructure/k8s)."""
    done = subprocess.run(
        ["kubectl", "kustomize", str(K8S / tree)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize {tree} failed:\n{done.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def render(tree: str) -> tuple[Doc, ...]:
    """Rendered documents of ``tree``; skips (a failure under ``CI=true``) without kubectl."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not on PATH: the manifests cannot be rendered")
    return _render(tree)


def find(docs: tuple[Doc, ...], kind: str, name: str | None = None) -> list[Doc]:
    """The documents of ``kind`` (and ``name``, when given)."""
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    """The single document of ``kind`` named ``name``."""
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_specs(docs: tuple[Doc, ...]) -> Iterator[tuple[str, Doc]]:
    """``(kind/name, pod spec)`` of every workload; an InferenceService's predictor is its pod."""
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        spec = doc.get("spec", {})
        if kind in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
            yield f"{kind}/{name}", spec["template"]["spec"]
        elif kind == "CronJob":
            yield f"{kind}/{name}", spec["jobTemplate"]["spec"]["template"]["spec"]
        elif kind == "InferenceService":
            yield f"{kind}/{name}", spec["predictor"]


def containers(pod: Doc) -> list[Doc]:
    """Every container of a pod spec, init containers included."""
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def settings_env(docs: tuple[Doc, ...]) -> dict[str, str]:
    """The data of the generated ConfigMap ``fmnist-config-<hash>``."""
    maps = [d for d in find(docs, "ConfigMap") if d["metadata"]["name"].startswith("fmnist-config")]
    assert len(maps) == 1, "expected one generated fmnist-config ConfigMap"
    data: dict[str, str] = maps[0]["data"]
    return data


def fmnist_argv(container: Doc) -> list[str] | None:
    """The fmnist arguments of a container that runs the ``fmnist`` CLI, else None."""
    argv = [*container.get("command", []), *container.get("args", [])]
    return argv[1:] if argv and argv[0] == "fmnist" else None


# --- schemas --------------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """``schema`` with unknown fields rejected (like ``kubectl apply --validate=strict``).

    Objects with declared properties get ``additionalProperties: false`` unless they keep
    unknown fields; Go's RE2 patterns with a leading ``^(?i)`` are rewritten for Python.
    """
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    pattern = out.get("pattern")
    if isinstance(pattern, str) and pattern.startswith("^(?i)"):
        out["pattern"] = "(?i)^" + pattern.removeprefix("^(?i)")
    return out


@functools.cache
def crd_validator(stem: str) -> Any:
    """A strict JSON Schema validator of the vendored CRD schema ``schemas/<stem>.json``."""
    schema = _strict(json.loads((SCHEMAS / f"{stem}.json").read_text(encoding="utf-8")))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate(doc: Doc) -> None:
    """Validate one document: a vendored CRD schema, else the Kubernetes schemas (strict)."""
    key = (doc["apiVersion"], doc["kind"])
    if key in CRD_SCHEMAS:
        crd_validator(CRD_SCHEMAS[key]).validate(doc)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


# --- rendering and schema validation ---------------------------------------------------------


@pytest.mark.parametrize("tree", TREES)
def test_every_document_is_valid_for_its_schema(tree: str) -> None:
    """Each rendered document validates against its kind's schema; none is left unchecked."""
    docs = render(tree)
    assert len(docs) > 20
    problems = []
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            validate(doc)
        except jsonschema.ValidationError as exc:
            problems.append(f"{where}: {'.'.join(map(str, exc.absolute_path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{where}: no schema ({exc.message})")
    assert not problems, "\n".join(problems)


def test_validators_reject_unknown_fields_and_wrong_types() -> None:
    """The strict validators catch a misspelt field and a wrongly typed value in every schema."""
    docs = render("overlays/prod")
    api = one(docs, "Deployment", "fmnist-api")
    predictor = one(docs, "InferenceService", "fmnist-classifier")
    cases: list[tuple[Doc, list[str], Any]] = [
        (api, ["spec", "replica"], 3),
        (api, ["spec", "replicas"], "3"),
        (predictor, ["spec", "predictor", "minReplica"], 1),
        (predictor, ["spec", "predictor", "minReplicas"], "1"),
        (one(docs, "ServiceMonitor", "fmnist"), ["spec", "endpoint"], []),
        (one(docs, "PrometheusRule", "fmnist-alerts"), ["spec", "groups"], {"name": "x"}),
    ]
    for original, path, value in cases:
        broken = copy.deepcopy(original)
        node = broken
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        with pytest.raises(jsonschema.ValidationError):
            validate(broken)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_holds_every_kind_labels_and_namespace(overlay: str) -> None:
    """All parts of the platform are there, in the fmnist namespace, with the common labels."""
    docs = render(f"overlays/{overlay}")
    assert {d["kind"] for d in docs} >= EXPECTED_KINDS
    assert not find(docs, "Secret"), "secrets are never committed (docs/kubernetes.md)"
    for doc in docs:
        meta = doc["metadata"]
        labels = meta.get("labels", {})
        where = f"{doc['kind']}/{meta['name']}"
        if doc["kind"] == "Namespace":
            assert meta["name"] == NAMESPACE
            assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
            continue
        assert meta.get("namespace") == NAMESPACE, where
        missing = [label for label in COMMON_LABELS if label not in labels]
        assert not missing, f"{where} lacks {missing}"
        assert labels["app.kubernetes.io/part-of"] == "fmnist"
    for where, _ in pod_specs(docs):
        template_labels = _pod_labels(docs, where)
        assert all(label in template_labels for label in COMMON_LABELS), where


def _pod_labels(docs: tuple[Doc, ...], where: str) -> dict[str, str]:
    """The labels of the pods of workload ``where`` (``kind/name``)."""
    kind, name = where.split("/")
    doc = one(docs, kind, name)
    if kind == "InferenceService":
        labels: dict[str, str] = doc["spec"]["predictor"]["labels"]
    elif kind == "CronJob":
        labels = doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    else:
        labels = doc["spec"]["template"]["metadata"]["labels"]
    return labels


def test_prometheus_rule_groups_equal_the_rule_file() -> None:
    """The PrometheusRule carries exactly the groups that promtool checks and tests."""
    expected = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))["groups"]
    for tree in TREES:
        rule = one(render(tree), "PrometheusRule", "fmnist-alerts")
        assert rule["spec"]["groups"] == expected, (
            f"{tree}: spec.groups of infrastructure/k8s/base/monitoring/prometheusrule.yaml "
            f"differ from {RULES_FILE.relative_to(REPO_ROOT)}: copy the file's groups over"
        )


# --- security and operability policies -------------------------------------------------------


def _effective(pod: Doc, container: Doc, key: str) -> Any:
    """A security setting as it applies to ``container`` (its own, else the pod's)."""
    own = container.get("securityContext", {})
    return own[key] if key in own else pod.get("securityContext", {}).get(key)


def _image_problem(image: str) -> str | None:
    """Why ``image`` is not pinned (no tag, ``latest``), or None when it is."""
    if not image:
        return "no image"
    if "@sha256:" in image:
        return None
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        return f"{image}: no tag (means latest)"
    if name.rsplit(":", 1)[1] == "latest":
        return f"{image}: tag latest"
    return None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_meets_the_security_policy(overlay: str) -> None:
    """Non-root, read-only root, no privilege escalation, no capabilities, seccomp, no token."""
    docs = render(f"overlays/{overlay}")
    workloads = list(pod_specs(docs))
    kinds = {where.split("/")[0] for where, _ in workloads}
    assert kinds >= {"Deployment", "CronJob", "Job", "InferenceService"}
    problems = []
    for where, pod in workloads:
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: automountServiceAccountToken is not false")
        if pod.get("serviceAccountName") in (None, "default"):
            problems.append(f"{where}: runs as the default service account")
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(host):
                problems.append(f"{where}: {host}")
        emptydirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for c in containers(pod):
            at = f"{where}[{c['name']}]"
            security = c.get("securityContext", {})
            if _effective(pod, c, "runAsNonRoot") is not True:
                problems.append(f"{at}: runAsNonRoot is not true")
            if _effective(pod, c, "runAsUser") != 10001:
                problems.append(f"{at}: runAsUser is not 10001")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{at}: root filesystem is writable")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{at}: allowPrivilegeEscalation is not false")
            if security.get("privileged"):
                problems.append(f"{at}: privileged")
            capabilities = security.get("capabilities", {})
            if "ALL" not in capabilities.get("drop", []) or capabilities.get("add"):
                problems.append(f"{at}: capabilities are not drop ALL")
            if (_effective(pod, c, "seccompProfile") or {}).get("type") != "RuntimeDefault":
                problems.append(f"{at}: seccomp profile is not RuntimeDefault")
            tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            if not tmp or tmp[0]["name"] not in emptydirs:
                problems.append(f"{at}: /tmp is not an emptyDir (the root is read-only)")
            if (reason := _image_problem(c.get("image", ""))) is not None:
                problems.append(f"{at}: {reason}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_resources_and_long_running_ones_probes(overlay: str) -> None:
    """Requests and limits for CPU and memory everywhere; probes on the long-running servers."""
    docs = render(f"overlays/{overlay}")
    problems = []
    for where, pod in pod_specs(docs):
        kind = where.split("/")[0]
        for c in containers(pod):
            at = f"{where}[{c['name']}]"
            resources = c.get("resources", {})
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(part, {}):
                        problems.append(f"{at}: no {resource} {part[:-1]}")
            if kind in LONG_RUNNING:
                problems += [
                    f"{at}: no {probe}"
                    for probe in ("readinessProbe", "livenessProbe")
                    if probe not in c
                ]
            if kind == "Deployment" and "startupProbe" not in c:
                problems.append(f"{at}: no startupProbe")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_probes_use_the_health_routes(overlay: str) -> None:
    """The API is ready on /readyz, alive on /healthz, on the port it serves."""
    docs = render(f"overlays/{overlay}")
    deployment = one(docs, "Deployment", "fmnist-api")["spec"]["template"]["spec"]
    predictor = one(docs, "InferenceService", "fmnist-classifier")["spec"]["predictor"]
    for c in (deployment["containers"][0], predictor["containers"][0]):
        ports = {p.get("name"): p["containerPort"] for p in c["ports"]}
        assert 8000 in ports.values()
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in c:
                port = c[probe]["httpGet"]["port"]
                assert ports.get(port, port) == 8000, f"{probe} on {port}"
    assert deployment["containers"][0]["startupProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_monitor_gauges_listen_off_loopback_and_probes_use_them(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitor's gauges bind 0.0.0.0 (drift.metrics_host, read by fmnist's loader), so the
    kubelet probes them over HTTP on the port Prometheus scrapes."""
    docs = render(f"overlays/{overlay}")
    for name, value in settings_env(docs).items():
        if name.startswith("FMNIST_"):
            monkeypatch.setenv(name, value)
    drift = load_settings().settings.drift
    assert drift.metrics_host == "0.0.0.0"
    c = one(docs, "Deployment", "fmnist-monitor")["spec"]["template"]["spec"]["containers"][0]
    ports = {p.get("name"): p["containerPort"] for p in c["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = c[probe]["httpGet"]
        assert check["path"] == "/metrics", probe
        assert ports.get(check["port"], check["port"]) == drift.metrics_port, probe


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default(overlay: str) -> None:
    """A policy selects every pod for ingress and egress and allows nothing; DNS is allowed."""
    policies = find(render(f"overlays/{overlay}"), "NetworkPolicy")
    default_deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(default_deny) == 1
    dns_ports = {
        (port["protocol"], port["port"])
        for p in policies
        if p["spec"]["podSelector"] == {}
        for rule in p["spec"].get("egress", [])
        for port in rule.get("ports", [])
    }
    assert {("UDP", 53), ("TCP", 53)} <= dns_ports
    api_ingress = [
        port["port"]
        for p in policies
        if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component")
        == "api"
        for rule in p["spec"].get("ingress", [])
        for port in rule.get("ports", [])
    ]
    assert api_ingress == [8000]


# --- overlays ---------------------------------------------------------------------------------


def _image_tags(docs: tuple[Doc, ...]) -> set[str]:
    """The tags of every container image of the workloads."""
    return {c["image"].split(":", 1)[1] for _, pod in pod_specs(docs) for c in containers(pod)}


def test_dev_overlay_is_one_small_replica_of_dev_images() -> None:
    """dev: one API replica (HPA 1-2), a PDB that allows a drain, images tagged dev."""
    docs = render("overlays/dev")
    assert one(docs, "Deployment", "fmnist-api")["spec"]["replicas"] == 1
    hpa = one(docs, "HorizontalPodAutoscaler", "fmnist-api")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 2)
    pdb = one(docs, "PodDisruptionBudget", "fmnist-api")["spec"]
    assert "minAvailable" not in pdb
    assert pdb["maxUnavailable"] == 1
    assert _image_tags(docs) == {"dev"}
    api = one(docs, "Deployment", "fmnist-api")["spec"]["template"]["spec"]["containers"][0]
    prod_api = one(render("overlays/prod"), "Deployment", "fmnist-api")
    prod_requests = prod_api["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert api["resources"]["requests"] != prod_requests


def test_prod_overlay_is_highly_available_pinned_and_canaried() -> None:
    """prod: 3 replicas, HPA 3-10, PDB minAvailable 2, pinned images, a KServe canary."""
    docs = render("overlays/prod")
    assert one(docs, "Deployment", "fmnist-api")["spec"]["replicas"] == 3
    hpa = one(docs, "HorizontalPodAutoscaler", "fmnist-api")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 10)
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    assert one(docs, "PodDisruptionBudget", "fmnist-api")["spec"]["minAvailable"] == 2
    for _, pod in pod_specs(docs):
        for c in containers(pod):
            image = c["image"]
            assert "@sha256:" in image or re.search(r":\d+\.\d+\.\d+$", image), image
    predictor = one(docs, "InferenceService", "fmnist-classifier")["spec"]["predictor"]
    assert 0 < predictor["canaryTrafficPercent"] < 100
    assert predictor["minReplicas"] >= 3
    base_predictor = one(render("base"), "InferenceService", "fmnist-classifier")["spec"]
    assert "canaryTrafficPercent" not in base_predictor["predictor"]


# --- references between the manifests, and to fmnist itself -------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(overlay: str) -> None:
    """ConfigMaps, claims and service accounts exist; Services, HPA and PDB select real pods."""
    docs = render(f"overlays/{overlay}")
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    problems = []
    for where, pod in pod_specs(docs):
        if ("ServiceAccount", pod["serviceAccountName"]) not in names:
            problems.append(f"{where}: service account {pod['serviceAccountName']}")
        for volume in pod.get("volumes", []):
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim and ("PersistentVolumeClaim", claim) not in names:
                problems.append(f"{where}: claim {claim}")
        for c in containers(pod):
            for source in c.get("envFrom", []):
                ref = source.get("configMapRef", {}).get("name")
                if ref and ("ConfigMap", ref) not in names:
                    problems.append(f"{where}: ConfigMap {ref}")
    for service in find(docs, "Service"):
        selector = service["spec"]["selector"]
        backends = [c for pod in _pods_matching(docs, selector) for c in containers(pod)]
        port_names = {p.get("name") for c in backends for p in c.get("ports", [])}
        if not backends:
            problems.append(f"Service/{service['metadata']['name']} selects no pod")
        for port in service["spec"]["ports"]:
            if isinstance(port["targetPort"], str) and port["targetPort"] not in port_names:
                problems.append(f"Service/{service['metadata']['name']}: {port['targetPort']}")
    target = one(docs, "HorizontalPodAutoscaler", "fmnist-api")["spec"]["scaleTargetRef"]
    if (target["kind"], target["name"]) not in names:
        problems.append(f"HPA target {target}")
    pdb = one(docs, "PodDisruptionBudget", "fmnist-api")["spec"]["selector"]["matchLabels"]
    if not _pods_matching(docs, pdb):
        problems.append("PDB selects no pod")
    assert not problems, "\n".join(problems)


def _pods_matching(docs: tuple[Doc, ...], selector: dict[str, str]) -> list[Doc]:
    """Pod specs of the Deployments whose pod labels carry every label of ``selector``."""
    return [
        d["spec"]["template"]["spec"]
        for d in find(docs, "Deployment")
        if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]


def _secret_refs(docs: tuple[Doc, ...]) -> set[tuple[str, str]]:
    """Every ``(secret, key)`` the manifests read."""
    refs = set()
    for _, pod in pod_specs(docs):
        for c in containers(pod):
            for env in c.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
    for monitor in find(docs, "ServiceMonitor"):
        for endpoint in monitor["spec"]["endpoints"]:
            credentials = endpoint.get("authorization", {}).get("credentials")
            if credentials:
                refs.add((credentials["name"], credentials["key"]))
    return refs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_references_are_external_and_documented(overlay: str) -> None:
    """Secrets come from the two hand-made Secrets, each key shown in docs/kubernetes.md."""
    refs = _secret_refs(render(f"overlays/{overlay}"))
    assert {name for name, _ in refs} == EXTERNAL_SECRETS
    docs_text = DOCS.read_text(encoding="utf-8")
    undocumented = [
        f"{name}/{key}"
        for name, key in sorted(refs)
        if f"--from-literal={key}=" not in docs_text or name not in docs_text
    ]
    assert not undocumented, f"keys not in the create-secret commands of {DOCS.name}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_are_valid_fmnist_settings(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """fmnist's own loader accepts the ConfigMap and the secret variables (no unknown key)."""
    docs = render(f"overlays/{overlay}")
    env = settings_env(docs)
    secret_vars = {
        e["name"]
        for _, pod in pod_specs(docs)
        for c in containers(pod)
        for e in c.get("env", [])
        if e["name"].startswith("FMNIST_") and "secretKeyRef" in e.get("valueFrom", {})
    }
    assert secret_vars >= {"FMNIST_SERVING__ADMIN_TOKEN"}
    for name, value in env.items():
        if name.startswith("FMNIST_"):
            monkeypatch.setenv(name, value)
    for name in secret_vars:
        monkeypatch.setenv(name, "https://alerts.example/hook" if name.endswith("_URL") else "x")
    settings = load_settings().settings
    assert settings.profile == "agnostic"
    assert settings.ports.orchestration == "local", "retrains must train in their own Job"
    assert settings.resolved_lake_url.startswith("s3://")
    assert settings.serving.admin_token is not None
    home = env["FMNIST_HOME"]
    assert str(settings.home) == home
    for where, pod in pod_specs(docs):
        claims = {v["name"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v}
        for c in containers(pod):
            if fmnist_argv(c) is not None:
                mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
                assert mounts.get(home) in claims, f"{where}: FMNIST_HOME {home} not on a claim"
    tracking = urlsplit(settings.resolved_tracking_uri)
    service = one(docs, "Service", str(tracking.hostname))
    assert tracking.port in {p["port"] for p in service["spec"]["ports"]}


@functools.cache
def _cli() -> Any:
    """fmnist's root command, as the CLI's parser sees it."""
    return typer.main.get_command(fmnist_app)


def parse_fmnist(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Parse ``fmnist ARGV`` with the real CLI (nothing runs): the command path and its
    parameters; an unknown command, option or bad value raises the CLI's usage error."""
    command = _cli()
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


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_fmnist_commands_parse_with_the_real_cli(overlay: str) -> None:
    """Every fmnist command line in the manifests is one the CLI accepts, ports agreeing."""
    docs = render(f"overlays/{overlay}")
    env = settings_env(docs)
    seen = {}
    for where, pod in pod_specs(docs):
        for c in containers(pod):
            argv = fmnist_argv(c)
            if argv is not None:
                path, params = parse_fmnist(argv)
                seen[where] = (" ".join(path), params, c)
    commands = {where: command for where, (command, _, _) in seen.items()}
    assert commands == {
        "Deployment/fmnist-api": "serve",
        "InferenceService/fmnist-classifier": "serve",
        "Deployment/fmnist-monitor": "monitor run",
        "CronJob/fmnist-drift-check": "monitor run",
        "CronJob/fmnist-retrain": "retrain",
        "CronJob/fmnist-compact": "monitor compact",
        "Job/fmnist-batch-predict": "predict batch",
    }
    for where in ("Deployment/fmnist-api", "InferenceService/fmnist-classifier"):
        _, params, c = seen[where]
        assert params["host"] == "0.0.0.0"
        assert params["port"] == int(env["FMNIST_SERVING__PORT"])
        assert params["port"] in {p["containerPort"] for p in c["ports"]}
    _, params, c = seen["Deployment/fmnist-monitor"]
    assert params["port"] == int(env["FMNIST_DRIFT__METRICS_PORT"])
    assert params["port"] in {p["containerPort"] for p in c["ports"]}
    assert seen["CronJob/fmnist-drift-check"][1]["once"] is True
    assert seen["CronJob/fmnist-drift-check"][1]["port"] == 0
    with pytest.raises(Exception, match="No such option"):
        parse_fmnist(["monitor", "run", "--once", "--no-such-flag"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_scrapes_the_jobs_the_alerts_name(overlay: str) -> None:
    """The ServiceMonitor selects the Services fmnist-api and fmnist-monitor (the alerts' job
    labels), on ports those Services have."""
    docs = render(f"overlays/{overlay}")
    monitor = one(docs, "ServiceMonitor", "fmnist")["spec"]
    selector = monitor["selector"]["matchLabels"]
    selected = [
        s
        for s in find(docs, "Service")
        if selector.items() <= s["metadata"].get("labels", {}).items()
    ]
    assert {s["metadata"]["name"] for s in selected} == {"fmnist-api", "fmnist-monitor"}
    ports = {p["name"] for s in selected for p in s["spec"]["ports"]}
    assert {e["port"] for e in monitor["endpoints"]} <= ports
    target_down = next(
        r["expr"]
        for g in one(docs, "PrometheusRule", "fmnist-alerts")["spec"]["groups"]
        for r in g["rules"]
        if r.get("alert") == "FmnistTargetDown"
    )
    for service in selected:
        assert service["metadata"]["name"] in target_down
