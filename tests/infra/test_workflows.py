"""The GitHub Actions workflows: valid against the workflow schema (check-jsonschema's vendored
copy, offline) and held to the project's rules: actions pinned by commit SHA, least privilege,
timeouts, concurrency, no injectable expressions in scripts, and only make targets that exist.

actionlint cannot be installed here; these rules cover the part of it that matters most.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from data_paths import missing

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
NAMES = ("ci", "release", "deploy", "drift-retrain")
PINNED_USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<ref>\S+)\s*(?P<comment>#.*)?$"
)
SHA = re.compile(r"^[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^#\s*v\d+\.\d+\.\d+$")
MAKE_CALL = re.compile(
    r"(?:^|&&|\|\||;|\(|\bthen|\bdo)\s*make\s+(?P<target>[a-z][a-z0-9-]*)", flags=re.MULTILINE
)
# Make targets the workflows call, as the Makefile must provide them (see services/README.md).
EXPECTED_TARGETS = {
    "install",
    "lint",
    "docs",
    "test",
    "test-gcp",
    "test-agnostic",
    "test-serve-only",
    "sbom",
}


def workflow_files() -> list[Path]:
    """Every workflow file."""
    return sorted(WORKFLOWS.glob("*.yml"))


def load(path: Path) -> dict[str, Any]:
    """A workflow as a mapping (PyYAML reads the key ``on`` as True; it is put back)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    if True in data:
        data["on"] = data.pop(True)
    return data


def jobs(path: Path) -> dict[str, dict[str, Any]]:
    """The jobs of a workflow."""
    found = load(path)["jobs"]
    assert isinstance(found, dict)
    return found


def steps() -> list[tuple[str, str, dict[str, Any]]]:
    """(workflow, job, step) for every step of every workflow."""
    return [
        (path.name, job_id, step)
        for path in workflow_files()
        for job_id, job in jobs(path).items()
        for step in job.get("steps", [])
    ]


def run_scripts() -> list[tuple[str, str]]:
    """(where, script) for every ``run:`` step."""
    return [(f"{w}:{j}", s["run"]) for w, j, s in steps() if "run" in s]


def check_jsonschema() -> str:
    """The check-jsonschema executable; missing: skip, or fail under CI."""
    beside_python = Path(sys.executable).with_name("check-jsonschema")
    found = str(beside_python) if beside_python.is_file() else shutil.which("check-jsonschema")
    if found is None:
        missing("check-jsonschema not installed (pip install check-jsonschema)")
    assert found is not None
    return found


def test_the_workflows() -> None:
    assert [p.stem for p in workflow_files()] == sorted(NAMES)


def test_workflows_match_the_github_schema() -> None:
    files = [str(p) for p in workflow_files()]
    done = subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    timeout-minutes: soon\n"
        "    steps:\n      - run: true\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    seen: dict[str, tuple[str, str]] = {}
    count = 0
    for path in workflow_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not re.match(r"^\s*(?:-\s+)?uses:", line):
                continue
            where = f"{path.name}:{number}"
            if re.match(r"^\s*(?:-\s+)?uses:\s*\./", line):
                continue  # a local action
            match = PINNED_USES.match(line)
            assert match, f"{where}: unexpected uses: {line.strip()}"
            assert SHA.match(match["ref"]), f"{where}: {match['action']} not pinned by SHA"
            comment = (match["comment"] or "").strip()
            assert VERSION_COMMENT.match(comment), f"{where}: needs a '# vX.Y.Z' comment"
            pin = (match["ref"], comment)
            assert seen.setdefault(match["action"], pin) == pin, f"{where}: pinned differently"
            count += 1
    assert count > 0


