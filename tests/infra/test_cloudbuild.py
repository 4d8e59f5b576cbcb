"""``cloudbuild.yaml``: the Cloud Build pipeline from a commit to all of Cloud Run's traffic.

No Cloud Build here, so the file is checked the way Cloud Build would read it: SchemaStore's
Cloud Build schema (vendored in check-jsonschema), the build config's keys, unique step ids
and ``waitFor`` on earlier steps, every substitution used declared (user-defined) or built-in
and every declared one used (Cloud Build's default ``MUST_MATCH`` fails a build otherwise),
every shell ``$`` escaped as ``$$``; then what the
pipeline must do: lint and test before any push, the four images built from Dockerfiles that
exist, pushed to Artifact Registry and listed under ``images``, the API deployed by digest with
``--no-traffic --tag canary``, a smoke test before the canary share and before the promotion.
Every bash script parses (``bash -n``) after substitution, every inline Python program
compiles, the deploy step's programs run on a sample service description, and the smoke test
itself runs against the real API (and fails on answers of the wrong shape).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from app_server import running
from data_paths import missing
from fmnist.data.sources import RawDataset
from fmnist.security.keys import KeyStore, key_store_path
from tracking_home import register_tiny_models

REPO = Path(__file__).resolve().parents[2]
CLOUDBUILD = REPO / "cloudbuild.yaml"
IMAGES = ("api", "trainer", "batch", "monitor")
REGISTRY = "${_REGION}-docker.pkg.dev/${PROJECT_ID}/${_REPOSITORY}"
DECLARED = {"_REGION", "_REPOSITORY", "_SERVICE", "_CANARY_PERCENT"}
SMOKE_KEY_ENV = "SMOKE_API_KEY"
# Keys of a build config (cloud.google.com/build/docs/build-config-file-schema).
BUILD_KEYS = {
    "steps",
    "timeout",
    "queueTtl",
    "logsBucket",
    "options",
    "substitutions",
    "tags",
    "serviceAccount",
    "secrets",
    "availableSecrets",
    "artifacts",
    "images",
}
STEP_KEYS = {
    "name",
    "args",
    "env",
    "dir",
    "id",
    "waitFor",
    "entrypoint",
    "secretEnv",
    "volumes",
    "timeout",
    "script",
    "automapSubstitutions",
    "allowFailure",
    "allowExitCodes",
}
# Cloud Build's built-in substitutions.
BUILT_IN = {
    "PROJECT_ID",
    "PROJECT_NUMBER",
    "BUILD_ID",
    "LOCATION",
    "TRIGGER_NAME",
    "TRIGGER_BUILD_CONFIG_PATH",
    "COMMIT_SHA",
    "REVISION_ID",
    "SHORT_SHA",
    "REPO_NAME",
    "REPO_FULL_NAME",
    "BRANCH_NAME",
    "TAG_NAME",
    "REF_NAME",
    "SERVICE_ACCOUNT_EMAIL",
    "SERVICE_ACCOUNT",
}
SUBSTITUTION = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
BASE_IMAGE = re.compile(r"^FROM (python:\S+@sha256:[0-9a-f]{64})", flags=re.MULTILINE)
DOCKERFILE = re.compile(r"services/[\w-]+/Dockerfile")


# ---- reading the file the way Cloud Build does ----------------------------------------------


def load() -> dict[str, Any]:
    """The build config."""
    config = yaml.safe_load(CLOUDBUILD.read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def steps() -> list[dict[str, Any]]:
    """The build steps, in order."""
    found: list[dict[str, Any]] = load()["steps"]
    return found


def step(step_id: str) -> dict[str, Any]:
    """One step by id."""
    return next(s for s in steps() if s["id"] == step_id)


def strings(value: Any) -> Iterator[str]:
    """Every string inside a YAML value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def references(text: str) -> list[str]:
    """The substitutions ``text`` uses; ``$$`` is a literal ``$``; a ``$`` that starts neither
    is reported as ``'$'`` (Cloud Build would reject or mangle it)."""
    found, i = [], 0
    while (i := text.find("$", i)) != -1:
        if text.startswith("$$", i):
            i += 2
            continue
        match = SUBSTITUTION.match(text, i)
        found.append(match.group("braced") or match.group("bare") if match else "$")
        i += len(match.group(0)) if match else 1
    return found


