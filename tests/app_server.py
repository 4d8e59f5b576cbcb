"""The real serving app under uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from fmnist.composition import build_services
from fmnist.config import Settings
from fmnist.serving.app import create_app
from fmnist.serving.cli import listening_socket


@contextlib.contextmanager
def running(settings: Settings) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port; yields the base URL."""
    app = create_app(build_services(settings))
    sock = listening_socket("127.0.0.1", 0)  # TCP_NODELAY, as `fmnist serve` does
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http="h11",
        lifespan="on",
        access_log=False,
        log_level="warning",
        log_config=None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def wait_until_ready(
    http: httpx.Client, proc: subprocess.Popen[Any], log: Path, timeout_s: float = 90
) -> None:
    """Poll ``/readyz`` of a ``fmnist serve`` process until 200 (its log shown if it dies)."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            if http.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not become ready"
        time.sleep(0.2)


def start_serve(env: dict[str, str], home: Path, log: Path) -> subprocess.Popen[bytes]:
    """``python -m fmnist serve`` with ``env`` over a clean environment (no FMNIST_*), its
    output in ``log``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FMNIST_", "MLFLOW_"))}
    base |= {"FMNIST_HOME": str(home), "FMNIST_SERVING__RELOAD_INTERVAL_S": "0", **env}
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fmnist", "serve"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=base,
            cwd=home.parent,
        )


GRACEFUL = -signal.SIGTERM
"""The exit status after a graceful SIGTERM: uvicorn finishes the requests in flight, runs the
app's shutdown, then re-raises the signal so the platform sees why the process ended."""


def stop_serve(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as a platform stops a container; the exit status."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