def test_permissions_are_least_privilege() -> None:
    for path in workflow_files():
        data = load(path)
        assert "permissions" in data, f"{path.name}: no top-level permissions"
        assert data["permissions"] in ({}, {"contents": "read"}), path.name
        for job_id, job in data["jobs"].items():
            granted = job.get("permissions", {})
            assert "write-all" not in str(granted), job_id
            uses = " ".join(s.get("uses", "") for s in job.get("steps", []))
            if granted.get("id-token") == "write":
                assert "google-github-actions/auth@" in uses or (
                    "attest-build-provenance@" in uses
                ), f"{path.name}:{job_id}: id-token without identity federation or signing"
            if granted.get("packages") == "write":
                assert path.name == "release.yml", f"{path.name}:{job_id}: packages: write"
            if granted.get("attestations") == "write":
                assert "attest-build-provenance@" in uses, job_id
            writes = {k for k, v in granted.items() if v == "write"}
            assert writes <= {"id-token", "packages", "attestations"}, f"{job_id}: {writes}"


def test_every_job_has_a_timeout() -> None:
    for path in workflow_files():
        for job_id, job in jobs(path).items():
            minutes = job.get("timeout-minutes")
            assert isinstance(minutes, int) and 0 < minutes <= 120, f"{path.name}:{job_id}"


def test_every_workflow_has_a_concurrency_group() -> None:
    for path in workflow_files():
        concurrency = load(path).get("concurrency")
        assert isinstance(concurrency, dict) and concurrency.get("group"), path.name
        assert "cancel-in-progress" in concurrency, path.name
    for name in ("release", "deploy", "drift-retrain"):
        assert load(WORKFLOWS / f"{name}.yml")["concurrency"]["cancel-in-progress"] is False


def test_no_pull_request_target() -> None:
    for path in workflow_files():
        triggers = load(path)["on"]
        names = triggers if isinstance(triggers, list | str) else list(triggers)
        assert "pull_request_target" not in names, path.name
        assert "pull_request_target" not in path.read_text(encoding="utf-8"), path.name


def test_no_expression_is_interpolated_into_a_script() -> None:
    """Values reach scripts through ``env:``; a ``${{ }}`` in ``run:`` could inject code."""
    scripts = run_scripts()
    assert scripts
    for where, script in scripts:
        assert "${{" not in script, f"{where}: expression in a run script"
        assert "github.event" not in script, where


def test_checkouts_do_not_keep_the_token() -> None:
    checkouts = [(w, j, s) for w, j, s in steps() if "actions/checkout@" in s.get("uses", "")]
    assert checkouts
    for workflow, job, step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False, f"{workflow}:{job}"


def makefile_targets() -> set[str]:
    """The targets the Makefile defines."""
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9-]*)\s*:(?!=)", text, flags=re.MULTILINE))


def test_workflows_call_only_make_targets_that_exist() -> None:
    called = {m["target"] for _, script in run_scripts() for m in MAKE_CALL.finditer(script)}
    assert called == EXPECTED_TARGETS, called ^ EXPECTED_TARGETS
    absent = called - makefile_targets()
    assert not absent, f"targets the workflows call but the Makefile lacks: {sorted(absent)}"


def test_ci_runs_the_checks() -> None:
    ci = jobs(WORKFLOWS / "ci.yml")
    scripts = {
        job_id: " ".join(s.get("run", "") for s in job["steps"]) for job_id, job in ci.items()
    }
    assert "make lint" in scripts["lint"] and "make docs" in scripts["lint"]
    assert "make test " in scripts["tests"] + " "
    assert "make test-gcp" in scripts["test-gcp"]
    assert "make test-agnostic" in scripts["test-agnostic"]
    assert "make test-serve-only" in scripts["serve-only"]
    assert "terraform fmt -check" in scripts["iac"] and "checkov" in scripts["iac"]
    assert "kubectl kustomize" in scripts["iac"]
    assert "hadolint --config services/.hadolint.yaml services/*/Dockerfile" in scripts["images"]
    on = load(WORKFLOWS / "ci.yml")["on"]
    assert {"push", "pull_request"} <= set(on)