def substitute(text: str, values: dict[str, str]) -> str:
    """``text`` after Cloud Build's substitution (``values`` for every name used)."""
    out, i = [], 0
    while (j := text.find("$", i)) != -1:
        out.append(text[i:j])
        if text.startswith("$$", j):
            out.append("$")
            i = j + 2
            continue
        match = SUBSTITUTION.match(text, j)
        assert match, f"a lone $ at {text[j : j + 20]!r}"
        out.append(values[match.group("braced") or match.group("bare")])
        i = j + len(match.group(0))
    out.append(text[i:])
    return "".join(out)


def example_values() -> dict[str, str]:
    """The declared defaults plus plausible built-in values."""
    values = {name: f"built-in-{name.lower()}" for name in BUILT_IN}
    values |= {"PROJECT_ID": "my-project", "SHORT_SHA": "0123abc", "COMMIT_SHA": "0123abc" * 5}
    return values | {k: str(v) for k, v in load()["substitutions"].items()}


def script(step_id: str) -> str:
    """The bash script of a ``bash -c`` step, after substitution."""
    found = step(step_id)
    assert found.get("entrypoint") == "bash" and found["args"][0] == "-c", step_id
    return substitute(found["args"][1], example_values())


def commands(text: str) -> list[str]:
    """The logical lines of a script (continuation lines joined), stripped."""
    return [line.strip() for line in re.sub(r"\\\n\s*", " ", text).splitlines()]


def command_line(found: dict[str, Any]) -> str:
    """Everything a step runs, as one string (entrypoint, args, script)."""
    return " ".join([found.get("entrypoint", ""), *found.get("args", []), found.get("script", "")])


def dependencies() -> dict[str, set[str]]:
    """Step id -> every step it waits for, transitively (no ``waitFor``: all earlier steps;
    ``waitFor: ['-']``: none)."""
    direct: dict[str, set[str]] = {}
    earlier: list[str] = []
    for s in steps():
        wait = s.get("waitFor")
        direct[s["id"]] = set(earlier) if wait is None else {w for w in wait if w != "-"}
        earlier.append(s["id"])
    closed: dict[str, set[str]] = {}
    for step_id in earlier:  # in order: every dependency is already closed
        closed[step_id] = set().union(*[{d} | closed[d] for d in direct[step_id]])
    return closed


def image(name: str) -> str:
    """The Artifact Registry reference of one image, as the build writes it."""
    return f"{REGISTRY}/fmnist-{name}:${{SHORT_SHA}}"


# ---- the build config ------------------------------------------------------------------------


def test_the_build_config_loads_with_known_keys() -> None:
    config = load()
    assert set(config) <= BUILD_KEYS, set(config) - BUILD_KEYS
    for s in config["steps"]:
        assert set(s) <= STEP_KEYS, (s.get("id"), set(s) - STEP_KEYS)
        assert s.get("name"), s


