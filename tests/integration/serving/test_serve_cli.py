"""``fmnist serve``: the one-line error without a champion, and a real multi-worker server."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from app_server import wait_until_ready
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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "invalid option: port"),
        (["--workers", "0"], "invalid option: workers"),
        (["--reload-interval", "-1"], "invalid option: reload_interval_s"),
        (["--log-level", "loud"], "invalid --log-level 'loud'"),
    ],
)
def test_bad_serve_options_are_one_line_errors(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo the logging configuration that `fmnist serve` applies to its process."""
    names = ("fmnist", "uvicorn", "uvicorn.access", "uvicorn.error")
    saved = {
        n: (lg.handlers[:], lg.level, lg.propagate, lg.disabled)
        for n in names
        for lg in [logging.getLogger(n)]
    }
    yield
    for name, (handlers, level, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled


@pytest.mark.usefixtures("restore_logging")
def test_serve_one_worker_prints_the_urls_and_runs_uvicorn(
    trained: Trained, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, uvicorn.Config] = {}

    def fake_run(server: uvicorn.Server, sockets: object = None) -> None:
        seen["config"] = server.config

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setenv("FMNIST_HOME", str(trained.settings.home))
    result = CliRunner().invoke(app, ["serve", "--port", "8123", "--reload-interval", "0"])
    assert result.exit_code == 0, result.output
    assert f"serving fmnist-classifier version {trained.first} (champion)" in result.output
    assert "web UI:   http://127.0.0.1:8123/" in result.output
    assert "API docs: http://127.0.0.1:8123/docs" in result.output
    config = seen["config"]
    assert isinstance(config.app, FastAPI)
    assert (config.host, config.port, config.http, config.loop) == (
        "127.0.0.1",
        8123,
        "httptools",
        "asyncio",
    )
    assert config.access_log is False
    store = config.app.state.store
    assert store.default is not None and store.default.version == trained.first


@pytest.mark.network
def test_serve_with_two_workers_keeps_keep_alive_fast(trained: Trained, tmp_path: Path) -> None:
    if not FMNIST.is_file():
        pytest.skip(f"console script not installed at {FMNIST}")
    # A copy of the home without the server's model cache: the model is downloaded from the
    # registry by a fresh process, as on a new machine.
    home = tmp_path / "home"
    shutil.copytree(trained.settings.home / "mlflow", home / "mlflow")
    port = free_port()
    # MLflow exports MLFLOW_TRACKING_URI when a run starts (the session fixture trained here).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FMNIST_", "MLFLOW_"))}
    env["FMNIST_HOME"] = str(home)
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
            wait_until_ready(http, proc, Path(log.name))
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
    assert (home / "serving/models/fmnist-classifier" / str(trained.first) / "model.onnx").is_file()
    assert not (tmp_path / "mlflow.db").exists()  # nothing written to the working directory
