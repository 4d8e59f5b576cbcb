"""Fixtures for the browser tests: a tiny registered model, the real app, headless Chromium.

The model is trained once per session on a real subset (about 15 s on one thread) with gates a
tiny model passes, and served by the real app under uvicorn on 127.0.0.1. The browser is
Debian's Chromium (``/usr/bin/chromium``) driven by Playwright; Playwright's own browser
download is never used.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from app_server import running
from fmnist.composition import build_services
from fmnist.config import Settings
from fmnist.data.sources import RawDataset
from fmnist.registry.mlflow_registry import CHAMPION
from tracking_home import register_tiny_models

from .support import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

VIEWPORT = {"width": 1280, "height": 860}


@pytest.fixture(scope="session")
def ui_settings(
    tmp_path_factory: pytest.TempPathFactory, raw_subset: RawDataset, mlflow_template_db: Path
) -> Settings:
    """A home with a snapshot of the real subset and one tiny champion model."""
    tiny = register_tiny_models(
        tmp_path_factory.mktemp("browser-home"), raw_subset, mlflow_template_db
    )
    settings = tiny.settings
    assert build_services(settings).registry().get(CHAMPION).version == tiny.versions[0]
    serving = settings.serving.model_copy(update={"reload_interval_s": 0.0, "access_log": False})
    return settings.model_copy(update={"serving": serving})


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


@pytest.fixture(scope="module")
def browser_context() -> Iterator[BrowserContext]:
    """Headless Debian Chromium with a fresh profile, driven by Playwright.

    Module scope: Playwright's sync API keeps an asyncio loop running in this thread until it
    stops, which would break later tests that call ``asyncio.run()``.
    """
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
