"""``?model=`` never serves a version that failed its promotion gates, unless an admin asks."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import mlflow
import pytest

from app_server import running
from fmnist.platform.registry import ModelVersionInfo
from fmnist.serving.model_store import gates_failed

from .conftest import ADMIN_TOKEN, Trained, serving_settings

pytestmark = pytest.mark.network

INSTANCE = [[(i * 7) % 256 for i in range(784)]]


@pytest.fixture
def gate_failed_second(trained: Trained) -> Iterator[int]:
    """The second version tagged as failing its gates (restored afterwards)."""
    client = mlflow.MlflowClient(trained.settings.resolved_tracking_uri)
    name = trained.settings.tracking.registered_model
    key = "gate.check.accuracy"
    before = client.get_model_version(name, str(trained.second)).tags.get(key)
    client.set_model_version_tag(name, str(trained.second), key, "fail")
    try:
        yield trained.second
    finally:
        client.set_model_version_tag(name, str(trained.second), key, before or "pass")


def test_a_gate_failed_version_is_refused_without_the_admin_token(
    trained: Trained, gate_failed_second: int
) -> None:
    body = {"instances": INSTANCE}
    params = {"model": str(gate_failed_second)}
    with (
        running(serving_settings(trained.settings)) as url,
        httpx.Client(base_url=url, trust_env=False, timeout=30) as http,
    ):
        refused = http.post("/v1/predict", params=params, json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("gates-failed")
        wrong = http.post(
            "/v1/predict", params=params, json=body, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401  # an invalid key is refused on every route
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        allowed = http.post("/v1/predict", params=params, json=body, headers=admin)
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["model_version"] == gate_failed_second
        # Once loaded it is still refused to everyone else, and the default path is untouched.
        assert http.post("/v1/predict", params=params, json=body).status_code == 403
        default = http.post("/v1/predict", json=body)
        assert default.status_code == 200 and default.json()["model_version"] == trained.first
        explained = http.post("/v1/explain", params=params, json=body)
        assert explained.status_code == 403


def _info(tags: dict[str, str], aliases: tuple[str, ...] = ()) -> ModelVersionInfo:
    return ModelVersionInfo(
        name="m", version=2, aliases=aliases, tags=tags, run_id=None, created_at="", source=""
    )


def test_quality_gates_decide_and_a_champion_is_always_served() -> None:
    failed_quality = {"gate.passed": "false", "gate.check.ece": "fail"}
    assert gates_failed(_info(failed_quality))
    assert not gates_failed(_info(failed_quality, aliases=("champion",)))
    # Only "not significantly better than the champion": a fair A/B challenger.
    only_champion = {
        "gate.passed": "false",
        "gate.check.accuracy": "pass",
        "gate.check.class_recall": "pass",
        "gate.check.ece": "pass",
        "gate.check.champion": "fail",
    }
    assert not gates_failed(_info(only_champion))
    assert gates_failed(_info({"gate.passed": "false"}))  # registered before per-check tags
    assert not gates_failed(_info({"gate.passed": "true"}))
    assert not gates_failed(_info({}))  # no gate recorded (e.g. imported by hand)