def test_the_build_config_against_its_schema() -> None:
    """SchemaStore's Cloud Build schema, vendored in check-jsonschema (offline)."""
    beside_python = Path(sys.executable).with_name("check-jsonschema")
    found = str(beside_python) if beside_python.is_file() else shutil.which("check-jsonschema")
    if found is None:
        missing("check-jsonschema not installed (pip install check-jsonschema)")
    assert found is not None
    result = subprocess.run(
        [found, "--builtin-schema", "vendor.cloudbuild", str(CLOUDBUILD)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_step_ids_are_unique_and_wait_for_earlier_steps() -> None:
    ids = [s.get("id") for s in steps()]
    assert all(ids), "every step needs an id"
    assert len(ids) == len(set(ids)), ids
    for position, s in enumerate(steps()):
        for wait in s.get("waitFor", []):
            assert wait == "-" or wait in ids[:position], f"{s['id']} waits for {wait}"


def test_every_substitution_is_declared_or_built_in_and_every_declared_one_used() -> None:
    config = load()
    declared = set(config["substitutions"])
    assert declared >= DECLARED
    for name in declared:
        assert re.fullmatch(r"_[A-Z][A-Z0-9_]*", name), f"user-defined {name}: _UPPER_CASE"
        assert isinstance(config["substitutions"][name], str), f"{name}: quote the value"
    used: set[str] = set()
    rest = {k: v for k, v in config.items() if k != "substitutions"}
    for text in strings(rest):
        for name in references(text):
            assert name != "$", f"unescaped $ (write $$ for the shell) in: {text[:200]}"
            assert name in declared | BUILT_IN, f"${{{name}}} is neither declared nor built-in"
            used.add(name)
    assert declared <= used, f"declared, never used: {declared - used}"
    options = config.get("options", {})
    assert options.get("substitutionOption", "MUST_MATCH") == "MUST_MATCH"
    assert not options.get("dynamicSubstitutions"), "substitutions are plain values here"


def test_the_reference_scanner() -> None:
    assert references("a ${_X} b $PROJECT_ID c $$bash $${arr[@]} $$(date)") == [
        "_X",
        "PROJECT_ID",
    ]
    assert references("echo $ 1") == ["$"]
    assert substitute("${_X}-$$y-$SHORT_SHA", {"_X": "x", "SHORT_SHA": "s"}) == "x-$y-s"


def test_options_service_account_and_timeout() -> None:
    config = load()
    assert config["options"]["logging"] == "CLOUD_LOGGING_ONLY"
    assert re.fullmatch(r"[EN]\d?_HIGHCPU_\d+", config["options"]["machineType"])
    # The identity is the trigger's (infrastructure/terraform: the CI deployer account), not
    # a name fixed here that could drift from it.
    assert "serviceAccount" not in config
    total = int(config["timeout"].removesuffix("s"))
    step_limits = [int(s["timeout"].removesuffix("s")) for s in steps() if "timeout" in s]
    assert total >= int(step("lint")["timeout"][:-1]) + int(step("test")["timeout"][:-1])
    assert all(limit <= total for limit in step_limits)


def test_lint_and_test_run_the_make_targets_in_the_images_base_image() -> None:
    bases = {
        match
        for image_name in IMAGES
        for match in BASE_IMAGE.findall(
            (REPO / "services" / image_name / "Dockerfile").read_text(encoding="utf-8")
        )
    }
    assert len(bases) == 1, bases
    for step_id, target in (("lint", "make lint"), ("test", "make test")):
        found = step(step_id)
        assert found["name"] in bases, f"{step_id}: not the images' pinned base image"
        assert re.search(rf"^{target}$", script(step_id), flags=re.MULTILINE), step_id
    assert "CI=true" in step("test").get("env", []), "no test may skip in the build"
    assert "lint" in dependencies()["test"]


# ---- images ----------------------------------------------------------------------------------


def test_the_four_images_are_built_pushed_and_listed() -> None:
    config = load()
    assert sorted(config["images"]) == sorted(image(name) for name in IMAGES)
    deps = dependencies()
    for name in IMAGES:
        ref = image(name)
        builds = [
            s
            for s in steps()
            if "docker build" in command_line(s) and f"--tag={ref}" in command_line(s)
        ]
        assert len(builds) == 1, f"{name}: {len(builds)} build steps"
        assert f"--file=services/{name}/Dockerfile" in command_line(builds[0]), name
        assert "DOCKER_BUILDKIT=1" in builds[0].get("env", []), name
        pushes = [
            s for s in steps() if ref in command_line(s) and re.search(r"\bpush\b", command_line(s))
        ]
        assert len(pushes) == 1, f"{name}: {len(pushes)} push steps"
        push = pushes[0]["id"]
        assert builds[0]["id"] in deps[push], f"{push} does not wait for the build"
        assert {"lint", "test"} <= deps[push], f"{push} may push before the tests pass"


def test_the_dockerfiles_referenced_exist() -> None:
    referenced = {m for s in steps() for m in DOCKERFILE.findall(command_line(s))}
    assert referenced == {f"services/{name}/Dockerfile" for name in IMAGES}
    for path in referenced:
        assert (REPO / path).is_file(), path
    for s in steps():
        for target in re.findall(r"--target=(\S+)", command_line(s)):
            dockerfile = DOCKERFILE.search(command_line(s))
            assert dockerfile, s["id"]
            text = (REPO / dockerfile.group(0)).read_text(encoding="utf-8")
            assert re.search(rf"^FROM .+ AS {target}$", text, flags=re.MULTILINE), target


# ---- Cloud Run -------------------------------------------------------------------------------


def test_the_api_is_deployed_by_digest_without_traffic_as_the_canary() -> None:
    push = script("push-api")
    assert "{{index .RepoDigests 0}}" in push and "/workspace/api-image.txt" in push
    assert "@sha256:[0-9a-f]{64}" in push, "the digest is checked"
    deploy = script("deploy-canary")
    deploy_lines = [c for c in commands(deploy) if c.startswith("gcloud run deploy ")]
    assert len(deploy_lines) == 1, deploy_lines
    line = deploy_lines[0]
    assert "--no-traffic" in line
    assert "--tag=canary" in line
    assert '--image="$image"' in line and 'image="$(cat /workspace/api-image.txt)"' in deploy
    assert "push-api" in dependencies()["deploy-canary"]


def test_canary_share_smoke_test_and_promotion_in_order() -> None:
    deps = dependencies()
    traffic = " ".join(step("canary-traffic")["args"])
    assert "update-traffic" in traffic and "--to-tags=canary=${_CANARY_PERCENT}" in traffic
    promote = [c for c in commands(script("promote")) if "update-traffic" in c]
    assert len(promote) == 1 and "--to-latest" in promote[0].split(), promote
    smoke = script("smoke-canary")
    assert "/readyz" in smoke and "/v1/predict" in smoke
    assert "smoke-canary" in deps["canary-traffic"], "traffic before the smoke test"
    assert {"smoke-canary", "canary-traffic", "canary-soak"} <= deps["promote"]
    assert "deploy-canary" in deps["smoke-canary"]
    soak = script("canary-soak")
    assert "bash /workspace/smoke.sh" in soak
    assert "--to-revisions=" in soak and "previous-traffic.txt" in soak, "no rollback"
    # Only these steps touch the service's traffic, and only after the canary exists.
    for s in steps():
        if "update-traffic" in command_line(s):
            assert "deploy-canary" in deps[s["id"]], s["id"]


def test_the_smoke_test_authenticates_to_cloud_run_and_to_the_api_separately() -> None:
    """Cloud Run's identity token in X-Serverless-Authorization (the API answers 401 to a
    bearer token that is not one of its keys); the API key from Secret Manager."""
    smoke = smoke_script()
    assert "X-Serverless-Authorization: Bearer $token" in smoke
    assert not re.search(r"(?<!X-Serverless-)Authorization:", smoke), "Authorization is the API's"
    assert f"X-API-Key: ${SMOKE_KEY_ENV}" in smoke
    secrets = load()["availableSecrets"]["secretManager"]
    assert [s["env"] for s in secrets] == [SMOKE_KEY_ENV]
    for s in steps():
        if "/workspace/smoke.sh" in command_line(s) and "bash /workspace/smoke.sh" in command_line(
            s
        ):
            assert s.get("secretEnv") == [SMOKE_KEY_ENV], s["id"]


def test_every_bash_script_parses() -> None:
    bash = shutil.which("bash")
    assert bash, "bash is missing"
    scripts = {s["id"]: script(s["id"]) for s in steps() if s.get("entrypoint") == "bash"}
    scripts["smoke.sh"] = smoke_script()
    for step_id, text in scripts.items():
        result = subprocess.run([bash, "-n"], input=text, text=True, capture_output=True)
        assert result.returncode == 0, f"{step_id}: {result.stderr}"


def python_snippets(text: str) -> list[str]:
    """The programs of every ``python3 -c '...'`` in a script."""
    return re.findall(r"python3 -c '([^']*)'", text)


def test_every_inline_python_program_compiles() -> None:
    snippets = [
        p
        for s in steps()
        if s.get("entrypoint") == "bash"
        for p in python_snippets(script(s["id"]))
    ]
    heredoc = re.search(r"<<'PY'\n(.*?)\nPY\n", smoke_script(), flags=re.DOTALL)
    assert heredoc, "the smoke script's checker"
    snippets += [*python_snippets(smoke_script()), heredoc.group(1)]
    assert len(snippets) >= 4
    for program in snippets:
        compile(program, "<cloudbuild.yaml>", "exec")


def test_the_deploy_step_reads_the_traffic_and_the_canary_url(tmp_path: Path) -> None:
    """The deploy step's two programs on Cloud Run's service description (``gcloud run
    services describe --format=json``): the rollback target sums each revision's shares; the
    canary URL is taken only from the tag on the revision just created."""
    before, after = python_snippets(script("deploy-canary"))
    url = "https://fmnist-api-abc-ew.a.run.app"
    service = {
        "status": {
            "url": url,
            "latestCreatedRevisionName": "fmnist-api-00002",
            "traffic": [
                {"revisionName": "fmnist-api-00001", "percent": 90, "latestRevision": True},
                {"revisionName": "fmnist-api-00001", "percent": 0, "tag": "old"},
                {"revisionName": "fmnist-api-00000", "percent": 10, "tag": "canary"},
            ],
        }
    }

    def run(program: str, described: dict[str, Any], name: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / name).write_text(json.dumps(described), encoding="utf-8")
        code = program.replace("/workspace/", f"{tmp_path}/")
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False
        )

    result = run(before, service, "service-before.json")
    assert result.stdout.strip() == "fmnist-api-00001=90,fmnist-api-00000=10", result.stderr
    stale = run(after, service, "service-canary.json")
    assert stale.returncode != 0 and "no canary tag on the latest revision" in stale.stderr
    service["status"]["traffic"].append(
        {
            "revisionName": "fmnist-api-00002",
            "percent": 0,
            "tag": "canary",
            "url": "https://canary---fmnist-api-abc-ew.a.run.app",
        }
    )
    service["status"]["traffic"] = [
        t for t in service["status"]["traffic"] if t["revisionName"] != "fmnist-api-00000"
    ]
    fresh = run(after, service, "service-canary.json")
    assert fresh.stdout.split() == ["https://canary---fmnist-api-abc-ew.a.run.app", url]


def smoke_script() -> str:
    """``/workspace/smoke.sh`` as the smoke-canary step writes it."""
    text = script("smoke-canary")
    match = re.search(r"cat > /workspace/smoke\.sh <<'EOF'\n(.*?)\nEOF\n", text, flags=re.DOTALL)
    assert match, "smoke-canary does not write /workspace/smoke.sh"
    return match.group(1) + "\n"


def smoke_workspace(tmp_path: Path, key: str = "not-checked") -> tuple[Path, dict[str, str]]:
    """A stand-in ``/workspace`` holding the smoke script, and the environment to run it in:
    ``gcloud`` first on ``PATH`` is a stand-in that prints an identity token; ``key`` is the
    API key Cloud Build takes from Secret Manager."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text("#!/bin/sh\necho test-identity-token\n", encoding="utf-8")
    gcloud.chmod(0o755)
    (workspace / "smoke.sh").write_text(
        smoke_script().replace("/workspace/", f"{workspace}/"), encoding="utf-8"
    )
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path), SMOKE_KEY_ENV: key}
    return workspace, env


def run_smoke(workspace: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the smoke script (it reads ``canary-url.txt`` of ``workspace``)."""
    return subprocess.run(
        ["bash", str(workspace / "smoke.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.network
@pytest.mark.gcp  # trains a small model and serves it: make test-gcp
def test_the_smoke_script_passes_against_the_real_api(
    tmp_path: Path, raw_subset: RawDataset, mlflow_template_db: Path
) -> None:
    """The smoke test's requests and checks against the real API: a tiny registered champion
    served on 127.0.0.1 with keys required on every route (``security.auth: on``, as off
    loopback on Cloud Run); the smoke test's key has the scope predict. The identity token of
    the stand-in ``gcloud`` goes in X-Serverless-Authorization, which the API ignores."""
    if shutil.which("curl") is None:
        missing("curl is not installed (Debian package curl): the smoke test runs it")
    tiny = register_tiny_models(tmp_path / "home", raw_subset, mlflow_template_db)
    serving = type(tiny.settings.serving).model_validate(
        tiny.settings.serving.model_dump()
        | {"reload_interval_s": 0.0, "access_log": False, "gc_freeze": False}
    )
    security = type(tiny.settings.security).model_validate(
        tiny.settings.security.model_dump() | {"auth": "on"}
    )
    settings = tiny.settings.model_copy(update={"serving": serving, "security": security})
    key, _ = KeyStore(key_store_path(settings.home, None)).create("smoke", ["predict"])
    workspace, env = smoke_workspace(tmp_path, key)
    with running(settings) as url:
        (workspace / "canary-url.txt").write_text(f"{url} {url}\n", encoding="utf-8")
        result = run_smoke(workspace, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "'status': 'ready'" in result.stdout and "answered:" in result.stdout


class _NotTheApi(BaseHTTPRequestHandler):
    """Answers 200 with JSON of the wrong content: ``/readyz`` says it is not ready, the
    prediction's label is a number."""

    def _answer(self) -> None:
        prediction = {"label": 3, "confidence": 0.9, "probabilities": [0.1] * 10}
        prediction |= {"model_name": "fmnist", "model_version": 1}
        ready = {"status": "loading"}
        body = ready if self.path == "/readyz" else {"predictions": [prediction]}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.mark.gcp
def test_the_smoke_script_fails_on_answers_of_the_wrong_shape(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        missing("curl is not installed (Debian package curl): the smoke test runs it")
    workspace, env = smoke_workspace(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotTheApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        (workspace / "canary-url.txt").write_text(f"{url} {url}\n", encoding="utf-8")
        result = run_smoke(workspace, env)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode != 0, result.stdout
    assert "smoke test failed: unexpected answer" in result.stderr, result.stderr
