"""``fmnist serve``: the one-line error without a champion, and a real multi-worker server."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from fmnist.cli import app

from .conftest import Trained

FMNIST = Path(sys.executable).parent / "fmnist"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_without_a_champion_is_a_one_line_error() -> None:
    result = CliRunner().invoke(app, ["serve", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "no model registered" in result.output
    assert "run `fmnist pipeline run` first" in result.output
    assert "Traceback" not in result.output


@pytest.mark.network
def test_serve_with_two_workers_keeps_keep_alive_fast(trained: Trained, tmp_path: Path) -> None:
    if not FMNIST.is_file():
        pytest.skip(f"console script not installed at {FMNIST}")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FMNIST_")}
    env["FMNIST_HOME"] = str(trained.settings.home)
    log = (tmp_path / "serve.log").open("w+")
    proc = subprocess.Popen(
        [str(FMNIST), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, Path(log.name).read_text()
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not become ready"
                time.sleep(0.2)
            body = {"instances": [[0] * 784]}
            latencies = []
            for _ in range(30):  # one keep-alive connection
                started = time.perf_counter()
                response = http.post("/v1/predict", json=body)
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200
        # Without TCP_NODELAY on the shared socket each request took about 44 ms.
        assert statistics.median(latencies) < 0.02, latencies
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        log.close()
    assert f"serving fmnist-classifier version {trained.first} (champion)" in out
    assert f"web UI:   http://127.0.0.1:{port}/" in out
    assert f"API docs: http://127.0.0.1:{port}/docs" in out
    assert "method=POST route=/v1/predict status=200" in Path(log.name).read_text()
