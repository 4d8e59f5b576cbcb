"""``GET /v1/monitoring/summary`` and ``GET /v1/monitoring/report`` over real HTTP."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from fmnist.composition import build_services
from fmnist.config import Settings
from fmnist.monitoring.drift import DriftResult, ReferenceSummary, WindowInfo
from fmnist.monitoring.drift_tests import TestResult
from fmnist.monitoring.report import reports_root
from fmnist.serving.app import create_app

from .conftest import Trained

pytestmark = pytest.mark.network


def problem(response: httpx.Response, status: int) -> dict[str, object]:
    """The problem body of ``response``, checked to have ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["status"] == status
    return body


def test_summary_counts_new_predictions_and_feedback(client: httpx.Client) -> None:
    before = client.get("/v1/monitoring/summary", params={"hours": 1})
    assert before.status_code == 200, before.text
    assert before.headers["cache-control"] == "no-store"
    start = before.json()
    answer = client.post("/v1/predict/batch", json={"instances": [[0] * 784, [200] * 784]})
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    label = predictions[0]["top_class_id"]
    sent = client.post(
        "/v1/feedback", json={"request_id": predictions[0]["request_id"], "label": label}
    )
    assert sent.status_code == 201, sent.text

    after = client.get("/v1/monitoring/summary", params={"hours": 1}).json()
    assert after["predictions"] == start["predictions"] + 2
    assert after["hours"] == 1
    timeline = after["timeline"]
    assert timeline["labels"][-1] == "unknown" and len(timeline["labels"]) == 11
    assert sum(sum(b["counts"]) for b in timeline["buckets"]) == after["predictions"]
    assert sum(after["confidence"]["counts"]) == after["predictions"]
    assert after["unknown_rate"]["total"] == after["predictions"]
    live = after["live_accuracy"]
    assert live["labelled"] == start["live_accuracy"]["labelled"] + 1
    model = predictions[0]["model_name"], predictions[0]["model_version"]
    version = next(m for m in live["models"] if (m["model_name"], m["model_version"]) == model)
    assert version["overall"]["low"] <= version["overall"]["accuracy"] <= version["overall"]["high"]
    assert after["drift"]["status"] in {"not_checked", "no_drift", "drift_detected"}
    assert isinstance(after["alerts"], list)


@pytest.mark.parametrize("hours", ["0", "-2", "abc", "nan", "inf", "100000"])
def test_a_bad_window_is_a_422_problem(client: httpx.Client, hours: str) -> None:
    body = problem(client.get("/v1/monitoring/summary", params={"hours": hours}), 422)
    assert "hours" in str(body["detail"])


def test_the_report_is_404_then_the_newest_html(client: httpx.Client, trained: Trained) -> None:
    root = reports_root(trained.settings.home)
    assert not root.exists(), "another test left drift reports in the shared home"
    body = problem(client.get("/v1/monitoring/report"), 404)
    assert "fmnist monitor drift" in str(body["detail"])
    try:
        for stamp in ("20240501T100000.000000Z", "20240501T120000.000000Z"):
            folder = root / stamp
            folder.mkdir(parents=True)
            (folder / "report.html").write_text(f"<html><p>{stamp}</p></html>", encoding="utf-8")
            result = DriftResult(
                drift_detected=stamp.startswith("20240501T12"),
                alpha=0.05,
                correction="Holm over 1 test",
                tests=[TestResult(name="bbsd_ks", statistic=0.2, p_value=0.001, fired=True)],
                window=WindowInfo(size=100),
                reference=ReferenceSummary(
                    model_name="m", model_version=1, n=10, embedding_kind="x", embedding_note=""
                ),
            )
            (folder / "drift.json").write_text(result.model_dump_json(), encoding="utf-8")
        report = client.get("/v1/monitoring/report")
        assert report.status_code == 200
        assert report.headers["content-type"].startswith("text/html")
        assert "20240501T120000" in report.text
        assert "sandbox" in report.headers["content-security-policy"]
        drift = client.get("/v1/monitoring/summary").json()["drift"]
        assert (drift["status"], drift["report_id"], drift["has_report"]) == (
            "drift_detected",
            "20240501T120000.000000Z",
            True,
        )
        assert drift["tests"][0]["name"] == "bbsd_ks"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_without_the_log_the_summary_is_503(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    settings = settings.model_copy(
        update={"monitoring": settings.monitoring.model_copy(update={"log_enabled": False})}
    )
    app = create_app(build_services(settings))
    client = TestClient(app)  # no lifespan: no model is needed for these routes
    body = problem(client.get("/v1/monitoring/summary"), 503)
    assert body["type"] == "urn:fmnist:problem:log-disabled"
    assert not (tmp_path / "monitoring" / "predictions.db").exists()
    problem(client.get("/v1/monitoring/report"), 404)


def test_the_openapi_document_describes_the_routes(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    summary = spec["paths"]["/v1/monitoring/summary"]["get"]
    assert {"200", "422", "503"} <= set(summary["responses"])
    assert "application/problem+json" in summary["responses"]["503"]["content"]
    assert summary["parameters"][0]["name"] == "hours"
    assert "MonitoringSummary" in spec["components"]["schemas"]
    report = spec["paths"]["/v1/monitoring/report"]["get"]
    assert "text/html" in report["responses"]["200"]["content"]
    assert "404" in report["responses"]
