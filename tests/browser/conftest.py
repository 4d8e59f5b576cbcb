"""Fixtures for the browser tests: a tiny registered model, the real app, headless Chromium.

The model is trained once per session on a real subset (about 15 s on one thread) with gates a
tiny model passes, and served by the real app under uvicorn on 127.0.0.1. The browser is
Debian's Chromium (``/usr/bin/chromium``) driven by Playwright; Playwright's own browser
download is never used.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn

from fmnist.config import Settings, load_settings
from fmnist.data.snapshot import write_snapshot
from fmnist.data.sources import RawDataset
from fmnist.evaluation.run import evaluate_and_register
from fmnist.platform.storage import open_storage
from fmnist.registry.mlflow_registry import CHAMPION, MlflowRegistry
from fmnist.serving.app import create_app
from fmnist.training.config import make_config
from fmnist.training.run import train_and_log

from .support import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

VIEWPORT = {"width": 1280, "height": 860}
LOW_GATES = {
    "FMNIST_GATES__MIN_ACCURACY": "0.5",
    "FMNIST_GATES__MIN_CLASS_RECALL": "0.0",
    "FMNIST_GATES__MAX_ECE": "0.2",
}


@pytest.fixture(scope="session")
def ui_settings(tmp_path_factory: pytest.TempPathFactory, raw_subset: RawDataset) -> Settings:
    """A home with a snapshot of the real subset and one tiny champion model."""
    home = tmp_path_factory.mktemp("browser-home")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("FMNIST_"):
                mp.delenv(name)
        for key, value in {"FMNIST_HOME": str(home), **LOW_GATES}.items():
            mp.setenv(key, value)
        settings = load_settings().settings
        write_snapshot(
            open_storage(settings.resolved_lake_url),
            raw_subset,
            settings.data,
            settings.validation,
        )
        run = train_and_log(settings, make_config("tiny", seed=0), show_progress=False)
        outcome = evaluate_and_register(settings, run.run_id, quantize=False)
        assert outcome.version is not None, outcome.decision.reasons
    assert MlflowRegistry(settings).get(CHAMPION).version == outcome.version.version
    serving = settings.serving.model_copy(update={"reload_interval_s": 0.0, "access_log": False})
    return settings.model_copy(update={"serving": serving})


@contextlib.contextmanager
def running(settings: Settings) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings),
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
def ui_url(ui_settings: Settings) -> Iterator[str]:
    """The base URL of the app serving the tiny model (one server per session)."""
    with running(ui_settings) as url:
        yield url


@pytest.fixture
def api(ui_url: str) -> Iterator[httpx.Client]:
    """An HTTP client for the app (no proxies from the environment)."""
    with httpx.Client(base_url=ui_url, trust_env=False, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def browser_context() -> Iterator[BrowserContext]:
    """Headless Debian Chromium with a fresh profile, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="fmnist-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
            device_scale_factor=1,
            color_scheme="light",
            reduced_motion="reduce",
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser_context: BrowserContext, ui_url: str) -> Iterator[Page]:
    """A fresh tab on the UI; fails the test on any uncaught JavaScript error."""
    tab = browser_context.new_page()
    errors: list[Any] = []
    tab.on("pageerror", lambda error: errors.append(error))
    tab.goto(f"{ui_url}/")
    try:
        yield tab
    finally:
        tab.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
