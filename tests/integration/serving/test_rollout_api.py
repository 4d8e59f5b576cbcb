"""Champion/challenger on the default route: the admin API, sticky A/B arms, shadow scoring."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import mlflow
import pytest

from app_server import running
from fmnist.audit import AuditLog, audit_path
from fmnist.composition import build_services
from fmnist.monitoring.journal import replay_journals

from .conftest import ADMIN_TOKEN, Trained, serving_settings

pytestmark = pytest.mark.network

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
INSTANCE = {"instances": [[(i * 11) % 256 for i in range(784)]]}


@pytest.fixture
def server(trained: Trained) -> Iterator[httpx.Client]:
    """A fresh server; the rollout state it writes is removed afterwards (the home is shared)."""
    state = trained.settings.home / "rollout" / "state.json"
    state.unlink(missing_ok=True)
    try:
        with (
            running(serving_settings(trained.settings)) as url,
            httpx.Client(base_url=url, trust_env=False, timeout=30) as http,
        ):
            yield http
    finally:
        state.unlink(missing_ok=True)


def logged(trained: Trained, request_id: str) -> tuple[str, int] | None:
    """(arm, model version) of a logged prediction, or None."""
    log = build_services(trained.settings).prediction_log
    replay_journals(log)
    record = log.get(request_id)
    return None if record is None else (record.arm, record.model_version)


def test_the_admin_api_needs_the_token(server: httpx.Client) -> None:
    assert server.get("/v1/admin/rollout").status_code == 401
    wrong = server.get("/v1/admin/rollout", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    shown = server.get("/v1/admin/rollout", headers=ADMIN)
    assert shown.status_code == 200 and shown.json()["mode"] == "off"
    change = {"mode": "ab", "challenger": "challenger", "share": 0.5}
    assert server.put("/v1/admin/rollout", json=change).status_code == 401
    invalid = server.put("/v1/admin/rollout", json={**change, "share": 2}, headers=ADMIN)
    assert invalid.status_code == 422
    unknown = server.put("/v1/admin/rollout", json={**change, "challenger": "99"}, headers=ADMIN)
    assert unknown.status_code == 404
    same = server.put("/v1/admin/rollout", json={**change, "challenger": "champion"}, headers=ADMIN)
    assert same.status_code == 409 and same.json()["type"].endswith("same-model")


def test_a_share_that_is_not_a_number_is_refused(server: httpx.Client) -> None:
    """Found by the fuzzer: ``"share": true`` was read as 1.0 (every client on the challenger)."""
    for share in (True, "0.5", None):
        change = {"mode": "ab", "challenger": "challenger", "share": share}
        refused = server.put("/v1/admin/rollout", json=change, headers=ADMIN)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["loc"] == "body.share"
    assert server.get("/v1/admin/rollout", headers=ADMIN).json()["mode"] == "off"


def test_ab_split_is_sticky_per_client_and_logged_with_the_arm(
    trained: Trained, server: httpx.Client
) -> None:
    change = {"mode": "ab", "experiment": "exp-1", "share": 0.5, "reason": "test split"}
    started = server.put("/v1/admin/rollout", json=change, headers=ADMIN)
    assert started.status_code == 200, started.text
    assert started.json()["challenger_model"]["version"] == trained.second
    seen: dict[str, set[tuple[str, int]]] = {}
    for client in [f"client-{i}" for i in range(40)]:
        for _ in range(2):
            answer = server.post("/v1/predict", json=INSTANCE, headers={"X-Client-ID": client})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            seen.setdefault(client, set()).add((body["arm"], body["model_version"]))
    assert all(len(arms) == 1 for arms in seen.values())  # sticky
    pairs = {next(iter(arms)) for arms in seen.values()}
    assert pairs == {("champion", trained.first), ("challenger", trained.second)}
    assert logged(trained, body["request_id"]) == (body["arm"], body["model_version"])
    # An explicit ?model= is outside the experiment.
    pinned = server.post("/v1/predict", params={"model": str(trained.first)}, json=INSTANCE)
    assert "arm" not in pinned.json()
    entries = AuditLog(audit_path(trained.settings.home, None)).read()
    assert entries[-1]["action"] == "rollout.change" and entries[-1]["reason"] == "test split"
    assert entries[-1]["details"]["to"]["mode"] == "ab"
    canary = server.put(
        "/v1/admin/rollout", json={**change, "mode": "canary", "share": 1.0}, headers=ADMIN
    )
    assert canary.status_code == 200 and canary.json()["mode"] == "canary"
    full = server.post("/v1/predict", json=INSTANCE, headers={"X-Client-ID": "client-0"}).json()
    assert (full["arm"], full["model_version"]) == ("challenger", trained.second)
    stopped = server.put("/v1/admin/rollout", json={"mode": "off"}, headers=ADMIN)
    assert stopped.json()["mode"] == "off"
    assert "arm" not in server.post("/v1/predict", json=INSTANCE).json()


def test_shadow_scores_after_the_champion_answers(trained: Trained, server: httpx.Client) -> None:
    change = {"mode": "shadow", "challenger": str(trained.second)}
    assert server.put("/v1/admin/rollout", json=change, headers=ADMIN).status_code == 200
    answer = server.post("/v1/predict", json=INSTANCE)
    body = answer.json()
    assert body["arm"] == "champion" and body["model_version"] == trained.first
    rid = body["request_id"]
    deadline = time.monotonic() + 10
    while logged(trained, f"{rid}:shadow") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logged(trained, rid) == ("champion", trained.first)
    assert logged(trained, f"{rid}:shadow") == ("challenger", trained.second)


def test_a_gate_failed_challenger_is_refused_and_the_state_survives_a_restart(
    trained: Trained, server: httpx.Client
) -> None:
    client = mlflow.MlflowClient(trained.settings.resolved_tracking_uri)
    name, version = trained.settings.tracking.registered_model, str(trained.second)
    key = "gate.check.ece"
    before = client.get_model_version(name, version).tags.get(key)
    change = {"mode": "ab", "challenger": version, "share": 0.3}
    assert server.put("/v1/admin/rollout", json=change, headers=ADMIN).status_code == 200
    with (
        running(serving_settings(trained.settings)) as url,
        httpx.Client(base_url=url, trust_env=False, timeout=30) as other,
    ):  # a second server (as another worker or a restart) starts from the state file
        shown = other.get("/v1/admin/rollout", headers=ADMIN).json()
        assert shown["mode"] == "ab" and shown["share"] == 0.3
    client.set_model_version_tag(name, version, key, "fail")
    try:
        with (
            running(serving_settings(trained.settings)) as url,
            httpx.Client(base_url=url, trust_env=False, timeout=30) as fresh,
        ):
            refused = fresh.put("/v1/admin/rollout", json=change, headers=ADMIN)
            assert refused.status_code == 409 and refused.json()["type"].endswith("gates-failed")
            assert fresh.get("/v1/admin/rollout", headers=ADMIN).json()["mode"] == "off"
    finally:
        client.set_model_version_tag(name, version, key, before or "pass")
