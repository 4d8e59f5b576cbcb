"""Fixtures for the serving tests: two tiny registered models and the real app under uvicorn.

The models are trained once per session on a real subset (about 15 s each on one thread) and
registered with gates a tiny model passes; version 1 is the champion. Servers run the real app
on 127.0.0.1 (a free port) in a background thread and are talked to over real HTTP with httpx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from app_server import running
from data_paths import PHOTOS_VALIDATION, require_dir
from fmnist.cli import app
from fmnist.composition import build_services
from fmnist.config import Settings
from fmnist.data.sources import RawDataset
from fmnist.registry.mlflow_registry import CHALLENGER, CHAMPION
from tracking_home import register_tiny_models, set_env

ADMIN_TOKEN = "test-admin-token"
PHOTOS = PHOTOS_VALIDATION


@dataclass(frozen=True)
class Trained:
    """A home with a snapshot and two registered versions (``first`` is the champion)."""

    settings: Settings
    first: int
    second: int


@pytest.fixture(scope="session")
def trained(
    tmp_path_factory: pytest.TempPathFactory, raw_subset: RawDataset, mlflow_template_db: Path
) -> Trained:
    """Snapshot the real subset, train and register two tiny models; promote the first."""
    tiny = register_tiny_models(
        tmp_path_factory.mktemp("serving-home"), raw_subset, mlflow_template_db, seeds=(0, 1)
    )
    first, second = tiny.versions
    registry = build_services(tiny.settings).registry()
    registry.promote(str(first), reason="serving tests start from version 1")
    registry.set_alias(CHALLENGER, second)
    assert registry.get(CHAMPION).version == first
    return Trained(tiny.settings, first, second)


def restore_registry(trained: Trained, champion: int | None = None) -> None:
    """Make ``champion`` (default: the first version) champion again, the second challenger."""
    registry = build_services(trained.settings).registry()
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
    updated = type(base.serving).model_validate(base.serving.model_dump() | options)
    return base.model_copy(update={"serving": updated})


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
    require_dir(PHOTOS)
    return sorted((PHOTOS / "pants").glob("*.jpg"))[0].read_bytes()


def export_models(
    trained: Trained, target: Path, monkeypatch: pytest.MonkeyPatch, *args: str
) -> dict:
    """Run ``fmnist models export`` on the trained home; the parsed ``--json`` summary."""
    set_env(monkeypatch, {"FMNIST_HOME": str(trained.settings.home)})
    result = CliRunner().invoke(app, ["models", "export", "--to", str(target), "--json", *args])
    assert result.exit_code == 0, result.output
    summary: dict = json.loads(result.stdout)
    return summary


@pytest.fixture
def exported(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The aliased versions (champion, challenger) exported into a fresh folder."""
    export_models(trained, tmp_path / "export", monkeypatch)
    return tmp_path / "export"
