"""Fixtures for the serving tests: two tiny registered models and the real app under uvicorn.

The models are trained once per session on a real subset (about 15 s each on one thread) and
registered with gates a tiny model passes; version 1 is the champion. Servers run the real app
on 127.0.0.1 (a free port) in a background thread and are talked to over real HTTP with httpx.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from fmnist.config import Settings, load_settings
from fmnist.data.snapshot import write_snapshot
from fmnist.data.sources import RawDataset
from fmnist.evaluation.run import evaluate_and_register
from fmnist.platform.storage import open_storage
from fmnist.registry.mlflow_registry import CHALLENGER, CHAMPION, MlflowRegistry
from fmnist.serving.app import create_app
from fmnist.serving.cli import listening_socket
from fmnist.training.config import make_config
from fmnist.training.run import train_and_log

LOW_GATES = {
    "FMNIST_GATES__MIN_ACCURACY": "0.5",
    "FMNIST_GATES__MIN_CLASS_RECALL": "0.0",
    "FMNIST_GATES__MAX_ECE": "0.2",
}
ADMIN_TOKEN = "test-admin-token"
PHOTOS = Path(__file__).resolve().parents[3].parent / "shared/data/clothing-photos/validation"


@dataclass(frozen=True)
class Trained:
    """A home with a snapshot and two registered versions (``first`` is the champion)."""

    settings: Settings
    first: int
    second: int


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, raw_subset: RawDataset) -> Trained:
    """Snapshot the real subset, train and register two tiny models; promote the first."""
    home = tmp_path_factory.mktemp("serving-home")
    env = {"FMNIST_HOME": str(home), **LOW_GATES}
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("FMNIST_"):
                mp.delenv(name)
        for key, value in env.items():
            mp.setenv(key, value)
        settings = load_settings().settings
        storage = open_storage(settings.resolved_lake_url)
        write_snapshot(storage, raw_subset, settings.data, settings.validation)
        versions = []
        for seed in (0, 1):
            run = train_and_log(settings, make_config("tiny", seed=seed), show_progress=False)
            outcome = evaluate_and_register(settings, run.run_id, quantize=False)
            assert outcome.version is not None, outcome.decision.reasons
            versions.append(outcome.version.version)
    registry = MlflowRegistry(settings)
    registry.promote(str(versions[0]), reason="serving tests start from version 1")
    registry.set_alias(CHALLENGER, versions[1])
    assert registry.get(CHAMPION).version == versions[0]
    return Trained(settings, versions[0], versions[1])


def restore_registry(trained: Trained, champion: int | None = None) -> None:
    """Make ``champion`` (default: the first version) champion again, the second challenger."""
    registry = MlflowRegistry(trained.settings)
    registry.promote(str(champion or trained.first), reason="restore after a test")
    registry.set_alias(CHALLENGER, trained.second)


def serving_settings(base: Settings, **serving: Any) -> Settings:
    """``base`` with test serving options (admin token, no polling, small body limit)."""
    options: dict[str, Any] = {
        "admin_token": ADMIN_TOKEN,
        "reload_interval_s": 0.0,
        "max_body_bytes": 1024 * 1024,
        "max_batch": 1000,
        "access_log": False,
        "gc_freeze": False,  # a test process is not a server: keep its collector as it is
        **serving,
    }
    updated = base.serving.model_copy(update=options)
    return base.model_copy(update={"serving": updated})


@contextlib.contextmanager
def running(settings: Settings) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port; yields the base URL."""
    app = create_app(settings)
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


@pytest.fixture(scope="session")
def base_url(trained: Trained) -> Iterator[str]:
    """One server for the session (micro-batching on, as by default)."""
    with running(serving_settings(trained.settings)) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for the session server (no proxies from the environment)."""
    with httpx.Client(base_url=base_url, trust_env=False, timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def jpeg_bytes() -> bytes:
    """A real photo of trousers (JPEG)."""
    if not PHOTOS.is_dir():
        pytest.skip(f"clothing photos not found at {PHOTOS}")
    return sorted((PHOTOS / "pants").glob("*.jpg"))[0].read_bytes()