def test_python_jobs_run_in_the_images_base() -> None:
    dockerfile = (REPO / "services" / "api" / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^FROM (python:\S+)", dockerfile, flags=re.MULTILINE)
    assert base
    containers = [
        job["container"]["image"]
        for path in workflow_files()
        for job in jobs(path).values()
        if "container" in job
    ]
    assert containers and set(containers) == {base.group(1)}


@pytest.mark.parametrize("job_id", ["lint", "tests", "test-gcp", "test-agnostic", "serve-only"])
def test_pip_downloads_are_cached(job_id: str) -> None:
    job = jobs(WORKFLOWS / "ci.yml")[job_id]
    caches = [s for s in job["steps"] if "actions/cache@" in s.get("uses", "")]
    assert caches and caches[0]["with"]["path"] == "~/.cache/pip"


def test_release_builds_every_image_with_sbom_and_provenance() -> None:
    release = jobs(WORKFLOWS / "release.yml")
    images = release["images"]["strategy"]["matrix"]["image"]
    built = sorted(p.parent.name for p in (REPO / "services").glob("*/Dockerfile"))
    assert sorted(images) == built
    uses = [s.get("uses", "") for s in release["images"]["steps"]]
    for action in (
        "docker/build-push-action@",
        "actions/attest-build-provenance@",
        "anchore/sbom-action@",
        "docker/login-action@",
    ):
        assert any(u.startswith(action) for u in uses), action
    build = next(s for s in release["images"]["steps"] if s.get("id") == "build")
    assert build["with"]["push"] is True and build["with"]["provenance"] == "mode=max"
    trigger = load(WORKFLOWS / "release.yml")["on"]
    assert list(trigger) == ["push"] and trigger["push"]["tags"]


def test_deploy_uses_federation_and_a_canary() -> None:
    deploy = jobs(WORKFLOWS / "deploy.yml")
    text = (WORKFLOWS / "deploy.yml").read_text(encoding="utf-8")
    assert "credentials_json" not in text and "GOOGLE_APPLICATION_CREDENTIALS" not in text
    canary = deploy["cloud-run-canary"]["steps"]
    auth = next(s for s in canary if "google-github-actions/auth@" in s.get("uses", ""))
    assert set(auth["with"]) == {"workload_identity_provider", "service_account"}
    cloud_run = [s["with"] for s in canary if "deploy-cloudrun@" in s.get("uses", "")]
    assert cloud_run[0]["no_traffic"] is True and cloud_run[0]["tag"] == "canary"
    assert cloud_run[1]["tag_traffic"].startswith("canary=")
    promote = deploy["cloud-run-promote"]
    assert promote["environment"] == "production-promote"
    assert "cloud-run-canary" in promote["needs"]
    k8s = " ".join(s.get("run", "") for s in deploy["kubernetes"]["steps"])
    assert "kubectl apply -k infrastructure/k8s/overlays/prod" in k8s
    assert set(load(WORKFLOWS / "deploy.yml")["on"]) == {"workflow_run", "workflow_dispatch"}


def test_drift_retrain_is_scheduled() -> None:
    data = load(WORKFLOWS / "drift-retrain.yml")
    assert data["on"]["schedule"][0]["cron"]
    script = " ".join(s.get("run", "") for s in data["jobs"]["drift-retrain"]["steps"])
    assert "fmnist monitor drift" in script and "fmnist retrain" in script


@pytest.mark.parametrize(
    ("line", "pinned"),
    [
        ("      - uses: actions/checkout@v4", False),
        ("      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", False),
        ("      - uses: actions/checkout@11bd719 # v4.2.2", False),
        ("      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2", True),
        ("        uses: docker/build-push-action@" + "a" * 40 + " # v6.18.0", True),
    ],
)
def test_the_pin_rule(line: str, pinned: bool) -> None:
    match = PINNED_USES.match(line)
    ok = bool(
        match
        and SHA.match(match["ref"])
        and VERSION_COMMENT.match((match["comment"] or "").strip())
    )
    assert ok is pinned


def test_the_make_rule_reads_commands_only() -> None:
    script = "apt-get install -y make git\nmake lint\ncd x && make test PYTEST_ARGS=-q"
    assert [m["target"] for m in MAKE_CALL.finditer(script)] == ["lint", "test"]
