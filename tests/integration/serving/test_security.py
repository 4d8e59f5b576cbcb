"""Access control over HTTP: API keys with scopes, the loopback default, rate limits, CORS and
the security headers of every response (a real server on loopback, real keys)."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from app_server import running
from fmnist import cli
from fmnist.config import SecuritySettings, Settings
from fmnist.security.keys import KeyStore, key_store_path
from fmnist.serving.security import is_loopback, route_scope

from .conftest import ADMIN_TOKEN, Trained, serving_settings

BODY = {"instances": [np.zeros((28, 28), dtype=int).tolist()]}


def with_security(trained: Trained, **security: Any) -> Settings:
    settings = serving_settings(trained.settings)
    return settings.model_copy(update={"security": SecuritySettings(**security)})


def keys_of(settings: Settings) -> KeyStore:
    return KeyStore(key_store_path(settings.home, settings.security.keys_path))


def test_keys_with_scopes_401_403_and_revocation(trained: Trained) -> None:
    settings = with_security(trained, auth="on")
    store = keys_of(settings)
    predict_key, _ = store.create("ci-predict", ["predict"])
    admin_key, admin = store.create("ops", ["admin"])
    with running(settings) as url, httpx.Client(base_url=url, trust_env=False) as http:
        missing = http.post("/v1/predict", json=BODY)
        assert missing.status_code == 401 and missing.headers["www-authenticate"]
        wrong = http.post("/v1/predict", json=BODY, headers={"X-API-Key": "fmk_abc_nope"})
        assert wrong.status_code == 401
        assert wrong.json()["detail"] == missing.json()["detail"].split(":")[0]
        ok = http.post("/v1/predict", json=BODY, headers={"X-API-Key": predict_key})
        assert ok.status_code == 200, ok.text
        bearer = {"Authorization": f"Bearer {predict_key}"}
        assert http.post("/v1/predict", json=BODY, headers=bearer).status_code == 200
        assert http.get("/v1/admin/rollout").status_code == 401
        scoped = http.get("/v1/admin/rollout", headers=bearer)
        assert scoped.status_code == 403 and "'admin' scope" in scoped.json()["detail"]
        admin_headers = {"Authorization": f"Bearer {admin_key}"}
        assert http.get("/v1/admin/rollout", headers=admin_headers).status_code == 200
        assert http.post("/v1/predict", json=BODY, headers=admin_headers).status_code == 403
        store.revoke(admin.key_id)  # reaches the running server: the file is re-read
        assert http.get("/v1/admin/rollout", headers=admin_headers).status_code == 401
        assert http.get("/healthz").status_code == 200  # health stays open


def test_loopback_default_keeps_predictions_open_and_admin_closed(trained: Trained) -> None:
    settings = with_security(trained)  # auth: auto on 127.0.0.1
    with running(settings) as url, httpx.Client(base_url=url, trust_env=False) as http:
        assert http.post("/v1/predict", json=BODY).status_code == 200
        assert http.get("/v1/admin/rollout").status_code == 401
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert http.get("/v1/admin/rollout", headers=admin).status_code == 200
        assert http.get("/metrics").status_code == 200


def test_rate_limit_answers_429_with_retry_after(trained: Trained) -> None:
    settings = with_security(trained, rate_limit="on", rate_limits_per_minute={"predict": 6})
    with running(settings) as url, httpx.Client(base_url=url, trust_env=False) as http:
        codes = [http.post("/v1/predict", json=BODY).status_code for _ in range(3)]
        assert codes[0] == 200 and codes[-1] == 429
        limited = http.post("/v1/predict", json=BODY)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.json()["type"].endswith("rate-limited")


def test_headers_on_every_response_and_cors_allowlist(trained: Trained) -> None:
    settings = with_security(trained, cors_origins=["https://app.example"])
    with running(settings) as url, httpx.Client(base_url=url, trust_env=False) as http:
        for response in (
            http.post("/v1/predict", json=BODY),
            http.get("/"),
            http.get("/v1/admin/rollout"),  # an error response too
            http.post("/v1/predict", content=b"not json", headers={"content-type": "text/x"}),
        ):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "default-src 'self'" in http.get("/").headers["content-security-policy"]
        allowed = http.options(
            "/v1/predict",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = http.options(
            "/v1/predict",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers


def test_the_keys_commands_print_a_key_once_and_never_again(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FMNIST_HOME", str(tmp_path))
    runner = CliRunner()
    created = runner.invoke(cli.app, ["keys", "create", "--name", "ci", "--scope", "predict"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("fmk_")
    listed = runner.invoke(cli.app, ["keys", "list", "--json"])
    assert (
        key not in listed.stdout
        and key not in (tmp_path / "security" / "api_keys.json").read_text()
    )
    key_id = key.split("_")[1]
    assert runner.invoke(cli.app, ["keys", "revoke", key_id]).exit_code == 0
    bad = runner.invoke(cli.app, ["keys", "create", "--name", "x", "--scope", "root"])
    assert bad.exit_code != 0 and "unknown or missing scope" in bad.output


def test_route_scopes_and_loopback() -> None:
    assert route_scope("POST", "/v1/predict", False) == "predict"
    assert route_scope("PUT", "/v1/admin/rollout", False) == "admin"
    assert route_scope("GET", "/metrics", True) == "admin"
    assert route_scope("GET", "/metrics", False) is None
    assert route_scope("GET", "/healthz", True) is None
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
