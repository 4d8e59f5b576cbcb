"""Hot reload of the champion (admin endpoint and registry polling) and the model store."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import numpy as np
import pytest

from app_server import running
from fmnist.composition import build_services
from fmnist.registry.mlflow_registry import CHAMPION
from fmnist.serving.model_store import ModelNotFoundError, ModelStore

from .conftest import ADMIN_TOKEN, Trained, restore_registry, serving_settings

pytestmark = pytest.mark.network

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
INSTANCE = {"instances": [[0] * 392 + [200] * 392]}


def served_version(client: httpx.Client) -> int:
    version: int = client.get("/readyz").json()["model_version"]
    return version


def other(trained: Trained, version: int) -> int:
    return trained.second if version == trained.first else trained.first


def test_admin_reload_needs_the_bearer_token(client: httpx.Client) -> None:
    missing = client.post("/v1/admin/reload")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    basic = client.post("/v1/admin/reload", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401
    wrong = client.post("/v1/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401  # an invalid key: the same answer as none
    assert wrong.json()["type"] == "urn:fmnist:problem:unauthorized"
    ok = client.post("/v1/admin/reload", headers=AUTH)
    assert ok.status_code == 200
    body = ok.json()
    assert set(body) == {"reloaded", "previous_version", "model_name", "model_version"}
    assert body["reloaded"] is False
    assert body["model_version"] == served_version(client)


def test_hot_reload_under_concurrent_requests_loses_nothing(
    client: httpx.Client, base_url: str, trained: Trained
) -> None:
    registry = build_services(trained.settings).registry()
    before = served_version(client)
    after = other(trained, before)
    stop = threading.Event()
    reloaded = threading.Event()
    failures: list[str] = []
    seen_before: Counter[int] = Counter()
    seen_after: Counter[int] = Counter()
    lock = threading.Lock()

    def hammer() -> None:
        with httpx.Client(base_url=base_url, trust_env=False, timeout=10) as http:
            while not stop.is_set():
                swapped = reloaded.is_set()
                try:
                    response = http.post("/v1/predict", json=INSTANCE)
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(repr(exc))
                    continue
                with lock:
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                    else:
                        version = response.json()["model_version"]
                        (seen_after if swapped else seen_before)[version] += 1

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        registry.promote(str(after), reason="hot reload test")
        response = client.post("/v1/admin/reload", headers=AUTH)
        reloaded.set()
        assert response.status_code == 200, response.text
        assert response.json() == {
            "reloaded": True,
            "previous_version": before,
            "model_name": "fmnist-classifier",
            "model_version": after,
        }
        time.sleep(1.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        restore_registry(trained, before)
        client.post("/v1/admin/reload", headers=AUTH)
    assert failures == []
    assert seen_before[before] > 0
    assert set(seen_after) == {after}, seen_after
    assert sum(seen_after.values()) > 0
    assert served_version(client) == before


def test_polling_picks_up_a_new_champion_and_admin_can_be_disabled(trained: Trained) -> None:
    registry = build_services(trained.settings).registry()
    settings = serving_settings(trained.settings, reload_interval_s=0.2, admin_token=None)
    with running(settings) as url, httpx.Client(base_url=url, trust_env=False) as http:
        disabled = http.post("/v1/admin/reload", headers=AUTH)
        assert disabled.status_code == 404
        assert "admin API is disabled" in disabled.json()["detail"]
        before = served_version(http)
        after = other(trained, before)
        registry.promote(str(after), reason="polling test")
        try:
            deadline = time.monotonic() + 10
            while served_version(http) != after and time.monotonic() < deadline:
                time.sleep(0.05)
            assert served_version(http) == after
            metrics = http.get("/metrics").text
            assert 'fmnist_model_reloads_total{outcome="changed"} 1.0' in metrics
        finally:
            restore_registry(trained, before)


def test_store_downloads_once_keeps_an_lru_and_swaps_atomically(trained: Trained) -> None:
    settings = serving_settings(trained.settings, model_cache_size=2)
    store = ModelStore(settings, build_services(settings).registries)
    registry = build_services(settings).registry()
    champion = registry.get(CHAMPION).version
    default = store.load_default()
    assert default.version == champion
    folder = settings.home / "serving/models/fmnist-classifier" / str(champion)
    assert (folder / "model.onnx").is_file()
    assert store.resolve(str(champion)) is default
    assert store.resolve(None) is default
    challenger = store.resolve("challenger")
    assert challenger.version == trained.second
    assert store.cached("challenger") is challenger
    assert store.resolve(str(trained.second)) is challenger  # one load per version
    assert len(store.loaded()) == 2
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp left

    with pytest.raises(ModelNotFoundError, match="no version 42"):
        store.resolve("42")
    with pytest.raises(ModelNotFoundError, match="invalid model reference"):
        store.resolve("x'; drop")

    held = store.default
    registry.promote(str(other(trained, champion)), reason="store test")
    try:
        result = store.refresh()
        assert result.changed and result.previous == ("fmnist-classifier", champion)
        assert store.default is not held and store.default is challenger
        assert held is not None  # the old object still works for requests holding it
        assert held.classifier.predict_proba(np.zeros((1, 28, 28), np.uint8)).shape == (1, 10)
        assert store.cached(str(champion)) is held  # kept in the LRU, budget 2
        assert len(store.loaded()) == 2
        assert not store.refresh().changed
    finally:
        restore_registry(trained, champion)
    store.close()
